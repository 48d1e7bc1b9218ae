/**
 * Data-parallel embedding training: 1 process against 2 processes (c10d Gloo over 127.0.0.1) on this
 * machine, same global batch, and the bytes each rank all-reduces per step with dense and touched-rows
 * gradient sync.
 *
 * What it measures, `--reps` rounds, the three runs alternating inside each round:
 *   - one:   1 process, `--threads` threads, batch G (the global batch), embeddings-only training.
 *   - dense: `lep launch`-style 2 ranks, threads/2 each, batch G/2 each, grad sync dense.
 *   - rows:  the same with grad sync touched-rows.
 *   tokens/s = the global batch's target tokens per step / the median step time over the timed steps
 *   (the engine's per-step clock, after 2 untimed warm-up steps); all-reduce bytes and the time rank 0
 *   blocked waiting for gradient all-reduces (what backward did not hide) come from the engine's
 *   progress events (allreduce_bytes, allreduce_wait_s).
 * Correctness first: the runs' step-1 losses must agree (within 1e-4), since all three see the same
 * global batch.
 * Also reported: the share of vocabulary rows a global batch touches (unique input ids / vocabulary),
 * here and at the method's global batch of 256 × 1024 tokens on this corpus, which is what the
 * touched-rows estimate for LLaMa-3-8B in bench/README.md rests on.
 *
 * Model: the toy family's shape (LLaMA layout, hidden 96, 6 layers, Mistral's 32000-token vocabulary,
 * untied head), f32; data: Debian English text (.cache/corpora/en.txt) packed into 256-token blocks.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/dist-train.js [--batch 16] [--steps 8] [--reps 2]
 *        [--threads 2] [--no-record]
 * Prints a markdown table and appends one JSON line to bench/results/dist-train.jsonl.
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, hostname, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { createModel, fetchCorpora, lepInfo, mistralTokenizerDir, readTexts, Tokenizer } from '../ts/index.js';
import { readSafetensors } from '../ts/checkpoint/index.js';
import { launchProcesses } from '../ts/train/launchProcesses.js';
import { packDocuments, writeBlocks } from '../ts/train/packBlocks.js';
import { trainModel } from '../ts/train/trainModel.js';
import { median, positiveInt } from './benchArgs.js';

const SHAPE = { hiddenSize: 96, numHiddenLayers: 6, numAttentionHeads: 4, numKeyValueHeads: 4, intermediateSize: 256 } as const;
const SEQ = 256;
const WARMUP = 2;

interface Measured {
  stepSeconds: number;
  tokensPerStep: number;
  allreduceBytes: number;
  waitSeconds: number;
  firstLoss: number;
}

/** One rank (or the single process): trains and prints its per-step measurements as one JSON line. */
async function worker(model: string, data: string, out: string, batch: number, steps: number, gradSync: 'dense' | 'touched-rows'): Promise<void> {
  const times: number[] = [];
  const bytes: number[] = [];
  const waits: number[] = [];
  let tokensPerStep = 0;
  let firstLoss = NaN;
  await trainModel(model, out, {
    data,
    params: 'embeddings',
    batchSize: batch,
    steps: steps + WARMUP,
    lr: 1e-3,
    warmupSteps: 1,
    resume: false,
    gradSync,
    checkpointEvery: steps + WARMUP,  // one checkpoint, after the last step: none inside the per-step clock
    onProgress: (e) => {
      if (e.phase !== 'train') return;
      if (e.done === 1) firstLoss = e.loss;
      if (e.done <= WARMUP) return;
      tokensPerStep = e.tokens;
      times.push(e.tokens / e.tokensPerS);
      bytes.push(e.allreduceBytes);
      waits.push(e.allreduceWaitS);
    },
  });
  const m: Measured = { stepSeconds: median(times), tokensPerStep, allreduceBytes: median(bytes), waitSeconds: median(waits), firstLoss };
  if ((Number(process.env.RANK ?? 0) || 0) === 0) console.log(`RESULT ${JSON.stringify(m)}`);
}

async function run(self: string, args: string[], nproc: number, threads: number): Promise<Measured> {
  let result: Measured | undefined;
  const lines: string[] = [];
  const r = await launchProcesses([process.execPath, self, '--worker', ...args], {
    nproc,
    env: { ...process.env, LEP_THREADS: String(threads) },
    onLine: (line) => {
      lines.push(line);
      const m = /RESULT (.*)$/.exec(line);
      if (m) result = JSON.parse(m[1]!) as Measured;
    },
  });
  if (r.code !== 0 || !result) throw new Error(`run failed (${nproc} processes):\n${lines.slice(-20).join('\n')}`);
  return result;
}

