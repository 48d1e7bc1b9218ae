/**
 * lep's training against PyTorch's own autograd and optimizer (scripts/torch_reference.py: the HF LLaMA
 * definition in eager PyTorch, torch.optim.AdamW, clip_grad_norm_), on two tiny real-layout models:
 *   A: mistral, GQA 4/2, untied head, Llama 3.1 rope scaling (in a range where it changes the result);
 *   B: qwen2, GQA 4/2, q/k/v bias, tied embeddings, with an assistant-style loss mask.
 * Checks: float64 loss and every gradient tensor, for both parameter selections; and the weights after
 * 5 float32 optimizer steps of `trainModel` (warm-up + cosine, clipping active, weight decay on), also
 * with a row set (only some token rows train: lep gathers and scatters those rows and keeps moments for
 * them only; the reference trains (k, C) leaves put into frozen copies of the matrices); and bf16 (lep's
 * mixed precision) against float32 PyTorch on the same bf16-rounded weights, to bf16 rounding.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { LepModel, lepInfo } from '../../ts/index.js';
import { readSafetensors, type TensorData as NativeTensorData } from '../../ts/checkpoint/index.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { checkTorchReference, runTorchReference } from '../../scripts/torchReference.js';
import { tempDir, tinyModel } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
const VOCAB = 8005;
const ROWS = 4;
const COLS = 33;  // T + 1: 32 positions

/** Tolerances. float64: both sides compute the same maths, so only summation order differs. */
const F64_LOSS_REL = 1e-12;  // measured: 0 (bit-equal)
const F64_GRAD_REL = 1e-12;  // max |Δg| over a tensor, relative to that tensor's max |g| (measured: 2e-15)
/** float32 against the float64 reference: rounding of float32 sums in either summation order. */
const F32_LOSS_REL = 1e-5;
const F32_GRAD_REL = 5e-5;  // max |Δg| over a tensor relative to its max |g|
/** float32, 5 AdamW steps at lr 1e-2: max |Δw| over a tensor, as a fraction of the learning rate. */
const F32_WEIGHT_LR_FRACTION = 2e-3;  // measured: 4e-4 (summation order through Adam's g / sqrt(v))
/** bf16 against float32 on the same (bf16) weights: every product and activation rounded to 8 bits. */
const BF16_LOSS_REL = 2e-3;  // measured: 9e-5 / 2.5e-4
const BF16_GRAD_REL = 5e-2;  // max |Δg| over a tensor relative to its max |g| (measured: 1.4e-2, a k_proj; embeddings 1e-2)

interface Case {
  name: string;
  dir: string;
  mask?: number[][];
}

/** Seeded token ids (a fixed LCG), so the data is the same on every run. */
function seededBlocks(seed: number): number[][] {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % VOCAB;
  return Array.from({ length: ROWS }, () => Array.from({ length: COLS }, next));
}

/** A loss mask like chat packing's: a prompt span off, an answer span on, per row. */
function assistantMask(): number[][] {
  return Array.from({ length: ROWS }, (_, r) => Array.from({ length: COLS }, (_, i) => (i >= 5 + 3 * r && i < 25 + r ? 1 : 0)));
}

async function cases(): Promise<Case[]> {
  const a = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'mistral', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64, seed: 11, embedStd: 0.5, initStd: 0.1 });
  // Llama 3.1 scaling with a short original context: of the 4 RoPE frequencies (head_dim 8), one is
  // kept, one smoothed, two divided by `factor`; over 32 positions that changes the result.
  const cfg = JSON.parse(readFileSync(join(a, 'config.json'), 'utf8'));
  cfg.rope_scaling = { rope_type: 'llama3', factor: 4, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 };
  writeFileSync(join(a, 'config.json'), JSON.stringify(cfg, null, 2));
  const b = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'qwen2', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64, seed: 12, embedStd: 0.5, initStd: 0.1 });
  return [{ name: 'A mistral+rope_scaling', dir: a }, { name: 'B qwen2 tied+bias, masked', dir: b, mask: assistantMask() }];
}

