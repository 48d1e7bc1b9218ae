import { extendTokenizerDir } from '../tokenizer/extendTokenizerDir.js';
import type { MergeOrder } from '../tokenizer/extend.js';
import { intFlag, parse, printJson, required } from './args.js';

export const usage = `lep tokenizer extend ORIGINAL_DIR DONOR_DIR --out DIR [options]
  Extended vocabulary: every original token keeps its id, the donor's new pieces get ids after them.
  --merge-order new-first|original-first (new-first, the paper)   --max-new-tokens N (all)
  --pad-to-multiple-of N (1)   --reserved-token PATTERN (<|reserved_{k}|>)   --max-size N (no limit)
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep tokenizer extend base donor --out extended`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { json: { type: 'boolean' },
      out: { type: 'string' }, 'merge-order': { type: 'string' }, 'max-new-tokens': { type: 'string' },
      'pad-to-multiple-of': { type: 'string' }, 'reserved-token': { type: 'string' }, 'max-size': { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const original = required(positionals[0], 'ORIGINAL_DIR', usage);
  const donor = required(positionals[1], 'DONOR_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const { stats } = extendTokenizerDir(original, donor, out, {
    mergeOrder: values['merge-order'] as MergeOrder | undefined,
    maxNewTokens: intFlag(values['max-new-tokens'], '--max-new-tokens'),
    padToMultipleOf: intFlag(values['pad-to-multiple-of'], '--pad-to-multiple-of'),
    reservedToken: values['reserved-token'] as string | undefined,
    maxSize: intFlag(values['max-size'], '--max-size'),
  });
  if (values.json) return printJson({ out, stats });
  console.log(
    `wrote ${out}: ${stats.size} tokens = ${stats.originalSize} original + ${stats.newTokens} new` +
      `${stats.donorAddedTokens ? ` + ${stats.donorAddedTokens} donor added` : ''}${stats.reservedTokens ? ` + ${stats.reservedTokens} reserved` : ''}; ` +
      `${stats.merges.total} merges (${stats.merges.fromDonor} from the donor); ${stats.donorPiecesPresent} donor pieces were already present`,
  );
}
