/**
 * Rows-only embedding training against all-rows embedding training, side by side (issue 16: "compute only
 * the gradients that are needed"). `lep adapt`'s `newRowsOnly` and `lep train --rows FILE` train only some
 * token rows; this bench measures what that saves on the same model, data and threads:
 *
 *   - step time: `trainModel` with params embeddings, all rows vs the last `--rows` ids of the vocabulary
 *     (the rows an Extended vocabulary appends), the engine's own per-step clock (`tokens / tokensPerS`),
 *     after one untimed warm-up step; `--reps` rounds alternating which side goes first; median of medians.
 *   - optimizer state: the bytes of the last checkpoint's optimizer.safetensors on each side.
 *
 * A step's work that scales with the trained rows: the LM head's weight gradient (one of the head's three
 * matmuls) and AdamW's element-wise update and state; the forward, the hidden-state gradient and the
 * body's backward do not shrink. Reported as the ratio rows / all (below 1 = rows-only is cheaper).
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/train-rows.js [--size toy|small] [--rows N]
 *        [--threads N] [--reps N] [--steps N] [--no-record]
 * Prints a markdown table and appends one JSON line to bench/results/train-rows.jsonl.
 */
import { appendFileSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createModel, lepInfo, mistralTokenizerDir, setThreads } from '../ts/index.js';
import { writeBlocks } from '../ts/train/packBlocks.js';
import { trainModel } from '../ts/train/trainModel.js';
import { median, parseSize, positiveInt } from './benchArgs.js';
import { BATCH, SEQ, SIZES, seededBlocks } from './trainShapes.js';

const RESULTS = join(import.meta.dirname, '..', '..', 'bench', 'results', 'train-rows.jsonl');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: 'toy' }, rows: { type: 'string', default: '2000' }, threads: { type: 'string', default: String(cpus().length) },
      reps: { type: 'string', default: '3' }, steps: { type: 'string', default: '3' }, 'no-record': { type: 'boolean', default: false },
    },
  });
  const size = parseSize(values.size, SIZES);
  const nRows = positiveInt(values.rows, 'rows');
  const threads = positiveInt(values.threads, 'threads');
  const reps = positiveInt(values.reps, 'reps');
  const steps = positiveInt(values.steps, 'steps');
  setThreads(threads);
  const work = mkdtempSync(join(tmpdir(), 'lep-bench-train-rows-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  const model = join(work, 'model');
  const config = await createModel(model, { tokenizerDir: mistralTokenizerDir(), modelType: 'llama', ...SIZES[size], maxPositionEmbeddings: 512, seed: 1 });
  if (nRows >= config.vocabSize) throw new Error(`--rows must be below the vocabulary size ${config.vocabSize}`);
  const data = join(work, 'blocks.safetensors');
  writeBlocks(data, seededBlocks(BATCH * (steps + 1), config.vocabSize, 7));
  const rowsFile = join(work, 'rows.json');
  const rows = Array.from({ length: nRows }, (_, i) => config.vocabSize - nRows + i);
  writeFileSync(rowsFile, JSON.stringify(rows));

  type Side = 'all' | 'rows';
  const run = async (side: Side): Promise<{ secs: number[]; stateBytes: number }> => {
    const out = join(work, `out-${side}-${Date.now()}`);
    const secs: number[] = [];
    await trainModel(model, out, {
      data, params: 'embeddings', steps: steps + 1, batchSize: BATCH, lr: 1e-3, warmupSteps: 0, seed: 0, checkpointEvery: steps + 1,
      ...(side === 'rows' ? { rows } : {}),
      onProgress: (e) => { if (e.phase === 'train') secs.push(e.tokens / e.tokensPerS); },
    });
    const ck = join(out, 'checkpoints');
    const last = readdirSync(ck).filter((n) => n.startsWith('step-')).sort().at(-1)!;
    const stateBytes = statSync(join(ck, last, 'optimizer.safetensors')).size;
    rmSync(out, { recursive: true, force: true });
    return { secs: secs.slice(1), stateBytes };
  };
  const medians: Record<Side, number[]> = { all: [], rows: [] };
  const state: Record<Side, number> = { all: 0, rows: 0 };
  for (let r = 0; r < reps; r++) {
    for (const side of (r % 2 ? ['rows', 'all'] : ['all', 'rows']) as Side[]) {
      const x = await run(side);
      medians[side].push(median(x.secs));
      state[side] = x.stateBytes;
      console.error(`round ${r + 1} ${side}: ${median(x.secs).toFixed(3)} s/step`);
    }
  }
  const all = median(medians.all), part = median(medians.rows);
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  console.log(`model ${size} (vocabulary ${config.vocabSize}, hidden ${config.hiddenSize}), ${BATCH} x ${SEQ} tokens per step, ${threads} threads, load ${loadavg()[0]!.toFixed(1)}`);
  console.log('| trained rows | s/step | ratio | optimizer state MiB | ratio |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(`| all ${config.vocabSize} | ${all.toFixed(3)} | 1.00 | ${mib(state.all)} | 1.00 |`);
  console.log(`| last ${nRows} | ${part.toFixed(3)} | ${(part / all).toFixed(2)} | ${mib(state.rows)} | ${(state.rows / state.all).toFixed(3)} |`);
  if (!values['no-record']) {
    appendFileSync(RESULTS, `${JSON.stringify({
      bench: 'train-rows', date: new Date().toISOString(), size, vocab: config.vocabSize, rows: nRows, threads, reps, steps,
      machine: { cpu: cpus()[0]?.model, loadavg: loadavg(), torch: lepInfo().torchVersion },
      secondsPerStep: { all, rows: part, allRounds: medians.all, rowsRounds: medians.rows }, optimizerStateBytes: state,
    })}\n`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
