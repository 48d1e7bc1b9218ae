/**
 * A training step of lep against the same step in eager PyTorch, on the same model, the same threads.
 *
 * What it measures, once per thread count in `--threads`, `--reps` rounds alternating the two sides
 * (which goes first alternates too), median over rounds of each round's median step time:
 *   - lep:   `trainModel` (all parameters unless `--params`, f32 unless `--dtype`, AdamW, clipping, cosine schedule), the step time being the
 *            engine's own per-step clock (the `tokens_per_s` of each progress event: batch assembly,
 *            forward, chunked LM loss, backward, clipping, AdamW), after one untimed warm-up step; no
 *            checkpoint is written inside the timed steps (one after the last, outside the clock).
 *   - torch: scripts/torch_reference.py `time` (Debian's PyTorch 1.13 on the same OpenBLAS): the HF
 *            LLaMA definition in eager PyTorch, full logits + F.cross_entropy, loss.backward(),
 *            clip_grad_norm_, torch.optim.AdamW; per-step wall clock after one untimed warm-up step.
 *            Same allocator setting as lep (glibc mmap/trim thresholds raised, docs/architecture.md).
 *   - peak:  the machine's f32 matmul rate: the best of 5 square 2048 x 2048 torch.mm in the reference
 *            process, with the same BLAS threads (measured in every round; the best round counts).
 *   - best:  with several thread counts, each side at its own fastest one (lep's tok/s against PyTorch's).
 *   - fraction of peak: a step's FLOPs / step time / peak. A step's FLOPs are counted as
 *            6 x (matmul weights: q, k, v, o, gate, up, down of every layer + the LM head) x tokens
 *            + 12 x layers x T x (heads x head_dim) x tokens for attention (QK^T and PV, forward 4·T·H·D
 *            per token, backward twice that; both sides compute the full T x T scores, no causal skip).
 *            Embedding lookups, norms, RoPE, softmax and the optimizer are not counted.
 *            With `--params embeddings` the layers' weights take 4 x (forward, and the gradient of their
 *            input only: they are frozen), the LM head still 6 x.
 * Threads: lep's `setThreads(n)`: OpenBLAS n threads, and libtorch's OpenMP pool n too in a training job
 * where idle workers sleep soon (lep's OPENBLAS_THREAD_TIMEOUT / GOMP_SPINCOUNT, `lep info` "thread waits";
 * else 1). PyTorch gets exactly the same: the reference process inherits this process's environment (lep's
 * settings included), torch.set_num_threads(the pool lep's job reported) and openblas_set_num_threads(n)
 * (torch.set_num_threads does not reach OpenBLAS in PyTorch 1.13).
 * Correctness first: 2 steps on one fixed batch on both sides; the losses must agree (printed).
 *
 * `--dtype bf16`: lep trains in its mixed precision (bf16 weights and products, float32 master weights,
 * softmax and sums; oneDNN runs bf16 products on AMX / AVX-512 BF16 where the CPU has them), against
 * the same two-sided PyTorch step in float32 (the baseline above) and under torch.autocast("cpu",
 * bfloat16) (PyTorch's own mixed precision, `torch-autocast`); the loss check then allows bf16 rounding
 * (1e-2 relative instead of 1e-4).
 *
 * `--params embeddings`: both sides train the input embeddings and the LM head only (the method's own
 * training, step 3 of docs/method.md), everything else frozen; default `all`.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/train-torch.js [--size toy|small] [--threads 1,2]
 *        [--reps N] [--steps N] [--dtype f32|bf16] [--params all|embeddings] [--no-record]
 * Prints a markdown table and appends one JSON line to bench/results/train-torch.jsonl.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { createModel, lepInfo, mistralTokenizerDir, setThreads } from '../ts/index.js';
import { writeBlocks } from '../ts/train/packBlocks.js';
import { trainModel } from '../ts/train/trainModel.js';
import { runTorchReference } from '../scripts/torchReference.js';
import { DEFAULT_THREADS, median, parseSize, parseThreadList, positiveInt } from './benchArgs.js';
import { BATCH, SEQ, SIZES, seededBlocks } from './trainShapes.js';

type SizeName = keyof typeof SIZES;
type Shape = (typeof SIZES)[SizeName];

export const DEFAULT_SIZE: SizeName = 'toy';
export const DEFAULT_REPS = 3;
/** Timed steps per round and side (after one warm-up step). */
export const DEFAULT_STEPS = 3;
const SEED = 1;
const PEAK_SIZE = 2048;
const RESULTS = join(import.meta.dirname, '..', '..', 'bench', 'results', 'train-torch.jsonl');