/** Unique input ids per global batch / vocabulary, averaged over consecutive batches of `tokens` tokens. */
function touchedShare(ids: Int32Array, tokens: number, vocab: number): number {
  const shares: number[] = [];
  for (let start = 0; start + tokens <= ids.length; start += tokens) shares.push(new Set(ids.subarray(start, start + tokens)).size / vocab);
  return shares.length ? shares.reduce((a, b) => a + b, 0) / shares.length : NaN;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      worker: { type: 'boolean' },
      model: { type: 'string' },
      data: { type: 'string' },
      out: { type: 'string' },
      'grad-sync': { type: 'string' },
      batch: { type: 'string', default: '16' },
      steps: { type: 'string', default: '8' },
      reps: { type: 'string', default: '2' },
      threads: { type: 'string', default: String(Math.min(2, cpus().length)) },
      'no-record': { type: 'boolean' },
    },
  });
  const batch = positiveInt(values.batch, 'batch');
  const steps = positiveInt(values.steps, 'steps');
  if (values.worker) {
    return worker(values.model!, values.data!, values.out!, batch, steps, values['grad-sync'] as 'dense' | 'touched-rows');
  }
  const reps = positiveInt(values.reps, 'reps');
  const threads = positiveInt(values.threads, 'threads');
  if (batch % 2 !== 0) throw new Error('--batch must be even (it is split over 2 processes)');
  const self = new URL(import.meta.url).pathname;
  const dir = mkdtempSync(join(tmpdir(), 'lep-bench-dist-'));
  try {
    const model = join(dir, 'model');
    await createModel(model, { tokenizerDir: mistralTokenizerDir(), modelType: 'llama', ...SHAPE, maxPositionEmbeddings: 512, seed: 1, embedStd: 0.02 });
    const corpus = (await fetchCorpora({ cacheDir: join(dirname(self), '..', '..', '.cache', 'corpora') })).files['en.txt']!;
    const docs: string[][] = [];
    for await (const d of readTexts(corpus, { mode: 'document', maxChars: 3_000_000 })) docs.push(d.split('\n'));
    const tok = Tokenizer.fromDir(model);
    const { blocks } = await packDocuments(docs, tok, { seqLen: SEQ });
    const data = join(dir, 'blocks.safetensors');
    writeBlocks(data, blocks);
    const st = readSafetensors(data)[0]!;
    const ids = new Int32Array(st.data.buffer.slice(st.data.byteOffset, st.data.byteOffset + st.data.byteLength));
    const vocab = 32000;
    const common = ['--model', model, '--data', data, '--steps', String(steps)];
    const sides = {
      one: () => run(self, [...common, '--out', join(dir, 'one'), '--batch', String(batch), '--grad-sync', 'dense'], 1, threads),
      dense: () => run(self, [...common, '--out', join(dir, 'dense'), '--batch', String(batch / 2), '--grad-sync', 'dense'], 2, Math.max(1, threads / 2)),
      rows: () => run(self, [...common, '--out', join(dir, 'rows'), '--batch', String(batch / 2), '--grad-sync', 'touched-rows'], 2, Math.max(1, threads / 2)),
    };
    const got: Record<keyof typeof sides, Measured[]> = { one: [], dense: [], rows: [] };
    for (let rep = 0; rep < reps; rep++)
      for (const k of (rep % 2 ? ['rows', 'dense', 'one'] : ['one', 'dense', 'rows']) as (keyof typeof sides)[]) got[k].push(await sides[k]());
    const first = got.one[0]!.firstLoss;
    for (const k of ['dense', 'rows'] as const)
      if (Math.abs(got[k][0]!.firstLoss - first) > 1e-4) throw new Error(`step-1 loss differs: one ${first}, ${k} ${got[k][0]!.firstLoss}`);
    const summary = Object.fromEntries(
      Object.entries(got).map(([k, ms]) => {
        const step = median(ms.map((m) => m.stepSeconds));
        return [k, { stepSeconds: step, tokensPerS: ms[0]!.tokensPerStep / step, allreduceBytes: median(ms.map((m) => m.allreduceBytes)), waitSeconds: median(ms.map((m) => m.waitSeconds)) }];
      }),
    ) as Record<keyof typeof sides, { stepSeconds: number; tokensPerS: number; allreduceBytes: number; waitSeconds: number }>;
    const share = { batch: touchedShare(ids, batch * SEQ, vocab), method: touchedShare(ids, 256 * 1024, vocab) };
    const rows = [
      ['1 process', summary.one, '–'],
      ['2 processes, dense', summary.dense, (summary.dense.tokensPerS / summary.one.tokensPerS).toFixed(2)],
      ['2 processes, touched-rows', summary.rows, (summary.rows.tokensPerS / summary.one.tokensPerS).toFixed(2)],
    ] as const;
    console.log(`\nembeddings-only, toy shape (h${SHAPE.hiddenSize}, ${SHAPE.numHiddenLayers} layers, vocab ${vocab}), global batch ${batch} x ${SEQ}, ${threads} threads in all, median of ${reps}\n`);
    console.log('| run | tokens/s | step s | all-reduce MB/step/rank | blocked in all-reduce s/step | vs 1 process |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const [name, s, ratio] of rows)
      console.log(`| ${name} | ${s.tokensPerS.toFixed(0)} | ${s.stepSeconds.toFixed(3)} | ${(s.allreduceBytes / 1e6).toFixed(2)} | ${s.waitSeconds.toFixed(3)} | ${ratio} |`);
    console.log(`\ntouched rows per global batch: ${(share.batch * 100).toFixed(1)}% of ${vocab} (${batch * SEQ} tokens), ${(share.method * 100).toFixed(1)}% at 256 x 1024 tokens`);
    if (!values['no-record']) {
      const file = join(dirname(self), '..', '..', 'bench', 'results', 'dist-train.jsonl');
      mkdirSync(dirname(file), { recursive: true });
      appendFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), host: hostname(), cpus: cpus().length, load: loadavg(), lep: lepInfo(), batch, seq: SEQ, steps, reps, threads, shape: SHAPE, vocab, summary, touchedShare: share })}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
