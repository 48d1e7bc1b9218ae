/**
 * What runs float32 CPU training's matrix products (cpp/core/onednn.h, trainer.cpp
 * TrainingThreads): oneDNN where lep is built with it, the CPU has AVX-512 and the job gives libtorch's
 * pool the threads, unless LEP_TRAIN_PRODUCTS=blas. The rule as `lep info` states it, the build CI
 * makes (setup installs libdnnl-dev, so it must have oneDNN), the CPU check against /proc/cpuinfo, and
 * what a real training job reports it used. The numerics of both paths against PyTorch are in
 * train-torch-parity.test.ts.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { LepError, lepInfo } from '../../ts/index.js';
import { parseCpuinfo } from '../../ts/binding/blasCore.js';
import { trainingProductsChoice } from '../../ts/runtime.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { tempDir, tinyModel } from '../helpers.js';

const run = promisify(execFile);
const LEP = join(import.meta.dirname, '..', '..', 'ts', 'cli', 'main.js');

test('the rule, as lep info states it: built in, AVX-512, libtorch pool with the threads, no LEP_TRAIN_PRODUCTS=blas', async (t) => {
  const yes = { onednn: 'oneDNN 2.6.3', onednnFitsCpu: true, trainingSharesPools: true };
  t.regex(trainingProductsChoice(yes, {}), /^oneDNN 2\.6\.3 /);
  t.regex(trainingProductsChoice(yes, { LEP_TRAIN_PRODUCTS: 'blas' }), /^the BLAS: LEP_TRAIN_PRODUCTS=blas/);
  t.regex(trainingProductsChoice({ ...yes, onednnFitsCpu: false, trainingSharesPools: false }, { LEP_TRAIN_PRODUCTS: 'onednn' }), /^oneDNN 2\.6\.3: LEP_TRAIN_PRODUCTS=onednn/);
  t.regex(trainingProductsChoice({ ...yes, onednn: '' }, {}), /^the BLAS: this addon was built without oneDNN/);
  t.regex(trainingProductsChoice({ ...yes, onednnFitsCpu: false }, {}), /^the BLAS: no AVX-512 here/);
  t.regex(trainingProductsChoice({ ...yes, trainingSharesPools: false }, {}), /^the BLAS: thread waits are long/);
  const info = lepInfo();
  const env = { ...process.env };
  delete env.LEP_TRAIN_PRODUCTS;
  const { stdout } = await run('node', [LEP, 'info'], { env });
  t.true(stdout.includes(`f32 products  ${trainingProductsChoice(info, env)}`), stdout);
});

test('this build calls oneDNN, and its CPU check agrees with /proc/cpuinfo', (t) => {
  const info = lepInfo();
  // scripts/setup.sh installs libdnnl-dev and the build requires it unless told otherwise, so a build
  // without it here means the prebuilt or CI build lost the faster products silently.
  t.regex(info.onednn, /^oneDNN \d+\.\d+\.\d+$/);
  const flags = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  t.is(info.onednnFitsCpu, flags.avx512, `__builtin_cpu_supports against cpuinfo (AVX-512 F/BW/VL/DQ): ${info.onednnFitsCpu} vs ${flags.avx512}`);
});

// serial: it sets LEP_TRAIN_PRODUCTS in this process's environment, which the other tests must not see.
test.serial('a float32 training job reports where its products ran; LEP_TRAIN_PRODUCTS picks the BLAS or is refused when unknown', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 2, seed: 3 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, Array.from({ length: 4 }, (_, r) => Array.from({ length: 17 }, (_, i) => (r * 31 + i * 7) % 200)));
  const info = lepInfo();
  const train = (out: string, dtype: 'f32' | 'bf16' = 'f32') => trainModel(dir, join(tempDir(), out), { data, steps: 1, batchSize: 2, warmupSteps: 0, dtype });
  delete process.env.LEP_TRAIN_PRODUCTS;
  const byDefault = await train('default');
  t.is(byDefault.products, info.onednnFitsCpu && info.trainingSharesPools && info.onednn ? 'onednn' : 'libtorch');
  try {
    process.env.LEP_TRAIN_PRODUCTS = 'blas';
    t.is((await train('blas')).products, 'libtorch');
    process.env.LEP_TRAIN_PRODUCTS = 'onednn';
    t.is((await train('onednn')).products, 'onednn', 'forced, whatever the CPU and threads');
    t.is((await train('onednn-bf16', 'bf16')).products, 'libtorch', 'bf16 products are libtorch\'s own (its oneDNN path)');
    process.env.LEP_TRAIN_PRODUCTS = 'mkl';
    const e = await t.throwsAsync(train('bad'), { instanceOf: LepError });
    t.is(e?.code, 'LEP_BAD_ARGUMENT');
    t.regex(e?.message ?? '', /LEP_TRAIN_PRODUCTS is 'mkl'; it must be onednn or blas[\s\S]*HINT/);
  } finally {
    delete process.env.LEP_TRAIN_PRODUCTS;
  }
});
