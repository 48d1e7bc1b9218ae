/**
 * lep's native decoder against llama.cpp, on the same model, the same threads, in one process.
 *
 * What it measures (tokens/s, median of `--reps` runs after one warm-up, lep and llama.cpp alternating
 * run by run), once per thread count in `--threads`:
 *   - pp:      prompt processing, one 256-token prompt (batch of 1), logits only for the last position.
 *              lep: `generateTokens(prompt, {maxNewTokens: 1})` (prefill + one greedy pick);
 *              llama.cpp: `evaluateWithoutGeneratingNewTokens(prompt)`.
 *   - score:   lep only: `score([prompt])`, teacher forcing with log-probabilities at all 256 positions
 *              (what lep's evaluation uses). It also runs the 32000-wide LM head and a log-sum-exp on every
 *              position, so its ratio against llama.cpp's pp shows what that extra work costs.
 *   - tg:      generation, 64 greedy tokens after a 32-token prompt, end to end (prefill included).
 *   - decode:  the per-token decode rate inside tg: 63 / (t(64 new) - t(1 new)), both on the same 32-token
 *              prompt, so prefill and per-call overhead cancel.
 *   - batch:   8 different 32-token prompts at once, 32 greedy tokens each, end to end (prefill included),
 *              as evaluation generates: rows x new tokens per second. lep: one `generateTokens` call with
 *              the 8 prompts; llama.cpp: 8 sequences of one context evaluated concurrently, which
 *              node-llama-cpp batches into shared decode calls.
 *   - best:    each side at its own fastest thread count, for every metric.
 * Against what: llama.cpp through node-llama-cpp 3.22.1's CPU prebuilt, loading the f32 GGUF that lep's
 * `exportGguf` writes from the same seeded random Mistral-layout model (32000-token vocabulary, GQA).
 * Correctness first: both greedy continuations of one 32-token prompt must agree (the count of agreeing
 * leading tokens of 16 is printed; a divergence is reported, not fatal), the worst next-token
 * log-probability difference is printed, and the timed 64-token continuations are compared too.
 *
 * Caveats:
 *   - Both compute in f32 (`--dtype bf16`: both in bf16): llama.cpp gets an f32 (bf16) GGUF here (its
 *     usual quantised formats would be faster, and are not what lep computes); lep runs libtorch 1.13 eagerly on OpenBLAS (one native call per job,
 *     each decoded token a few dozen small eager ops per layer; its one-row projections go through gemv).
 *     llama.cpp keeps its default f16 KV cache (`--kv f32` for an f32 one: its decoding measured 1.7x
 *     slower with it on 2 cores, so f16 is the fairer opponent); lep's KV cache is f32.
 *   - Threads: lep gets the thread count (`setThreads`; which of its pools uses them depends on the
 *     dtype and the phase: cpp/core/compute_threads.h); llama.cpp's context gets the same number as both ideal and minimum. The default
 *     measures 1 thread and one per core, because on small machines one thread per core can hurt
 *     single-token decoding (measured here: llama.cpp decodes 2-3x slower at 2 threads than at 1 on 2 cores).
 *   - Both libraries share one process; OpenBLAS and ggml worker threads spin briefly after work, so the
 *     script pauses between runs. Shared machines drift: read the ratios, not the absolute numbers.
 *   - No matmul peak is measured here (neither library exposes a bare matmul), so the GFLOP/s columns are
 *     weight-matmul work per second (2 x weights x tokens; attention scores not counted), not a fraction
 *     of the machine's peak.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/llamacpp.js [--size small|medium|large]
 *        [--threads N[,M...]] [--reps N] [--kv f16|f32] [--dtype f32|bf16] [--no-record]
 * Prints a markdown table and appends one JSON line per run to bench/results/llamacpp.jsonl.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { cpus, hostname, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type LlamaContext, type LlamaContextSequence, type Token } from 'node-llama-cpp';

import { DEFAULT_THREADS, median, parseSize, parseThreadList, positiveInt } from './benchArgs.js';
import { createModel, exportGguf, LepModel, lepInfo, mistralTokenizerDir, setThreads, type CreateModelOptions } from '../ts/index.js';
import { optionError } from '../ts/errors.js';

/** Model shapes. medium is the default: big enough that matmuls dominate, small enough for 2 cores. */
export const SIZES = {
  small: { hiddenSize: 256, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2, intermediateSize: 704 },
  medium: { hiddenSize: 512, numHiddenLayers: 8, numAttentionHeads: 8, numKeyValueHeads: 4, intermediateSize: 1408 },
  large: { hiddenSize: 1024, numHiddenLayers: 16, numAttentionHeads: 16, numKeyValueHeads: 8, intermediateSize: 2816 },
} as const satisfies Record<string, Partial<CreateModelOptions>>;
type SizeName = keyof typeof SIZES;
type Shape = (typeof SIZES)[SizeName];

