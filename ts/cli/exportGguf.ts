import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { exportGguf, type GgufOutType } from '../checkpoint/gguf.js';
import { LepError } from '../errors.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { prepareFileOutput } from '../util/prepareFileOutput.js';
import { parse, progressLine, required } from './args.js';

export const usage = `lep export gguf MODEL_DIR --out FILE.gguf [--outtype f16|bf16|f32] [--name NAME] [--check-text FILE] [--force]
  Writes llama.cpp's GGUF format: weights, hyper-parameters, tokenizer and chat template.
  A vocabulary llama.cpp cannot tokenise exactly as lep (docs/reliability.md) is refused with the agreement
  measured on a built-in English and Russian sample (and on --check-text FILE, one text per line);
  --force writes it anyway with a warning.
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
  const { values, positionals } = parse(argv, { out: { type: 'string' }, outtype: { type: 'string' }, name: { type: 'string' }, 'check-text': { type: 'string' }, force: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const dir = required(positionals[0], 'MODEL_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const checkText = values['check-text'] as string | undefined;
  checkOutputPath(out, '--out', { MODEL_DIR: dir, ...(checkText ? { '--check-text': checkText } : {}) });
  checkComplete(dir);
  prepareFileOutput(out, '--out');
  const r = await exportGguf(dir, out, {
    outType: values.outtype as GgufOutType | undefined,
    name: values.name as string | undefined,
    checkText,
    force: values.force === true,
    onProgress: progressLine('gguf'),
  });
  if (r.warning) console.error(`lep: warning: ${r.warning}`);
  console.log(`wrote ${out} (${(r.bytes / 1e6).toFixed(1)} MB); tokenizer: ${r.tokenizer.exact ? 'llama.cpp tokenises exactly as lep' : 'llama.cpp tokenises differently (see the warning)'}`);
}
