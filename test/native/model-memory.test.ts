/**
 * Peak memory of making and loading a bf16 model, measured in a child process (a fresh peak RSS, no
 * neighbouring test's memory) against the file size: `model create --dtype bf16` draws the weights into
 * a bf16 model (holding them in f32 and converting at save peaked at 3x the file: 48 GB for LLaMa-3-8B
 * shapes), and loading a bf16 checkpoint in bf16 copies each tensor straight into its parameter (through
 * an f32 copy, the largest tensor in f32 was added to the peak: 2 GiB at LLaMa-3-8B shapes).
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { createModel, mistralTokenizerDir } from '../../ts/index.js';
import { tempDir } from '../helpers.js';

const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));

// Loads the addon first, so the measured growth is the model's (and the job's) alone.
const CHILD = `
import { readFileSync } from 'node:fs';
const lep = await import(process.argv[1]);
const kb = (key) => Number(new RegExp(key + ':\\\\s+(\\\\d+) kB').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const m = await lep.LepModel.load(process.argv[2]).catch(() => undefined);
const before = kb('VmHWM');
await lep.createModel(process.argv[3], { tokenizerDir: lep.mistralTokenizerDir(), hiddenSize: 1024, intermediateSize: 2816,
  numHiddenLayers: 8, numAttentionHeads: 8, dtype: 'bf16' });
console.log(JSON.stringify({ before, peak: kb('VmHWM') }));
`;

// Measured on a 346 MiB file: 2.58x (the mmap'ed file, the parameters and the tokenizer), 3.02x when
// each tensor went through an f32 copy.
const LOAD_LIMIT = 2.8;

test('model create in bf16 never holds an f32 copy of the model', async (t) => {
  const dir = tempDir();
  const out = join(dir, 'model');
  // A missing model dir: loading fails, but the addon (libtorch) is loaded by then.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, INDEX, join(dir, 'none'), out], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const { before, peak } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; peak: number };
  const bf16Bytes = statSync(join(out, 'model.safetensors')).size;
  const grown = peak - before;
  t.log(`file ${(bf16Bytes / 2 ** 20).toFixed(0)} MiB, peak RSS grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
  // Measured: 1.96x the file with the model drawn in bf16 (the weights, the largest tensor drawn in f32
  // and the allocator's slack), 3.57x when it was held in f32 and converted at save.
  t.true(grown < 2.5 * bf16Bytes, `peak RSS grew by ${grown} bytes for a ${bf16Bytes}-byte bf16 model`);
});

// A model whose embeddings are most of it, so that one f32 copy of the largest tensor shows.
const LOAD_CHILD = `
import { readFileSync } from 'node:fs';
const lep = await import(process.argv[1]);
const kb = (key) => Number(new RegExp(key + ':\\\\s+(\\\\d+) kB').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
await lep.LepModel.load(process.argv[2] + '-none').catch(() => undefined);
const before = kb('VmHWM');
const m = await lep.LepModel.load(process.argv[2], { dtype: 'bf16' });
console.log(JSON.stringify({ before, peak: kb('VmHWM') }));
m.dispose();
`;

test('loading a bf16 checkpoint in bf16 holds no f32 copy of a tensor', async (t) => {
  const out = join(tempDir(), 'model');
  // Made here: the child's peak is the load's alone.
  await createModel(out, { tokenizerDir: mistralTokenizerDir(), hiddenSize: 2048, numHiddenLayers: 1, numAttentionHeads: 16, dtype: 'bf16' });
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', LOAD_CHILD, INDEX, out], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const { before, peak } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; peak: number };
  const bf16Bytes = statSync(join(out, 'model.safetensors')).size;
  const grown = peak - before;
  t.log(`file ${(bf16Bytes / 2 ** 20).toFixed(0)} MiB, peak RSS grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
  t.true(grown < LOAD_LIMIT * bf16Bytes, `peak RSS grew by ${grown} bytes loading a ${bf16Bytes}-byte bf16 model`);
});
