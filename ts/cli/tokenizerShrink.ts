import { optionError } from '../errors.js';
import type { MergeOrder } from '../tokenizer/extend.js';
import type { ShrinkRule } from '../tokenizer/shrink.js';
import { shrinkTokenizerDir } from '../tokenizer/shrinkTokenizerDir.js';
import { intFlag, parse, printJson, required } from './args.js';
import { corpusOptions, corpusProgress, corpusSpecs, corpusUsage, readOptions } from './corpusFlags.js';

export const usage = `lep tokenizer shrink ORIGINAL_DIR --keep N --out DIR [--corpus SPEC] [options]
  Optimized vocabulary: keep N original base tokens (closed under merges; specials kept on top), re-pack
  ids (id_map.json), then extend with --donor DIR if given.
  --rule frequency|first-ids (frequency: most used on --corpus, the paper; first-ids: the reference code)
  --donor DIR   --merge-order new-first|original-first   --max-new-tokens N   --pad-to-multiple-of N   --max-size N
${corpusUsage}
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep tokenizer shrink base --keep 16000 --corpus ru.txt --out shrunk`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { json: { type: 'boolean' },
      ...corpusOptions,
      out: { type: 'string' }, keep: { type: 'string' }, rule: { type: 'string' }, donor: { type: 'string' },
      'merge-order': { type: 'string' }, 'max-new-tokens': { type: 'string' }, 'pad-to-multiple-of': { type: 'string' },
      'max-size': { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const original = required(positionals[0], 'ORIGINAL_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const keep = intFlag(required(values.keep as string | undefined, '--keep', usage), '--keep')!;
  const extendFlags = ['merge-order', 'max-new-tokens', 'pad-to-multiple-of', 'max-size'].filter((f) => values[f] !== undefined);
  if (extendFlags.length && values.donor === undefined)
    throw optionError('donor', `a donor tokenizer directory when extend options (${extendFlags.map((f) => `--${f}`).join(', ')}) are given`, undefined, '--donor');
  const specs = corpusSpecs(values);
  const progress = specs.length && values.rule !== 'first-ids' ? await corpusProgress('counting', specs) : undefined;
  const r = await shrinkTokenizerDir(original, out, {
    keep,
    rule: values.rule as ShrinkRule | undefined,
    corpus: specs.length ? specs : undefined,
    read: readOptions(values),
    donorDir: values.donor as string | undefined,
    extend: {
      mergeOrder: values['merge-order'] as MergeOrder | undefined,
      maxNewTokens: intFlag(values['max-new-tokens'], '--max-new-tokens'),
      padToMultipleOf: intFlag(values['pad-to-multiple-of'], '--pad-to-multiple-of'),
      maxSize: intFlag(values['max-size'], '--max-size'),
    },
    onProgress: progress?.onProgress,
  });
  progress?.done();
  if (values.json) return printJson({ out, ...r });
  const s = r.shrink;
  console.log(
    `wrote ${out}: kept ${s.baseAfter} of ${s.baseBefore} base tokens (rule ${s.rule}, ${s.closureParts} pulled in by closure) + ${s.addedTokens} added tokens = ${s.size}` +
      (r.extend ? `; extended by ${r.extend.newTokens} new tokens to ${r.size}` : '') +
      `; id map in id_map.json`,
  );
}
