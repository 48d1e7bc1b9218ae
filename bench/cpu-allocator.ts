/**
 * lep's CPU allocator (cpp/core/cpu_allocator.h) against libtorch's own (`LEP_CPU_ALLOCATOR=libtorch`),
 * side by side: each round runs one child process per allocator (the variable is read when lep.node
 * loads), the order alternating round by round, on one model and one batch file.
 *
 * Each child measures, on a float32 model of `--hidden` (8 layers, Mistral's 32000-token vocabulary;
 * 1024 gives 0.17 B parameters and 2.7 GB of training state with AdamW):
 *   - train:        `trainModel` (all parameters, f32, AdamW), median of the engine's own step times after
 *                   one warm-up step;
 *   - train+spawns: the same while the process starts a child (`true`) every `--spawn-every` ms, as a
 *                   program that runs a tool now and then beside its training does (Node forks for each:
 *                   the fork copies the page tables of the memory it may copy, and the job then takes a
 *                   fault on each copied page it writes);
 *   - spawn:        median time from `spawn()` to the child's 'spawn' event during train+spawns (a fork
 *                   waits for the job's next safe point, docs/architecture.md, then copies);
 *   - score:        `score` of 4 rows of 256 tokens, median of 3 after one warm-up;
 *   - decode:       `generateTokens` of 32 greedy tokens after a 16-token prompt, tokens per second.
 * Ratios are libtorch's time over lep's (above 1: lep's allocator is faster).
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/cpu-allocator.js [--hidden 1024] [--steps 5]
 *        [--reps 2] [--spawn-every 500] [--threads 2] [--no-record]
 * Prints a markdown table and appends one JSON line to bench/results/cpu-allocator.jsonl.
 */
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createModel, LepModel, lepInfo, mistralTokenizerDir, setThreads } from '../ts/index.js';
import { packageRoot } from '../ts/binding/loadNative.js';
import { writeBlocks } from '../ts/train/packBlocks.js';
import { trainModel } from '../ts/train/trainModel.js';
import { median, positiveInt } from './benchArgs.js';
import { SEQ, seededBlocks } from './trainShapes.js';

const RESULTS = join(packageRoot, 'bench', 'results', 'cpu-allocator.jsonl');
const ALLOCATORS = ['lep', 'libtorch'] as const;
const BATCH = 2;
const METRICS = ['train', 'train+spawns', 'spawn', 'score', 'decode'] as const;
type Metric = (typeof METRICS)[number];
/** Seconds per step / per call (decode: per token), and the allocator line lep info printed. */
type ChildResult = Record<Metric, number> & { allocator: string; anonymousGb: number };

interface ChildArgs { model: string; vocab: number; data: string; steps: number; spawnEvery: number; threads: number }

/** This process's anonymous memory now, from /proc/self/status. */
function anonymousGb(): number {
  const m = /RssAnon:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1e6 : NaN;
}

/** Median step seconds; `anon` gets the largest anonymous memory seen at a step's end. */
async function trainSteps(a: ChildArgs, out: string, spawnEvery: number, latencies: number[], anon = { gb: 0 }): Promise<number> {
  const secs: number[] = [];
  const timer = spawnEvery > 0 ? setInterval(() => {
    const t = performance.now();
    spawn('true').on('spawn', () => latencies.push((performance.now() - t) / 1000));
  }, spawnEvery) : undefined;
  try {
    await trainModel(a.model, out, { data: a.data, steps: a.steps + 1, batchSize: BATCH, lr: 1e-4, warmupSteps: 0, checkpointEvery: a.steps + 1,
      onProgress: (e) => {
        if (e.phase !== 'train') return;
        secs.push(e.tokens / e.tokensPerS);
        anon.gb = Math.max(anon.gb, anonymousGb());
      } });
  } finally {
    clearInterval(timer);
    rmSync(out, { recursive: true, force: true });
  }
  return median(secs.slice(1));
}

async function child(a: ChildArgs): Promise<ChildResult> {
  setThreads(a.threads);
  const latencies: number[] = [];
  const anon = { gb: 0 };
  const train = await trainSteps(a, `${a.data}.out-${process.pid}`, 0, [], anon);
  const trainSpawns = await trainSteps(a, `${a.data}.out-${process.pid}`, a.spawnEvery, latencies);
  const model = await LepModel.load(a.model, { dtype: 'f32' });
  const rows = seededBlocks(4, a.vocab, 11, 256);
  await model.score(rows);
  const scores: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    await model.score(rows);
    scores.push((performance.now() - t) / 1000);
  }
  const prompt = seededBlocks(1, a.vocab, 12, 16)[0]!;
  await model.generateTokens([prompt], { maxNewTokens: 4, stopTokens: [] });
  const t = performance.now();
  await model.generateTokens([prompt], { maxNewTokens: 32, stopTokens: [] });
  const decode = (performance.now() - t) / 1000 / 32;
  model.dispose();
  return { train, 'train+spawns': trainSpawns, spawn: median(latencies), score: median(scores), decode, allocator: lepInfo().allocator, anonymousGb: anon.gb };
}