export const DEFAULT_SIZE: SizeName = 'medium';
export const DEFAULT_REPS = 5;
/** llama.cpp's own default KV cache type. */
export const DEFAULT_KV = 'f16';
export const PP_TOKENS = 256;
export const TG_PROMPT_TOKENS = 32;
export const TG_NEW_TOKENS = 64;
export const CHECK_TOKENS = 16;
export const BATCH_ROWS = 8;
export const BATCH_NEW_TOKENS = 32;
/** Model seed; embedStd 1 gives peaked next-token distributions, so greedy decoding is robust to summation order. */
const SEED = 1;
const EMBED_STD = 1;
/** Pause before each timed run, so the other side's spinning worker threads have gone to sleep. */
const PAUSE_MS = 300;

const ROOT = findPackageRoot(import.meta.dirname);
const RESULTS = join(ROOT, 'bench', 'results', 'llamacpp.jsonl');
const NLC_VERSION = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'node-llama-cpp', 'package.json'), 'utf8')) as { version: string }).version;

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'lep') return dir;
    if (dirname(dir) === dir) throw new Error(`no package.json of lep above ${from}`);
  }
}

interface Options {
  size: SizeName;
  threads: number[];
  reps: number;
  /** llama.cpp's KV cache type */
  kv: 'f16' | 'f32';
  /** the model's dtype: stored, exported to GGUF, and computed in by lep */
  dtype: 'f32' | 'bf16';
  record: boolean;
}

function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: DEFAULT_SIZE },
      threads: { type: 'string', default: DEFAULT_THREADS.join(',') },
      reps: { type: 'string', default: String(DEFAULT_REPS) },
      kv: { type: 'string', default: DEFAULT_KV },
      dtype: { type: 'string', default: 'f32' },
      'no-record': { type: 'boolean', default: false },
    },
  });
  const kv = values.kv as string;
  if (kv !== 'f16' && kv !== 'f32') throw optionError('kv', 'f16 or f32', kv, '--kv');
  const dtype = values.dtype as string;
  if (dtype !== 'f32' && dtype !== 'bf16') throw optionError('dtype', 'f32 or bf16', dtype, '--dtype');
  return { size: parseSize(values.size, SIZES), threads: parseThreadList(values.threads), reps: positiveInt(values.reps, 'reps'), kv, dtype, record: !values['no-record'] };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}
function leadingAgreement(a: number[], b: number[], n: number): number {
  let i = 0;
  while (i < n && a[i] !== undefined && a[i] === b[i]) i++;
  return i;
}

/** Weights used per token in matmuls (body, LM head), for the GFLOP/s columns. */
function matmulWeights(c: Shape, vocab: number): { body: number; head: number } {
  const headDim = c.hiddenSize / c.numAttentionHeads;
  const q = c.numAttentionHeads * headDim;
  const kv = c.numKeyValueHeads * headDim;
  const perLayer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
  return { body: perLayer * c.numHiddenLayers, head: vocab * c.hiddenSize };
}