function asNumbers(t: NativeTensorData): Float64Array | Float32Array {
  const buf = new Uint8Array(t.data).slice().buffer;
  if (t.dtype === 'F64') return new Float64Array(buf);
  if (t.dtype === 'F32') return new Float32Array(buf);
  throw new Error(`unexpected dtype ${t.dtype} for ${t.name}`);
}

/** Worst absolute difference, the reference's largest magnitude, and where the worst one is. */
function compare(ours: ArrayLike<number>, ref: ArrayLike<number>): { diff: number; scale: number; at: number } {
  if (ours.length !== ref.length) throw new Error(`length ${ours.length} vs ${ref.length}`);
  let diff = 0;
  let scale = 0;
  let at = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = Math.abs(ours[i]! - ref[i]!);
    if (!(d <= diff)) [diff, at] = [d, i];
    scale = Math.max(scale, Math.abs(ref[i]!));
  }
  return { diff, scale, at };
}

/**
 * lep's loss and every gradient tensor in `names` against the reference (its gradients stored as
 * `${prefix}/${name}`): the loss within `bounds.lossRel` (relative), each tensor's worst |Δ| within
 * `bounds.gradRel` of the tensor's largest reference magnitude. Logs the loss error and the worst tensor.
 */
function checkLossAndGrads(
  t: ExecutionContext, label: string, r: { loss: number; grads: Record<string, Float64Array> }, refLoss: number,
  ref: Map<string, ArrayLike<number>>, prefix: string, names: readonly string[], bounds: { lossRel: number; gradRel: number },
): void {
  const lossRel = Math.abs(r.loss - refLoss) / Math.abs(refLoss);
  t.true(Number.isFinite(r.loss) && lossRel < bounds.lossRel, `${label}: loss ${r.loss} vs torch ${refLoss} (rel ${lossRel.toExponential(2)})`);
  let worst = { name: '', rel: 0 };
  for (const name of names) {
    const { diff, scale, at } = compare(r.grads[name]!, ref.get(`${prefix}/${name}`)!);
    const rel = diff / scale;
    if (rel > worst.rel) worst = { name, rel };
    t.true(scale > 0 && rel < bounds.gradRel, `${label} ${name}: worst |Δ| ${diff.toExponential(2)} at ${at} of max |g| ${scale.toExponential(2)} (rel ${rel.toExponential(2)})`);
  }
  t.log(`${label}: loss rel ${lossRel.toExponential(1)}, worst gradient rel ${worst.rel.toExponential(1)} (${worst.name})`);
}

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('float64 loss and every gradient tensor equal PyTorch autograd, both parameter selections', async (t) => {
  checkTorchReference();  // fails (never skips) without python3-torch, saying to run scripts/setup.sh
  const all = await cases();
  const blocks = seededBlocks(5);
  const work = tempDir();
  const noScaling = join(work, 'no-scaling');
  mkdirSync(noScaling);
  for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(all[0]!.dir, f), join(noScaling, f));
  writeFileSync(join(noScaling, 'config.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(all[0]!.dir, 'config.json'), 'utf8')), rope_scaling: null }));
  const outs = all.map((_, i) => join(work, `grads-${i}.safetensors`));
  const requests = all.map((c, i) => ({ task: 'grads', model: c.dir, dtype: 'float64', tokens: blocks, loss_mask: c.mask ?? null, params: ['all', 'embeddings'], out: outs[i] }));
  requests.push({ task: 'grads', model: noScaling, dtype: 'float64', tokens: blocks, loss_mask: null, params: ['embeddings'], out: join(work, 'unused.safetensors') });
  const answers = await runTorchReference<{ loss: Record<string, number>; names: Record<string, string[]> }[]>(requests);
  // The rope-scaling fixture must exercise the scaling: without it the reference loss differs.
  const scaled = answers[0]!.loss.embeddings!;
  const unscaled = answers[2]!.loss.embeddings!;
  t.true(Math.abs(scaled - unscaled) > 1e-4 * Math.abs(scaled), `rope scaling changes the loss: ${scaled} vs ${unscaled}`);

  for (const [i, c] of all.entries()) {
    const ref = new Map(readSafetensors(outs[i]!).map((x) => [x.name, asNumbers(x)]));
    const model = await LepModel.load(c.dir, { dtype: 'f64' });
    try {
      for (const params of ['all', 'embeddings'] as const) {
        const tokens = new Int32Array(blocks.flat());
        const lossMask = c.mask ? new Uint8Array(c.mask.flat()) : undefined;
        const r = await model.native.lossAndGrads({ tokens, rows: ROWS, cols: COLS, params, ...(lossMask ? { lossMask } : {}) }, null).promise;
        const names = answers[i]!.names[params]!;
        t.deepEqual(Object.keys(r.grads).sort(), [...names].sort(), `${c.name} ${params}: the same trainable tensors`);
        checkLossAndGrads(t, `${c.name} ${params}`, r, answers[i]!.loss[params]!, ref, params, names, { lossRel: F64_LOSS_REL, gradRel: F64_GRAD_REL });
      }
    } finally {
      model.dispose();
    }
  }
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('float32 loss and gradients equal float64 PyTorch to float32 rounding, with the products in oneDNN and in the BLAS', async (t) => {
  checkTorchReference();
  // Both paths, forced (LEP_F32_PRODUCTS), against the same reference: lep's own choice depends on the
  // CPU (lep info "f32 products"; test/native/f32-products.test.ts checks it).
  t.regex(lepInfo().onednn, /^oneDNN /, 'this build has oneDNN (scripts/setup.sh installs libdnnl-dev)');
  const all = await cases();
  const blocks = seededBlocks(8);
  const work = tempDir();
  const outs = all.map((_, i) => join(work, `grads32-${i}.safetensors`));
  const answers = await runTorchReference<{ loss: Record<string, number>; names: Record<string, string[]> }[]>(
    all.map((c, i) => ({ task: 'grads', model: c.dir, dtype: 'float64', tokens: blocks, loss_mask: c.mask ?? null, params: ['all', 'embeddings'], out: outs[i] })),
  );
  const seen = new Set<string>();
  for (const [i, c] of all.entries()) {
    const ref = new Map(readSafetensors(outs[i]!).map((x) => [x.name, asNumbers(x)]));
    const model = await LepModel.load(c.dir, { dtype: 'f32' });
    try {
      for (const products of ['onednn', 'blas'] as const) {
        for (const params of ['all', 'embeddings'] as const) {
          const lossMask = c.mask ? new Uint8Array(c.mask.flat()) : undefined;
          process.env.LEP_F32_PRODUCTS = products;
          let r;
          try {
            r = await model.native.lossAndGrads({ tokens: new Int32Array(blocks.flat()), rows: ROWS, cols: COLS, params, ...(lossMask ? { lossMask } : {}) }, null).promise;
          } finally {
            delete process.env.LEP_F32_PRODUCTS;
          }
          t.is(r.products, products === 'blas' ? 'libtorch' : 'onednn', `${c.name} ${params} ${products}: products`);
          seen.add(r.products);
          checkLossAndGrads(t, `${c.name} ${params} ${r.products}`, r, answers[i]!.loss[params]!, ref, params, answers[i]!.names[params]!, { lossRel: F32_LOSS_REL, gradRel: F32_GRAD_REL });
        }
      }
    } finally {
      model.dispose();
    }
  }
  t.is(seen.size, 2, `paths run: ${[...seen].join(', ')}`);
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('float32 with huge logits (token losses of hundreds of nats, probabilities below float32 range): loss and gradients still equal PyTorch', async (t) => {
  checkTorchReference();
  // Large head weights: the target's probability underflows float32 for most tokens, where lep's loss
  // falls back from -log p_t to the log-softmax of the logits (cpp/core/lm_loss.cpp).
  const dir = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'mistral', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64, seed: 13, embedStd: 20, initStd: 20 });
  const blocks = seededBlocks(7);
  const out = join(tempDir(), 'grads.safetensors');
  const [answer] = await runTorchReference<{ loss: Record<string, number>; names: Record<string, string[]> }[]>([
    { task: 'grads', model: dir, dtype: 'float64', tokens: blocks, loss_mask: null, params: ['embeddings'], out },
  ]);
  const refLoss = answer!.loss.embeddings!;
  t.true(refLoss > 200, `the mean token loss is far beyond float32's exp range: ${refLoss}`);
  const ref = new Map(readSafetensors(out).map((x) => [x.name, asNumbers(x)]));
  const model = await LepModel.load(dir, { dtype: 'f32' });
  try {
    const r = await model.native.lossAndGrads({ tokens: new Int32Array(blocks.flat()), rows: ROWS, cols: COLS, params: 'embeddings' }, null).promise;
    checkLossAndGrads(t, `mean token loss ${refLoss.toFixed(1)} nats, lep float32`, r, refLoss, ref, 'embeddings', answer!.names.embeddings!, { lossRel: 1e-5, gradRel: 1e-4 });
  } finally {
    model.dispose();
  }
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('bfloat16 (mixed precision: bf16 products, float32 softmax and sums): loss and gradients within bf16 rounding of float32 PyTorch on the same weights', async (t) => {
  checkTorchReference();
  const blocks = seededBlocks(6);
  const work = tempDir();
  for (const c of await cases()) {
    // The weights rounded to bf16 once: lep computes in bf16 on them, the reference in float32.
    const dir = join(work, c.name.split(' ')[0]!);
    const m0 = await LepModel.load(c.dir, { dtype: 'bf16' });
    try {
      await m0.native.save({ dir, dtype: 'bf16' }, null).promise;
    } finally {
      m0.dispose();
    }
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(c.dir, f), join(dir, f));
    const out = join(work, `grads-bf16-${c.name.split(' ')[0]!}.safetensors`);
    const [answer] = await runTorchReference<{ loss: Record<string, number>; names: Record<string, string[]> }[]>([
      { task: 'grads', model: dir, dtype: 'float32', tokens: blocks, loss_mask: c.mask ?? null, params: ['all', 'embeddings'], out },
    ]);
    const ref = new Map(readSafetensors(out).map((x) => [x.name, asNumbers(x)]));
    const model = await LepModel.load(dir, { dtype: 'bf16' });
    try {
      for (const params of ['all', 'embeddings'] as const) {
        const lossMask = c.mask ? new Uint8Array(c.mask.flat()) : undefined;
        const r = await model.native.lossAndGrads({ tokens: new Int32Array(blocks.flat()), rows: ROWS, cols: COLS, params, ...(lossMask ? { lossMask } : {}) }, null).promise;
        checkLossAndGrads(t, `${c.name} ${params}`, r, answer!.loss[params]!, ref, params, answer!.names[params]!, { lossRel: BF16_LOSS_REL, gradRel: BF16_GRAD_REL });
      }
    } finally {
      model.dispose();
    }
  }
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('a loss over several chunks (4608 positions, each chunk written into the same buffers, the last one shorter): float64, float32 and bf16 equal PyTorch', async (t) => {
  checkTorchReference();
  // cpp/core/lm_loss.h: a chunk holds about 64 MiB of float32 (or float64) probabilities, so with this
  // 8005-token vocabulary float64 runs in chunks of 1047 rows (5 here) and float32 and bf16 in chunks of
  // 2095 (3 here). The mask takes positions out of every chunk. float32 runs with its products and
  // softmax in oneDNN and in libtorch (forced, as above), since the head gradient accumulates across
  // chunks differently in each.
  const rows = 9;
  const cols = 513;
  let s = 23;
  const blocks = Array.from({ length: rows }, () => Array.from({ length: cols }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % VOCAB));
  const mask = blocks.map((row, r) => row.map((_, i) => ((i + r) % 7 === 3 ? 0 : 1)));
  const dir = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'mistral', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 512, seed: 17, embedStd: 0.5, initStd: 0.1 });
  const work = tempDir();
  const bf16Dir = join(work, 'bf16');  // the weights rounded to bf16 once, for the bf16 comparison
  const m0 = await LepModel.load(dir, { dtype: 'bf16' });
  try {
    await m0.native.save({ dir: bf16Dir, dtype: 'bf16' }, null).promise;
  } finally {
    m0.dispose();
  }
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(dir, f), join(bf16Dir, f));
  const outs = [join(work, 'f64.safetensors'), join(work, 'bf16.safetensors')];
  const answers = await runTorchReference<{ loss: Record<string, number>; names: Record<string, string[]> }[]>([
    { task: 'grads', model: dir, dtype: 'float64', tokens: blocks, loss_mask: mask, params: ['all'], out: outs[0] },
    { task: 'grads', model: bf16Dir, dtype: 'float32', tokens: blocks, loss_mask: mask, params: ['all'], out: outs[1] },
  ]);
  const refs = outs.map((o) => new Map(readSafetensors(o).map((x) => [x.name, asNumbers(x)])));
  const runs = [
    { dtype: 'f64', dir, ref: 0, lossRel: F64_LOSS_REL, gradRel: F64_GRAD_REL },
    { dtype: 'f32', products: 'onednn', dir, ref: 0, lossRel: 1e-5, gradRel: 1e-4 },
    { dtype: 'f32', products: 'blas', dir, ref: 0, lossRel: 1e-5, gradRel: 1e-4 },
    { dtype: 'bf16', dir: bf16Dir, ref: 1, lossRel: BF16_LOSS_REL, gradRel: BF16_GRAD_REL },
  ] as const;
  for (const c of runs) {
    const model = await LepModel.load(c.dir, { dtype: c.dtype });
    if ('products' in c) process.env.LEP_F32_PRODUCTS = c.products;
    try {
      const r = await model.native.lossAndGrads({ tokens: new Int32Array(blocks.flat()), rows, cols, params: 'all', lossMask: new Uint8Array(mask.flat()) }, null).promise;
      if ('products' in c) t.is(r.products, c.products === 'blas' ? 'libtorch' : 'onednn');
      // The chunks are what ran, not only what the comment above says: the whole logits never existed.
      t.is(r.lossChunkRows, c.dtype === 'f64' ? 1047 : 2095, `${c.dtype}: positions per loss chunk`);
      t.is(r.headGradRows, VOCAB, `${c.dtype}: the head's gradient covers the vocabulary`);
      checkLossAndGrads(t, 'products' in c ? `${c.dtype} ${r.products}` : c.dtype, r, answers[c.ref]!.loss.all!, refs[c.ref]!, 'all', answers[c.ref]!.names.all!, c);
    } finally {
      delete process.env.LEP_F32_PRODUCTS;
      model.dispose();
    }
  }
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('5 float32 trainModel steps (warm-up, cosine, clipping, weight decay) end at torch.optim.AdamW weights', async (t) => {
  checkTorchReference();
  const all = await cases();
  const blocks = seededBlocks(9);
  const work = tempDir();
  // One batch = all blocks: the trainer's seeded per-epoch permutation then only reorders rows within
  // the batch, and the mean loss over all target tokens does not depend on row order.
  const opts = { steps: 5, batchSize: ROWS, gradAccum: 1, lr: 1e-2, warmupSteps: 2, minLrRatio: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-5, weightDecay: 0.1, seed: 3 };
  // A: clipped in its first 3 steps only (grad norms 2.85 .. 2.08), B: in every step (norms ~1.15).
  // A trains its embeddings and head at a third of the body's learning rate (a second torch param group).
  const runs: { name: string; dir: string; mask?: number[][]; params: 'all' | 'embeddings'; clip: number; embeddingLr?: number; rows?: number[]; data: string; out: string; ref: string }[] =
    all.map((c, i) => ({ ...c, params: i === 0 ? ('all' as const) : ('embeddings' as const), clip: i === 0 ? 2.5 : 0.5, embeddingLr: i === 0 ? opts.lr / 3 : undefined, data: join(work, `blocks-${i}.safetensors`), out: join(work, `trained-${i}`), ref: join(work, `torch-${i}.safetensors`) }));
  // Row sets, on the untied model (input and head rows, the head's gradient computed for these rows only)
  // and the tied one: ids that occur in the data (some as targets, so the head rows get gradients), one
  // twice, out of order, and one that never occurs.
  const rowSet = [blocks[0]![7]!, blocks[1]![3]!, blocks[0]![1]!, blocks[2]![10]!, blocks[0]![7]!, VOCAB - 1];
  for (const [i, c] of all.entries())
    runs.push({ ...c, name: `${c.name}, rows`, params: 'embeddings', clip: i === 0 ? 0.05 : 0.02, rows: rowSet, data: join(work, `blocks-rows-${i}.safetensors`), out: join(work, `trained-rows-${i}`), ref: join(work, `torch-rows-${i}.safetensors`) });
  for (const r of runs) writeBlocks(r.data, blocks, r.mask);
  const answers = await runTorchReference<{ losses: number[]; grad_norms: number[]; lrs: number[] }[]>(
    runs.map((r) => ({ task: 'train', model: r.dir, dtype: 'float32', blocks: r.data, params: r.params, out: r.ref, steps: opts.steps, lr: opts.lr, embedding_lr: r.embeddingLr, warmup_steps: opts.warmupSteps, min_lr_ratio: opts.minLrRatio, beta1: opts.beta1, beta2: opts.beta2, eps: opts.eps, weight_decay: opts.weightDecay, clip: r.clip, ...(r.rows ? { rows: r.rows } : {}) })),
  );
  for (const [i, r] of runs.entries()) {
    const events: { loss: number; lr: number; gradNorm: number }[] = [];
    const result = await trainModel(r.dir, r.out, { ...opts, clip: r.clip, data: r.data, params: r.params, ...(r.embeddingLr ? { embeddingLr: r.embeddingLr } : {}), ...(r.rows ? { rows: r.rows } : {}), onProgress: (e) => { if (e.phase === 'train') events.push({ loss: e.loss, lr: e.lr, gradNorm: e.gradNorm }); } });
    // With a row set the head's gradient is computed for its distinct rows only, not for all VOCAB and then cut.
    t.is(result.head.gradientRows, r.rows ? new Set(r.rows).size : VOCAB, `${r.name}: head rows given a gradient`);
    const ref = answers[i]!;
    t.is(events.length, opts.steps);
    for (const [s, e] of events.entries()) {
      t.true(Math.abs(e.lr - ref.lrs[s]!) <= 1e-15, `${r.name} step ${s + 1}: lr ${e.lr} vs ${ref.lrs[s]}`);
      t.true(Math.abs(e.loss - ref.losses[s]!) < 1e-5 * ref.losses[s]!, `${r.name} step ${s + 1}: loss ${e.loss} vs torch ${ref.losses[s]}`);
      t.true(Math.abs(e.gradNorm - ref.grad_norms[s]!) < 1e-4 * ref.grad_norms[s]!, `${r.name} step ${s + 1}: grad norm ${e.gradNorm} vs torch ${ref.grad_norms[s]}`);
    }
    t.true(events.some((e) => e.gradNorm > r.clip), `${r.name}: clipping is active in some step (grad norms ${events.map((e) => e.gradNorm.toFixed(3)).join(', ')})`);
    t.true(events[4]!.loss < events[0]!.loss, `${r.name}: the loss falls (${events.map((e) => e.loss.toFixed(4)).join(', ')})`);
    const before = new Map(readSafetensors(join(r.dir, 'model.safetensors')).map((x) => [x.name, asNumbers(x)]));
    const after = new Map(readSafetensors(join(r.out, 'model.safetensors')).map((x) => [x.name, asNumbers(x)]));
    const torchAfter = new Map(readSafetensors(r.ref).map((x) => [x.name, asNumbers(x)]));
    t.is(torchAfter.size, r.params === 'all' ? before.size : r.name.startsWith('A') ? 2 : 1);
    let worst = { name: '', diff: 0, moved: 0 };
    for (const [name, w] of after) {
      const expected = torchAfter.get(name) ?? before.get(name)!;
      const { diff, at } = compare(w, expected);
      const moved = compare(before.get(name)!, expected).diff;
      if (diff >= worst.diff) worst = { name, diff, moved };
      t.true(diff <= F32_WEIGHT_LR_FRACTION * opts.lr, `${r.name} ${name}: worst |Δw| ${diff.toExponential(2)} at ${at} (torch moved it up to ${moved.toExponential(2)})`);
    }
    t.log(`${r.name} (${r.params}): worst |Δw| after ${opts.steps} steps ${worst.diff.toExponential(2)} (${worst.name}; moved up to ${worst.moved.toExponential(2)}); losses ${events.map((e) => e.loss.toFixed(4)).join(' ')}; grad norms ${events.map((e) => e.gradNorm.toFixed(2)).join(' ')} (clip ${r.clip})`);
  }
});
