/**
 * What runs a float32 model's matrix products on the CPU in training and in prompts (cpp/core/onednn.h;
 * the rule: cpp/core/runtime.h float32_products, which jobs (compute_threads.cpp) and `lep info` both
 * call): oneDNN where lep is built with it, runs AVX2 kernels or better and libtorch's pool may get the threads,
 * unless LEP_F32_PRODUCTS=blas. The rule as `lep info` states it, the build CI makes (setup installs
 * libdnnl-dev, so it must have oneDNN), the CPU check against /proc/cpuinfo, what a real training job
 * reports it used, and scoring and generation refusing a bad LEP_F32_PRODUCTS like training does. The
 * numerics of both paths against PyTorch are in train-torch-parity.test.ts and score-torch-parity.test.ts.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { LepError, LepModel, lepInfo } from '../../ts/index.js';
import { parseCpuinfo } from '../../ts/binding/blasCore.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { LEP_CLI as LEP, tempDir, tinyModel } from '../helpers.js';

const run = promisify(execFile);

// serial: it sets LEP_F32_PRODUCTS in this process's environment, which the other tests must not see.
test.serial('the rule, as lep info states it (cpp/core/runtime.h, float32_products, the one jobs use): built in, AVX2 kernels or better, libtorch pool with the threads, LEP_F32_PRODUCTS', async (t) => {
  delete process.env.LEP_F32_PRODUCTS;
  const info = lepInfo();
  t.is(info.f32Products, info.onednn && info.onednnFitsCpu && info.trainingSharesPools
    ? `${info.onednn} (faster than the BLAS with AVX2 and AVX-512 kernels; LEP_F32_PRODUCTS=blas for the BLAS)`
    : !info.onednn ? 'the BLAS: this addon was built without oneDNN (cmake -DLEP_ONEDNN=OFF)'
      : !info.onednnFitsCpu ? `the BLAS: ${info.onednn} has no AVX2 kernels for this CPU, and its edge over the BLAS was measured with AVX2 and AVX-512`
        : `the BLAS: thread waits are long, so libtorch's pool (which ${info.onednn} threads with) keeps 1 thread`);
  try {
    // Read afresh at each call, as a job starting now would.
    process.env.LEP_F32_PRODUCTS = 'blas';
    t.regex(lepInfo().f32Products, /^the BLAS: LEP_F32_PRODUCTS=blas \(oneDNN /);
    process.env.LEP_F32_PRODUCTS = 'onednn';
    t.regex(lepInfo().f32Products, /^oneDNN \d+\.\d+\.\d+: LEP_F32_PRODUCTS=onednn$/);
    process.env.LEP_F32_PRODUCTS = 'mkl';
    t.regex(lepInfo().f32Products, /^refused: LEP_F32_PRODUCTS is 'mkl'/);
  } finally {
    delete process.env.LEP_F32_PRODUCTS;
  }
  // `lep info` prints it; long thread waits (decided when the libraries load, so in a fresh process)
  // keep libtorch's pool at 1 and the products in the BLAS.
  const env = { ...process.env };
  delete env.LEP_F32_PRODUCTS;
  const { stdout } = await run('node', [LEP, 'info'], { env });
  t.true(stdout.includes(`f32 products  ${info.f32Products}\n`), stdout);
  if (info.onednn && info.onednnFitsCpu && info.blasCore) {
    // Both long (an OpenMP-built OpenBLAS follows GOMP_SPINCOUNT rather than its own timeout).
    const long = await run('node', [LEP, 'info'], { env: { ...env, OPENBLAS_THREAD_TIMEOUT: '1000', GOMP_SPINCOUNT: '1000000' } });
    t.regex(long.stdout, /f32 products {2}the BLAS: thread waits are long/);
  }
});

test('this build calls oneDNN, and its CPU check agrees with /proc/cpuinfo and follows ONEDNN_MAX_CPU_ISA', async (t) => {
  const info = lepInfo();
  // scripts/setup.sh installs libdnnl-dev and the build requires it unless told otherwise, so a build
  // without it here means the prebuilt or CI build lost the faster products silently.
  t.regex(info.onednn, /^oneDNN \d+\.\d+\.\d+$/);
  const flags = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  // (The suite runs without ONEDNN_MAX_CPU_ISA; scripts/ci/blas-cores.sh sets it for other test files only.)
  t.is(info.onednnFitsCpu, flags.avx2 && flags.fma, `oneDNN's own ISA against cpuinfo (AVX2 + FMA): ${info.onednnFitsCpu} vs ${flags.avx2 && flags.fma}`);
  // The rule asks oneDNN which kernels it runs, so capping them (a user's setting, or CI emulating an
  // older CPU) moves the products: AVX only sends them to the BLAS, AVX2 keeps them in oneDNN.
  const env = { ...process.env };
  delete env.LEP_F32_PRODUCTS;
  type Info = { onednnFitsCpu: boolean; f32Products: string };
  const capped = async (isa: string) => JSON.parse((await run('node', [LEP, 'info', '--json'], { env: { ...env, ONEDNN_MAX_CPU_ISA: isa } })).stdout) as Info;
  const avx = await capped('AVX');
  t.false(avx.onednnFitsCpu);
  t.regex(avx.f32Products, /^the BLAS: oneDNN \S+ has no AVX2 kernels for this CPU/);
  if (flags.avx2 && flags.fma) {
    const avx2 = await capped('AVX2');
    t.true(avx2.onednnFitsCpu);
    t.is(avx2.f32Products, info.f32Products, 'AVX2 kernels: the same choice as uncapped');
  }
});

// Scores one sequence with a bf16 model in a child, so that ONEDNN_MAX_CPU_ISA is read at its start.
const BF16_CHILD = `const lep = await import(process.argv[1]);
const m = await lep.LepModel.load(process.argv[2], { dtype: 'bf16' });
console.log(JSON.stringify(await m.score([[1, 2, 3, 4, 5, 6]]).then(([s]) => ({ logprob: s.tokenLogprobs[2] }), (e) => ({ code: e.code, message: e.message }))));`;

test('bf16 products oneDNN is held from (libtorch 1.13 sends them to its AVX-512 kernels) are refused with a hint, not oneDNN\'s bare error', async (t) => {
  const model = await tinyModel({ hiddenSize: 64, dtype: 'bf16' });
  const flags = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
  const INDEX = join(import.meta.dirname, '..', '..', 'ts', 'index.js');
  const score = async (isa?: string) => {
    const env = { ...process.env };
    delete env.ONEDNN_MAX_CPU_ISA;
    const r = await run('node', ['--input-type=module', '-e', BF16_CHILD, INDEX, model], { env: isa ? { ...env, ONEDNN_MAX_CPU_ISA: isa } : env });
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { logprob?: number; code?: string; message?: string };
  };
  const capped = await score('AVX2');
  // libtorch 1.13 routes bf16 matmuls by the CPU's AVX-512 flags; 2.x asks oneDNN, which then uses other kernels.
  if (lepInfo().torchVersion.startsWith('1.') && flags.avx512) {
    t.is(capped.code, 'LEP_BAD_DTYPE', JSON.stringify(capped));
    t.regex(capped.message ?? '', /^bfloat16 products fail on this CPU \(could not create a primitive descriptor.*\); ONEDNN_MAX_CPU_ISA=AVX2 holds oneDNN below[\s\S]*\nHINT: unset ONEDNN_MAX_CPU_ISA \(or set AVX512_CORE or higher\), or use --dtype f32/);
  } else {
    t.is(typeof capped.logprob, 'number', JSON.stringify(capped));
  }
  // Uncapped, the same model scores.
  t.is(typeof (await score()).logprob, 'number');
});

// serial: it sets LEP_F32_PRODUCTS in this process's environment, which the other tests must not see.
test.serial('a float32 training job reports where its products ran; LEP_F32_PRODUCTS picks the BLAS or is refused when unknown', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 2, seed: 3 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, Array.from({ length: 4 }, (_, r) => Array.from({ length: 17 }, (_, i) => (r * 31 + i * 7) % 200)));
  const info = lepInfo();
  const train = (out: string, dtype: 'f32' | 'bf16' = 'f32') => trainModel(dir, join(tempDir(), out), { data, steps: 1, batchSize: 2, warmupSteps: 0, dtype });
  delete process.env.LEP_F32_PRODUCTS;
  const byDefault = await train('default');
  t.is(byDefault.products, info.f32Products.startsWith('oneDNN') ? 'onednn' : 'libtorch', info.f32Products);
  try {
    process.env.LEP_F32_PRODUCTS = 'blas';
    t.is((await train('blas')).products, 'libtorch');
    process.env.LEP_F32_PRODUCTS = 'onednn';
    t.is((await train('onednn')).products, 'onednn', 'forced, whatever the CPU and threads');
    t.is((await train('onednn-bf16', 'bf16')).products, 'libtorch', 'bf16 products are libtorch\'s own (its oneDNN path)');
    process.env.LEP_F32_PRODUCTS = 'mkl';
    const e = await t.throwsAsync(train('bad'), { instanceOf: LepError });
    t.is(e?.code, 'LEP_BAD_ARGUMENT');
    t.regex(e?.message ?? '', /LEP_F32_PRODUCTS is 'mkl'; it must be onednn or blas[\s\S]*HINT/);
    t.regex(lepInfo().f32Products, /^refused: LEP_F32_PRODUCTS is 'mkl'/, 'lep info says what a job does');
  } finally {
    delete process.env.LEP_F32_PRODUCTS;
  }
});

// serial: it sets LEP_F32_PRODUCTS in this process's environment, which the other tests must not see.
test.serial('scoring and generation read LEP_F32_PRODUCTS as training does: an unknown value is refused, the model stays usable', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 2, seed: 3 });
  const m = await LepModel.load(dir);
  try {
    delete process.env.LEP_F32_PRODUCTS;
    const [before] = await m.score([[1, 5, 9, 13]]);
    process.env.LEP_F32_PRODUCTS = 'mkl';
    for (const job of [() => m.score([[1, 5, 9, 13]]), () => m.generateTokens([[1, 5]], { maxNewTokens: 2, stopTokens: [] })]) {
      const e = await t.throwsAsync(job(), { instanceOf: LepError });
      t.is(e?.code, 'LEP_BAD_ARGUMENT');
      t.regex(e?.message ?? '', /LEP_F32_PRODUCTS is 'mkl'; it must be onednn or blas[\s\S]*HINT/);
    }
    delete process.env.LEP_F32_PRODUCTS;
    const [after] = await m.score([[1, 5, 9, 13]]);
    t.deepEqual(after!.tokenLogprobs, before!.tokenLogprobs);
  } finally {
    delete process.env.LEP_F32_PRODUCTS;
    m.dispose();
  }
});