interface Options {
  size: SizeName;
  dtype: 'f32' | 'bf16';
  params: 'all' | 'embeddings';
  threads: number[];
  reps: number;
  steps: number;
  record: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: DEFAULT_SIZE },
      threads: { type: 'string', default: DEFAULT_THREADS.join(',') },
      reps: { type: 'string', default: String(DEFAULT_REPS) },
      steps: { type: 'string', default: String(DEFAULT_STEPS) },
      dtype: { type: 'string', default: 'f32' },
      params: { type: 'string', default: 'all' },
      'no-record': { type: 'boolean', default: false },
    },
  });
  if (values.dtype !== 'f32' && values.dtype !== 'bf16') throw new Error(`--dtype must be f32 or bf16, got ${values.dtype}`);
  if (values.params !== 'all' && values.params !== 'embeddings') throw new Error(`--params must be all or embeddings, got ${values.params}`);
  return {
    size: parseSize(values.size, SIZES),
    dtype: values.dtype,
    params: values.params,
    threads: parseThreadList(values.threads),
    reps: positiveInt(values.reps, 'reps'),
    steps: positiveInt(values.steps, 'steps'),
    record: !values['no-record'],
  };
}

/** FLOPs of one training step, as stated in the header. */
function stepFlops(c: Shape, vocab: number, tokens: number, params: Options['params']): { matmul: number; attention: number; weights: number } {
  const headDim = c.hiddenSize / c.numAttentionHeads;
  const q = c.numAttentionHeads * headDim;
  const kv = c.numKeyValueHeads * headDim;
  const layers = c.numHiddenLayers * (c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize);
  const head = vocab * c.hiddenSize;
  return { matmul: ((params === 'all' ? 6 : 4) * layers + 6 * head) * tokens, attention: 12 * c.numHiddenLayers * SEQ * q * tokens, weights: layers + head };
}

type Side = 'lep' | 'torch' | 'torch-autocast';

