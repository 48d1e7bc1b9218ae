import { Type } from '@sinclair/typebox';

import { cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import type { ExtendOptions } from '../tokenizer/extend.js';
import { EXTEND_SPEC } from '../tokenizer/extendOptions.js';
import { extendTokenizerDir } from '../tokenizer/extendTokenizerDir.js';
import { parse, printJson, required } from './args.js';

/** The flags of the command itself (not options of extendTokenizer). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output tokenizer directory.' },
  json: JSON_FLAG,
});

export const usage = `lep tokenizer extend ORIGINAL_DIR DONOR_DIR --out DIR [options]
  Extended vocabulary: every original token keeps its id, the donor's new pieces get ids after them.
  Writes tokenizer.json, tokenizer_config.json, lep_tokenizer_run.json and the stage record lep-stage.json
  (the inputs with fingerprints, the resolved options, the stats) into DIR.
${helpLines({ ...CLI_ONLY, ...EXTEND_SPEC }).join('\n')}
Example: lep tokenizer extend base donor --out extended --pad-to-multiple-of 64`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(EXTEND_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  const original = required(positionals[0], 'ORIGINAL_DIR', usage);
  const donor = required(positionals[1], 'DONOR_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  // extendTokenizerDir checks the options against EXTEND_SPEC before it reads a file.
  const { stats } = extendTokenizerDir(original, donor, out, fromFlags(EXTEND_SPEC, values) as ExtendOptions);
  if (values.json) return printJson({ out, stats });
  console.log(
    `wrote ${out}: ${stats.size} tokens = ${stats.originalSize} original + ${stats.newTokens} new` +
      `${stats.donorAddedTokens ? ` + ${stats.donorAddedTokens} donor added` : ''}${stats.reservedTokens ? ` + ${stats.reservedTokens} reserved` : ''}; ` +
      `${stats.merges.total} merges (${stats.merges.fromDonor} from the donor); ${stats.donorPiecesPresent} donor pieces were already present`,
  );
}
