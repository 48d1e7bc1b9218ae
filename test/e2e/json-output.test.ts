// `--json` on the commands that produce data: one JSON document on stdout with the stage's result, progress
// and notes on stderr.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { mistralTokenizerDir } from '../../ts/index.js';
import { tempDir } from '../helpers.js';

const LEP = join(import.meta.dirname, '..', '..', 'ts', 'cli', 'main.js');

async function lepJson(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, [LEP, ...args, '--json'], { env: { ...process.env, LEP_THREADS: '1' } });
  return JSON.parse(stdout) as Record<string, unknown>;
}

test('model create, generate, data pack and train print their result as one JSON document', async (t) => {
  const dir = tempDir();
  const model = join(dir, 'm');
  const created = await lepJson('model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', model, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2', '--seed', '3');
  t.is(created.out, model);
  t.like(created.config, { hiddenSize: 32, numHiddenLayers: 1, vocabSize: 32000 });
  const generated = await lepJson('generate', model, '--prompt', 'Hello', '--max-new-tokens', '4');
  t.is((generated.tokens as number[]).length, 4);
  t.is(typeof generated.text, 'string');
  t.is(generated.finishReason, 'length');
  const text = join(dir, 'text.txt');
  writeFileSync(text, Array.from({ length: 200 }, (_, i) => `Line ${i} of a small training text, with some words in it.`).join('\n'));
  const data = join(dir, 'blocks.safetensors');
  const packed = await lepJson('data', 'pack', '--tokenizer', model, '--out', data, '--seq-len', '32', text);
  t.is(packed.out, data);
  t.true((packed.blocks as number) > 2);
  const trained = await lepJson('train', model, '--data', data, '--out', join(dir, 'run'), '--steps', '2', '--batch-size', '2', '--embeddings-only');
  t.like(trained, { outDir: join(dir, 'run'), stepsDone: 2 });
  t.true(Number.isFinite(trained.lastLoss));
});
