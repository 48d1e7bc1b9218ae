import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { Type } from '@sinclair/typebox';

import { exportGguf, type ExportGgufOptions } from '../checkpoint/gguf.js';
import { GGUF_SPEC } from '../checkpoint/ggufOptions.js';
import { LepError } from '../errors.js';
import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { parse, printJson, progressLine, required } from './args.js';

/** The flags of the command itself (not options of exportGguf). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'FILE.gguf', doc: 'Output GGUF file.' },
  json: JSON_FLAG,
});

export const usage = `lep export gguf MODEL_DIR --out FILE.gguf [options]
  Writes llama.cpp's GGUF format: weights, hyper-parameters, tokenizer and chat template.
  A vocabulary llama.cpp cannot tokenise exactly as lep (docs/reliability.md) is refused with the agreement
  measured on a built-in English and Russian sample (and on --check-text); --force writes it anyway.
${helpLines({ ...CLI_ONLY, ...GGUF_SPEC }).join('\n')}
Example: lep export gguf model --out model.gguf --outtype f16`;

/**
 * A model directory that a killed writer (an older lep, or another tool) left half-made exports without its
 * chat template and special tokens: tokenizer.json without tokenizer_config.json is refused.
 */
function checkComplete(dir: string): void {
  if (existsSync(join(dir, 'tokenizer.json')) && !existsSync(join(dir, 'tokenizer_config.json')))
    throw new LepError(
      'LEP_INCOMPLETE_MODEL_DIR',
      `MODEL_DIR ${dir} has tokenizer.json but no tokenizer_config.json: the GGUF would lose the chat template and special tokens (a write into this directory was probably interrupted)\n` +
        'HINT: re-run the command that made the directory, or copy tokenizer_config.json from the model it came from.',
    );
}

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(GGUF_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  const dir = required(positionals[0], 'MODEL_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const options = fromFlags(GGUF_SPEC, values) as ExportGgufOptions;
  // Checked before anything is read or the output prepared (exportGguf checks the same).
  checkOptions(GGUF_SPEC, options, { kind: 'options' });
  checkComplete(dir);
  const r = await exportGguf(dir, out, { ...options, onProgress: progressLine('gguf') });
  if (values.json) return printJson({ out, ...r });
  if (r.warning) console.error(`lep: warning: ${r.warning}`);
  console.log(`wrote ${out} (${(r.bytes / 1e6).toFixed(1)} MB); tokenizer: ${r.tokenizer.exact ? 'llama.cpp tokenises exactly as lep' : 'llama.cpp tokenises differently (see the warning)'}`);
}
