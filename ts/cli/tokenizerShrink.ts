import { Type } from '@sinclair/typebox';

import { LepError, optionError } from '../errors.js';
import { checkOptions, cliFlags, defineOptions, flagOf, fromFlags, helpLines, JSON_FLAG, pickOptions } from '../options/optionSpec.js';
import type { ExtendOptions } from '../tokenizer/extend.js';
import { EXTEND_SPEC } from '../tokenizer/extendOptions.js';
import { SHRINK_DIR_SPEC } from '../tokenizer/shrinkOptions.js';
import { shrinkTokenizerDir, type ShrinkTokenizerDirOptions } from '../tokenizer/shrinkTokenizerDir.js';
import { parse, printJson, required } from './args.js';
import { corpusOptions, corpusProgress, corpusSpecs, corpusUsage, readOptions } from './corpusFlags.js';

/** The flags of the command itself (not options of shrinkTokenizerDir). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output tokenizer directory.' },
  json: JSON_FLAG,
});

/** The extend step's options this command sets (with --donor). */
const EXTEND_FLAGS_SPEC = pickOptions(EXTEND_SPEC, ['mergeOrder', 'maxNewTokens', 'padToMultipleOf', 'reservedToken', 'maxSize']);

export const usage = `lep tokenizer shrink ORIGINAL_DIR --keep N --out DIR [--corpus SPEC] [options]
  Optimized vocabulary: keep N original base tokens (closed under merges; specials kept on top), re-pack
  ids (id_map.json), then extend with --donor DIR if given. DIR also gets lep_tokenizer_run.json and the
  stage record lep-stage.json (the inputs with fingerprints, the resolved options, the stats).
${helpLines({ ...CLI_ONLY, ...SHRINK_DIR_SPEC }).join('\n')}
  With --donor, the extend step (as lep tokenizer extend):
${helpLines(EXTEND_FLAGS_SPEC).join('\n')}
  The corpus (rule frequency):
${corpusUsage}
Example: lep tokenizer shrink base --keep 16000 --corpus ru.txt --donor donor --out shrunk`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...corpusOptions, ...cliFlags(CLI_ONLY), ...cliFlags(SHRINK_DIR_SPEC), ...cliFlags(EXTEND_FLAGS_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  const original = required(positionals[0], 'ORIGINAL_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  required(values.keep as string | undefined, '--keep', usage);
  const options = fromFlags(SHRINK_DIR_SPEC, values) as unknown as ShrinkTokenizerDirOptions;
  const extend = fromFlags(EXTEND_FLAGS_SPEC, values) as ExtendOptions;
  const extendFlags = Object.keys(extend).map((k) => flagOf(k, EXTEND_FLAGS_SPEC[k as keyof typeof EXTEND_FLAGS_SPEC]));
  if (extendFlags.length && options.donorDir === undefined)
    throw new LepError(
      'LEP_BAD_OPTION',
      `${optionError('donor', `a donor tokenizer directory when extend options (${extendFlags.join(', ')}) are given`, undefined, '--donor').message}\nHINT: pass --donor DIR (the tokenizer to extend with), or drop ${extendFlags.join(', ')}.`,
    );
  const specs = corpusSpecs(values);
  const read = readOptions(values);
  // Every option is checked before the corpus is listed for the progress line.
  checkOptions(SHRINK_DIR_SPEC, options, { kind: 'options' });
  checkOptions(EXTEND_FLAGS_SPEC, extend, { kind: 'options' });
  const progress = specs.length && options.rule !== 'first-ids' ? await corpusProgress('counting', specs) : undefined;
  const r = await shrinkTokenizerDir(original, out, {
    ...options,
    corpus: specs.length ? specs : undefined,
    read,
    extend,
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