/** One thread count's result, as recorded in bench/results/train-torch.jsonl. */
interface Run {
  threads: number;
  /** libtorch's pool size on both sides. */
  pool: number;
  /** Where lep's float32 products ran. */
  products: string;
  stepSeconds: Partial<Record<Side, number[][]>>;
  medianStepSeconds: Record<Side, number>;
  tokensPerSecond: Partial<Record<Side, number>>;
  ratio: number;
  ratioAutocast?: number;
  peakGflops: number;
  fractionOfPeak: Partial<Record<Side, number>>;
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const shape = SIZES[opts.size];
  const command = ['node', 'dist/bench/train-torch.js', ...process.argv.slice(2)].join(' ');
  const work = mkdtempSync(join(tmpdir(), 'lep-bench-train-torch-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const model = join(work, 'model');
  const config = await createModel(model, { tokenizerDir: mistralTokenizerDir(), modelType: 'llama', ...shape, maxPositionEmbeddings: 512, seed: SEED });
  const tokens = BATCH * SEQ;
  const flops = stepFlops(shape, config.vocabSize, tokens, opts.params);
  const stepFlop = flops.matmul + flops.attention;
  // Timing data: warm-up + timed steps of distinct blocks, so both sides see the same batches.
  const data = join(work, 'blocks.safetensors');
  writeBlocks(data, seededBlocks(BATCH * (opts.steps + 1), config.vocabSize, 7));
  const train = { lr: 1e-4, warmupSteps: 0, weightDecay: 0.1, clip: 1.0 };
  const info = lepInfo();
  console.error(`model ${opts.size}: ${(flops.weights / 1e6).toFixed(2)}M matmul weights, step = ${BATCH} x ${SEQ} tokens = ${(stepFlop / 1e9).toFixed(1)} GFLOP; libtorch ${info.torchVersion} ${info.blas}`);

  // --- correctness first: 2 steps on one fixed batch (all blocks of a BATCH-block file), both sides
  const checkData = join(work, 'check.safetensors');
  writeBlocks(checkData, seededBlocks(BATCH, config.vocabSize, 3));
  setThreads(Math.max(...opts.threads));
  const lepLosses: number[] = [];
  await trainModel(model, join(work, 'check-out'), { data: checkData, steps: 2, batchSize: BATCH, dtype: opts.dtype, params: opts.params, ...train, onProgress: (e) => { if (e.phase === 'train') lepLosses.push(e.loss); } });
  const ref = await runTorchReference<{ losses: number[] }>({ task: 'train', model, blocks: checkData, out: join(work, 'check-torch.safetensors'), steps: 2, params: opts.params, lr: train.lr, warmup_steps: 0, weight_decay: train.weightDecay, clip: train.clip, blas_threads: Math.max(...opts.threads) });
  const checkRel = Math.max(...lepLosses.map((l, i) => Math.abs(l - ref.losses[i]!) / ref.losses[i]!));
  console.error(`check: losses lep ${lepLosses.map((l) => l.toFixed(6)).join(', ')} vs torch ${ref.losses.map((l) => l.toFixed(6)).join(', ')} (worst rel ${checkRel.toExponential(1)})`);
  if (!(checkRel < (opts.dtype === 'f32' ? 1e-4 : 1e-2))) throw new Error(`lep and PyTorch disagree on the loss (rel ${checkRel}); not timing a wrong step`);

  // --- timing
  // libtorch's pool size in lep's job, by BLAS thread count: PyTorch gets the same (each thread count's first
  // round runs lep first).
  const lepPool = new Map<number, number>();
  let lepProducts = '';  // where lep's float32 products ran (TrainResult.products)
  const lepStep = async (): Promise<number[]> => {
    const secs: number[] = [];
    const out = join(work, `lep-out-${Date.now()}`);
    // One checkpoint, after the last step: the engine's per-step clock runs from one progress event to the
    // next, so a checkpoint written after step k (every step by default at this step count) would count
    // into step k + 1, and the PyTorch side writes none.
    const r = await trainModel(model, out, { data, steps: opts.steps + 1, batchSize: BATCH, seed: 0, dtype: opts.dtype, params: opts.params, ...train, checkpointEvery: opts.steps + 1, onProgress: (e) => { if (e.phase === 'train') secs.push(e.tokens / e.tokensPerS); } });
    lepPool.set(r.threads.blas, r.threads.intraOp);
    lepProducts = r.products;
    rmSync(out, { recursive: true, force: true });
    return secs.slice(1);
  };
  const torchStep = async (threads: number, autocast: boolean): Promise<{ secs: number[]; peak: number }> => {
    const [t, p] = await runTorchReference<[{ step_seconds: number[] }, { gflops: number }]>([
      { task: 'time', model, blocks: data, batch_size: BATCH, steps: opts.steps, warmup: 1, threads: lepPool.get(threads) ?? 1, blas_threads: threads, params: opts.params, lr: train.lr, weight_decay: train.weightDecay, clip: train.clip, autocast },
      { task: 'matmul_peak', size: PEAK_SIZE, reps: 5, threads: 1, blas_threads: threads },
    ]);
    return { secs: t.step_seconds, peak: p.gflops * 1e9 };
  };
  const runs: Run[] = [];
  const sides: Side[] = opts.dtype === 'bf16' ? ['lep', 'torch', 'torch-autocast'] : ['lep', 'torch'];
  for (const threads of opts.threads) {
    setThreads(threads);
    const rounds: Partial<Record<Side, number[]>> = Object.fromEntries(sides.map((x) => [x, []]));
    const all: Partial<Record<Side, number[][]>> = Object.fromEntries(sides.map((x) => [x, []]));
    let peak = 0;
    for (let rep = 0; rep < opts.reps; rep++) {
      for (const side of rep % 2 === 0 ? sides : [...sides].reverse()) {
        let secs: number[];
        if (side === 'lep') secs = await lepStep();
        else {
          const r = await torchStep(threads, side === 'torch-autocast');
          secs = r.secs;
          peak = Math.max(peak, r.peak);
        }
        all[side]!.push(secs);
        rounds[side]!.push(median(secs));
      }
      console.error(`threads ${threads} round ${rep + 1}: ${sides.map((x) => `${x} ${rounds[x]!.at(-1)!.toFixed(3)} s`).join(', ')} per step`);
    }
    const sec = Object.fromEntries(sides.map((x) => [x, median(rounds[x]!)])) as Record<Side, number>;
    runs.push({
      threads,
      pool: lepPool.get(threads) ?? 1,
      products: lepProducts,
      stepSeconds: all,
      medianStepSeconds: sec,
      tokensPerSecond: Object.fromEntries(sides.map((x) => [x, tokens / sec[x]])),
      ratio: sec.torch / sec.lep,
      ...(opts.dtype === 'bf16' ? { ratioAutocast: sec['torch-autocast'] / sec.lep } : {}),
      peakGflops: peak / 1e9,
      fractionOfPeak: Object.fromEntries(sides.map((x) => [x, stepFlop / sec[x] / peak])),
    });
  }

  // --- report
  const s = shape;
  const bf16 = opts.dtype === 'bf16';
  const lines = [
    `| ${opts.size}: h${s.hiddenSize} L${s.numHiddenLayers} heads ${s.numAttentionHeads}/${s.numKeyValueHeads} ff${s.intermediateSize} V${config.vocabSize}, batch ${BATCH} x ${SEQ}, lep ${opts.dtype} | threads | lep tok/s | torch f32 tok/s | lep / torch f32 |${bf16 ? ' torch autocast bf16 tok/s | lep / torch autocast |' : ''} f32 matmul peak GFLOP/s | lep % of peak | torch f32 % of peak |`,
    `|---|---:|---:|---:|---:|${bf16 ? '---:|---:|' : ''}---:|---:|---:|`,
  ];
  // Each side at its own fastest thread count (issue 16's target is stated so), when several were run.
  const fastest = (side: Side) => runs.reduce((a, r) => (r.medianStepSeconds[side] < a.medianStepSeconds[side] ? r : a));
  const [lepBest, torchBest] = [fastest('lep'), fastest('torch')];
  const best = runs.length > 1 ? { lepThreads: lepBest.threads, torchThreads: torchBest.threads, ratio: torchBest.medianStepSeconds.torch / lepBest.medianStepSeconds.lep } : undefined;
  for (const r of runs)
    lines.push(`| training step (${opts.params === 'all' ? 'all parameters' : 'embeddings only'}) | ${r.threads} | ${r.tokensPerSecond.lep!.toFixed(0)} | ${r.tokensPerSecond.torch!.toFixed(0)} | **${r.ratio.toFixed(2)}** |${bf16 ? ` ${r.tokensPerSecond['torch-autocast']!.toFixed(0)} | **${r.ratioAutocast!.toFixed(2)}** |` : ''} ${r.peakGflops.toFixed(1)} | ${(100 * r.fractionOfPeak.lep!).toFixed(1)} | ${(100 * r.fractionOfPeak.torch!).toFixed(1)} |`);
  if (best)
    lines.push(`| each at its best (lep / torch threads) | ${best.lepThreads} / ${best.torchThreads} | ${lepBest.tokensPerSecond.lep!.toFixed(0)} | ${torchBest.tokensPerSecond.torch!.toFixed(0)} | **${best.ratio.toFixed(2)}** |${bf16 ? ' | |' : ''} | | |`);
  console.log(`\ncheck: worst loss rel ${checkRel.toExponential(1)} over 2 steps; step = ${(stepFlop / 1e9).toFixed(2)} GFLOP (${(flops.matmul / 1e9).toFixed(2)} matmul + ${(flops.attention / 1e9).toFixed(2)} attention); median of ${opts.reps} rounds x ${opts.steps} steps\n`);
  console.log(lines.join('\n'));
  console.log(`\n\`${command}\` on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; lep ${info.lepVersion} on libtorch ${info.torchVersion} (${info.blas}); PyTorch: Debian python3-torch; threads: BLAS (column) and libtorch's pool ${runs.map((r) => r.pool).join(', ')} on both sides; thread waits: ${info.threadWaits}; lep's float32 products: ${runs.map((r) => r.products).join(', ')} (${info.f32Products})`);

  if (opts.record) {
    mkdirSync(dirname(RESULTS), { recursive: true });
    const line = {
      bench: 'train-torch',
      date: new Date().toISOString(),
      command,
      machine: { host: hostname(), cores: cpus().length, cpu: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadAvg1m: loadavg()[0] },
      size: opts.size,
      params: opts.params,
      model: { ...config, dtype: opts.dtype, seed: SEED, matmulWeights: flops.weights },
      batch: BATCH,
      seq: SEQ,
      stepFlops: { matmul: flops.matmul, attention: flops.attention },
      reps: opts.reps,
      steps: opts.steps,
      lep: info,
      check: { lep: lepLosses, torch: ref.losses, worstRel: checkRel },
      runs,
      ...(best ? { best } : {}),
    };
    appendFileSync(RESULTS, JSON.stringify(line) + '\n');
    console.error(`appended to ${RESULTS}`);
  }
}

await main();