function runChild(allocator: string, a: ChildArgs): ChildResult {
  const r = spawnSync(process.execPath, [join(packageRoot, 'dist', 'bench', 'cpu-allocator.js'), '--child', JSON.stringify(a)],
    { env: { ...process.env, LEP_CPU_ALLOCATOR: allocator }, encoding: 'utf8', maxBuffer: 16 << 20 });
  if (r.status !== 0) throw new Error(`the ${allocator} child failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ChildResult;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: {
    child: { type: 'string' }, hidden: { type: 'string', default: '1024' }, steps: { type: 'string', default: '5' },
    reps: { type: 'string', default: '2' }, 'spawn-every': { type: 'string', default: '500' },
    threads: { type: 'string', default: String(cpus().length) }, 'no-record': { type: 'boolean', default: false },
  } });
  if (values.child) return void console.log(JSON.stringify(await child(JSON.parse(values.child) as ChildArgs)));
  const hidden = positiveInt(values.hidden, 'hidden');
  const reps = positiveInt(values.reps, 'reps');
  const steps = positiveInt(values.steps, 'steps');
  const work = mkdtempSync(join(tmpdir(), 'lep-bench-alloc-'));
  try {
    const model = join(work, 'model');
    const config = await createModel(model, { tokenizerDir: mistralTokenizerDir(), modelType: 'llama', hiddenSize: hidden, numHiddenLayers: 8, numAttentionHeads: 16,
      numKeyValueHeads: 16, intermediateSize: Math.round(hidden * 11 / 4), maxPositionEmbeddings: 512, seed: 1 });
    const data = join(work, 'blocks.safetensors');
    writeBlocks(data, seededBlocks(BATCH * (steps + 1), config.vocabSize, 7));
    const args: ChildArgs = { model, vocab: config.vocabSize, data, steps, spawnEvery: positiveInt(values['spawn-every'], 'spawn-every'), threads: positiveInt(values.threads, 'threads') };
    const load = [loadavg()[0]!];
    const runs: Record<string, ChildResult[]> = { lep: [], libtorch: [] };
    for (let rep = 0; rep < reps; rep++)
      for (const allocator of rep % 2 ? [...ALLOCATORS].reverse() : ALLOCATORS) {
        runs[allocator]!.push(runChild(allocator, args));
        console.error(`round ${rep + 1} ${allocator}: ${JSON.stringify(runs[allocator]!.at(-1))}`);
      }
    load.push(loadavg()[0]!);
    const med = (a: string, m: Metric) => median(runs[a]!.map((r) => r[m]));
    console.log(`| measure (median of ${reps} rounds) | lep's allocator | libtorch's | libtorch / lep |`);
    console.log('|---|---:|---:|---:|');
    for (const m of METRICS) {
      const unit = m === 'decode' ? 's/token' : m === 'spawn' ? 's' : m === 'score' ? 's/call' : 's/step';
      console.log(`| ${m} (${unit}) | ${med('lep', m).toFixed(3)} | ${med('libtorch', m).toFixed(3)} | ${(med('libtorch', m) / med('lep', m)).toFixed(2)}x |`);
    }
    const info = lepInfo();
    console.log(`hidden ${hidden}, 8 layers, f32, batch ${BATCH} x ${SEQ}, ${args.threads} threads, a spawn every ${args.spawnEvery} ms; anonymous memory in training (largest at a step's end): lep ${median(runs.lep!.map((r) => r.anonymousGb)).toFixed(2)} GB, libtorch ${median(runs.libtorch!.map((r) => r.anonymousGb)).toFixed(2)} GB; load average (1 min) ${load.map((l) => l.toFixed(1)).join(' -> ')}; ${info.cpu.model}`);
    if (!values['no-record']) {
      mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
      appendFileSync(RESULTS, `${JSON.stringify({ bench: 'cpu-allocator', date: new Date().toISOString(), hidden, steps, reps, spawnEvery: args.spawnEvery, threads: args.threads, load, cpu: info.cpu, runs })}\n`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