const METRICS = ['pp', 'score', 'tg', 'decode', 'batch'] as const;
type Metric = (typeof METRICS)[number];
type Side = 'lep' | 'llama';
type Rates = Record<Metric, Record<Side, number>>;

interface ThreadRun {
  threads: number;
  secondsPerRun: Record<string, Record<Side, number[]>>;
  tokensPerSecond: Rates;
  ratios: Record<Metric, number>;
  /** leading agreement of the last timed 64-token continuations */
  agreeTg: number;
  /** the least leading agreement over the rows of the last timed batch */
  agreeBatch: number;
}

async function main(): Promise<void> {
  const opts = parseOptions();
  const shape = SIZES[opts.size];
  const command = ['node', 'dist/bench/llamacpp.js', ...process.argv.slice(2)].join(' ');
  const work = mkdtempSync(join(tmpdir(), 'lep-bench-llamacpp-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));

  // --- the model, its GGUF and both runtimes
  const dir = join(work, 'model');
  const gguf = join(work, `model.${opts.dtype}.gguf`);
  const t0 = performance.now();
  const config = await createModel(dir, {
    tokenizerDir: mistralTokenizerDir(),
    modelType: 'mistral',
    ...shape,
    maxPositionEmbeddings: 1024,
    seed: SEED,
    embedStd: EMBED_STD,
    dtype: opts.dtype,
  });
  await exportGguf(dir, gguf, { outType: opts.dtype });
  const lep = await LepModel.load(dir, { dtype: opts.dtype });
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    skipDownload: true,
    logLevel: LlamaLogLevel.error,
    maxThreads: Math.max(...opts.threads),
  });
  const lm = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const newContext = (threads: number, sequences = 1): Promise<LlamaContext> =>
    lm.createContext({
      contextSize: sequences === 1 ? 1024 : 256,  // per sequence
      sequences,
      batchSize: 512,
      threads: { ideal: threads, min: threads },
      experimentalKvCacheKeyType: opts.kv === 'f32' ? 'F32' : 'F16',
      experimentalKvCacheValueType: opts.kv === 'f32' ? 'F32' : 'F16',
    });
  const info = lepInfo();
  const { body, head } = matmulWeights(shape, config.vocabSize);
  const params = body + head + config.vocabSize * config.hiddenSize;
  console.error(
    `model ${opts.size}: ${(params / 1e6).toFixed(1)}M params, gguf ${(statSync(gguf).size / 1e6).toFixed(0)} MB, ` +
      `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s; libtorch ${info.torchVersion} ${info.blas}; threads ${opts.threads.join(', ')}`,
  );

  // --- prompts: real text through the real tokenizer, BOS first, cut to length
  const tok = lep.tokenizer!;
  const bos = tok.specialId('bos') ?? 1;
  const text =
    'The history of the printing press begins in the fifteenth century, when movable type made books cheap enough ' +
    'for merchants, students and craftsmen. Within fifty years presses ran in more than two hundred European towns. ';
  const ids = await tok.encode(text.repeat(8));
  const promptOf = (n: number): number[] => [bos, ...ids.slice(0, n - 1)];
  const ppPrompt = promptOf(PP_TOKENS);
  const tgPrompt = promptOf(TG_PROMPT_TOKENS);
  if (ppPrompt.length !== PP_TOKENS) throw new Error(`the prompt text gives only ${ppPrompt.length} tokens`);
  // Different prompts of one length: windows of the same text at different offsets.
  const batchPrompts = Array.from({ length: BATCH_ROWS }, (_, b) => [bos, ...ids.slice(5 * b, 5 * b + TG_PROMPT_TOKENS - 1)]);

  const lepGen = async (prompt: number[], n: number): Promise<number[]> => {
    const [r] = await lep.generateTokens([prompt], { maxNewTokens: n, stopTokens: [] });
    return Array.from(r!.tokens);
  };
  const llamaGen = async (seq: LlamaContextSequence, prompt: number[], n: number): Promise<number[]> => {
    const out: number[] = [];
    for await (const t of seq.evaluate(prompt as Token[], { temperature: 0, yieldEogToken: true })) {
      out.push(t);
      if (out.length >= n) break;
    }
    await seq.clearHistory();
    return out;
  };

  // --- correctness before timing
  setThreads(opts.threads[0]!);
  const checkCtx = await newContext(opts.threads[0]!);
  const seq = checkCtx.getSequence();
  const lepCont = await lepGen(tgPrompt, CHECK_TOKENS);
  const llamaCont = await llamaGen(seq, tgPrompt, CHECK_TOKENS);
  const agree = leadingAgreement(lepCont, llamaCont, CHECK_TOKENS);
  const input: ControlledEvaluateInputItem[] = tgPrompt.map((id, i) =>
    i === tgPrompt.length - 1 ? [id as Token, { generateNext: { logits: true } }] : (id as Token),
  );
  const evaluated = await seq.controlledEvaluate(input);
  seq.dispose();
  await checkCtx.dispose();
  const logits = new Float32Array(config.vocabSize);
  for (const [t, v] of evaluated[tgPrompt.length - 1]?.next?.logits ?? []) logits[t] = v;
  let mx = -Infinity;
  for (const v of logits) mx = Math.max(mx, v);
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - mx);
  const lse = mx + Math.log(sum);
  const [scored] = await lep.score([tgPrompt], { lastLogprobs: true });
  let worstLogprob = 0;
  for (let i = 0; i < config.vocabSize; i++) worstLogprob = Math.max(worstLogprob, Math.abs(logits[i]! - lse - scored!.lastLogprobs![i]!));
  console.error(`greedy agreement: ${agree}/${CHECK_TOKENS} leading tokens; worst |d logprob| of the next token ${worstLogprob.toExponential(2)}`);
  if (agree < CHECK_TOKENS) console.error(`  lep   ${lepCont.join(',')}\n  llama ${llamaCont.join(',')}`);

  // --- timing, per thread count: one warm-up round, then `reps` rounds of every case on both sides
  const runs: ThreadRun[] = [];
  for (const threads of opts.threads) {
    setThreads(threads);
    const ctx = await newContext(threads);
    const seq = ctx.getSequence();
    const batchCtx = await newContext(threads, BATCH_ROWS);
    const batchSeqs = batchPrompts.map(() => batchCtx.getSequence());
    const tgOut: Record<Side, number[]> = { lep: [], llama: [] };
    const batchOut: Record<Side, number[][]> = { lep: [], llama: [] };
    type Case = { name: string; lep: () => Promise<unknown>; llama?: () => Promise<unknown> };
    const cases: Case[] = [
      {
        name: 'pp',
        lep: () => lepGen(ppPrompt, 1),
        llama: async () => {
          await seq.evaluateWithoutGeneratingNewTokens(ppPrompt as Token[]);
          await seq.clearHistory();
        },
      },
      { name: 'score', lep: () => lep.score([ppPrompt], {}) },
      {
        name: 'tg',
        lep: async () => (tgOut.lep = await lepGen(tgPrompt, TG_NEW_TOKENS)),
        llama: async () => (tgOut.llama = await llamaGen(seq, tgPrompt, TG_NEW_TOKENS)),
      },
      { name: 'tg1', lep: () => lepGen(tgPrompt, 1), llama: () => llamaGen(seq, tgPrompt, 1) },
      {
        name: 'batch',
        lep: async () => {
          const rs = await lep.generateTokens(batchPrompts, { maxNewTokens: BATCH_NEW_TOKENS, stopTokens: [] });
          batchOut.lep = rs.map((r) => Array.from(r.tokens));
        },
        llama: async () => (batchOut.llama = await Promise.all(batchPrompts.map((p, i) => llamaGen(batchSeqs[i]!, p, BATCH_NEW_TOKENS)))),
      },
    ];
    const times: Record<string, Record<Side, number[]>> = {};
    for (const c of cases) times[c.name] = { lep: [], llama: [] };
    for (let rep = -1; rep < opts.reps; rep++) {
      for (const c of cases) {
        // Alternate which side goes first, so neither always runs right after the other.
        const order: Side[] = rep % 2 === 0 ? ['llama', 'lep'] : ['lep', 'llama'];
        for (const side of order) {
          const fn = c[side];
          if (!fn) continue;
          await sleep(PAUSE_MS);
          const s = await seconds(fn);
          if (rep >= 0) times[c.name]![side].push(s);
        }
      }
    }
    seq.dispose();
    await ctx.dispose();
    for (const s of batchSeqs) s.dispose();
    await batchCtx.dispose();
    const med = (name: string, side: Side) => median(times[name]![side]);
    const decode = (side: Side) => (TG_NEW_TOKENS - 1) / (med('tg', side) - med('tg1', side));
    const tokensPerSecond: Rates = {
      pp: { lep: PP_TOKENS / med('pp', 'lep'), llama: PP_TOKENS / med('pp', 'llama') },
      score: { lep: PP_TOKENS / med('score', 'lep'), llama: PP_TOKENS / med('pp', 'llama') },
      tg: { lep: TG_NEW_TOKENS / med('tg', 'lep'), llama: TG_NEW_TOKENS / med('tg', 'llama') },
      decode: { lep: decode('lep'), llama: decode('llama') },
      batch: { lep: (BATCH_ROWS * BATCH_NEW_TOKENS) / med('batch', 'lep'), llama: (BATCH_ROWS * BATCH_NEW_TOKENS) / med('batch', 'llama') },
    };
    const ratios = Object.fromEntries(METRICS.map((k) => [k, tokensPerSecond[k].lep / tokensPerSecond[k].llama])) as Record<Metric, number>;
    const agreeTg = leadingAgreement(tgOut.lep, tgOut.llama, TG_NEW_TOKENS);
    const agreeBatch = Math.min(...batchPrompts.map((_, i) => leadingAgreement(batchOut.lep[i] ?? [], batchOut.llama[i] ?? [], BATCH_NEW_TOKENS)));
    runs.push({ threads, secondsPerRun: times, tokensPerSecond, ratios, agreeTg, agreeBatch });
    console.error(`threads ${threads}: done (${opts.reps} rounds)`);
  }

  // --- each side at its own best thread count
  const best = Object.fromEntries(
    METRICS.map((k) => {
      const pick = (side: Side) => runs.reduce((a, b) => (b.tokensPerSecond[k][side] > a.tokensPerSecond[k][side] ? b : a));
      const l = pick('lep');
      const c = pick('llama');
      return [k, { lep: l.tokensPerSecond[k].lep, lepThreads: l.threads, llama: c.tokensPerSecond[k].llama, llamaThreads: c.threads, ratio: l.tokensPerSecond[k].lep / c.tokensPerSecond[k].llama }];
    }),
  ) as Record<Metric, { lep: number; lepThreads: number; llama: number; llamaThreads: number; ratio: number }>;

  // --- report
  const label: Record<Metric, string> = {
    pp: `prompt ${PP_TOKENS} (pp)`,
    score: `prompt ${PP_TOKENS}, all logprobs (lep score vs llama.cpp pp)`,
    tg: `generate ${TG_NEW_TOKENS} after ${TG_PROMPT_TOKENS} (tg, end to end)`,
    decode: `decode only, ${TG_NEW_TOKENS - 1} / (t(${TG_NEW_TOKENS} new) − t(1 new))`,
    batch: `${BATCH_ROWS} prompts at once: ${BATCH_NEW_TOKENS} after ${TG_PROMPT_TOKENS} each (rows × tokens / s, end to end)`,
  };
  /** weights per token each side multiplies for a metric (llama.cpp's pp never runs the head) */
  const weights = (k: Metric, side: Side) => (k === 'pp' || (k === 'score' && side === 'llama') ? body : body + head);
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const gf = (k: Metric, side: Side, rate: number) => fmt((2 * weights(k, side) * rate) / 1e9);
  const lines = [
    `| ${opts.size}: h${shape.hiddenSize} L${shape.numHiddenLayers} GQA ${shape.numAttentionHeads}/${shape.numKeyValueHeads} ff${shape.intermediateSize} V${config.vocabSize}, ${opts.dtype} (llama.cpp KV ${opts.kv}) | threads | lep tok/s | llama.cpp tok/s | lep / llama.cpp | lep GFLOP/s | llama.cpp GFLOP/s |`,
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  for (const k of METRICS) {
    for (const r of runs) {
      const t = r.tokensPerSecond[k];
      lines.push(`| ${label[k]} | ${r.threads} | ${fmt(t.lep)} | ${fmt(t.llama)} | ${r.ratios[k].toFixed(2)} | ${gf(k, 'lep', t.lep)} | ${gf(k, 'llama', t.llama)} |`);
    }
    if (runs.length > 1) {
      const b = best[k];
      lines.push(`| ${label[k]}, each at its best | ${b.lepThreads} / ${b.llamaThreads} | ${fmt(b.lep)} | ${fmt(b.llama)} | **${b.ratio.toFixed(2)}** | ${gf(k, 'lep', b.lep)} | ${gf(k, 'llama', b.llama)} |`);
    }
  }
  const agreeTgs = runs.map((r) => `${r.agreeTg}/${TG_NEW_TOKENS}`).join(', ');
  const agreeBatches = runs.map((r) => `${r.agreeBatch}/${BATCH_NEW_TOKENS}`).join(', ');
  console.log(
    `\ngreedy agreement ${agree}/${CHECK_TOKENS} (timed tg runs: ${agreeTgs}; batch runs, least of ${BATCH_ROWS} rows: ${agreeBatches}), ` +
      `worst |d logprob| ${worstLogprob.toExponential(2)}; median of ${opts.reps} runs\n`,
  );
  console.log(lines.join('\n'));
  console.log(
    `\n\`${command}\` on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; lep ${info.lepVersion} on libtorch ${info.torchVersion} ` +
      `(${info.blas}); node-llama-cpp ${NLC_VERSION} CPU prebuilt (llama.cpp ${llama.llamaCppRelease.release})`,
  );

  if (opts.record) {
    mkdirSync(dirname(RESULTS), { recursive: true });
    const line = {
      bench: 'llamacpp',
      date: new Date().toISOString(),
      command,
      machine: { host: hostname(), cores: cpus().length, cpu: cpus()[0]?.model, memGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version },
      threads: opts.threads,
      reps: opts.reps,
      size: opts.size,
      model: { ...config, dtype: opts.dtype, seed: SEED, embedStd: EMBED_STD, params, matmulWeightsBody: body, matmulWeightsHead: head },
      tokens: { pp: PP_TOKENS, tgPrompt: TG_PROMPT_TOKENS, tgNew: TG_NEW_TOKENS, batchRows: BATCH_ROWS, batchNew: BATCH_NEW_TOKENS },
      lep: info,
      llamaCpp: { nodeLlamaCpp: NLC_VERSION, release: llama.llamaCppRelease, buildType: llama.buildType, systemInfo: llama.systemInfo, gguf: opts.dtype, kvCache: opts.kv },
      check: { agree, of: CHECK_TOKENS, worstLogprobDiff: worstLogprob },
      runs,
      best,
    };
    appendFileSync(RESULTS, JSON.stringify(line) + '\n');
    console.error(`appended to ${RESULTS}`);
  }

  lep.dispose();
  await lm.dispose();
  await llama.dispose();
}

await main();
