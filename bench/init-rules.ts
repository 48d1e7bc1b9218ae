/**
 * Initialisation rules under one set of metrics (issue 18, part 2): for each rule of `lep init` (mean,
 * random, global-mean, omp, focus) on a base/instruct pair, the loss on new-token targets of held-out
 * Russian text
 *
 *   1. right after `lep init` (the base model with the new vocabulary, no training),
 *   2. after N steps of embeddings-only training on Russian text (same data, seed and schedule per rule),
 *   3. after propagation (`lep propagate`, conversion) into the instruct model,
 *
 * plus the loss on all targets at each stage (lower is better), and the propagated instruct model's
 * Darumeru-style Micro-Avg and Russian copy score from `lep eval --tasks all` (higher is better; the
 * original instruct model's are measured in the same run, and each rule's are also given as a ratio to it). "New-token targets" are the held-out
 * positions whose next token is one the base vocabulary lacks: exactly the rows the rules differ on.
 *
 * The pipeline is lep's own: a SentencePiece BPE trained on ru.txt (`trainTokenizer`, --bpe-size pieces,
 * like the base), the base tokenizer Extended with at most --new-tokens of its pieces (`extendTokenizerDir`).
 * The donor of omp/focus is an auxiliary model trained here from scratch on the same Russian text with the
 * new tokenizer (h64, 2 layers, --donor-steps steps): the FOCUS setting (an auxiliary embedding space of
 * the new vocabulary trained on target-language text; FOCUS uses fastText, lep has no fastText and uses
 * a small language model's input and output embeddings). No rule sees the held-out text.
 *
 * Usage: npx tsc -p tsconfig.json && node dist/bench/init-rules.js [--base DIR] [--instruct DIR]
 *        [--steps N] [--new-tokens N] [--bpe-size N] [--donor-steps N] [--omp-k N] [--rules mean,omp,...]
 *        [--eval-lines N] [--eval-limit N] [--work DIR] [--corpora DIR] [--no-record]
 * Defaults: the toy family (test/fixtures/toy-family), 200 steps, 2000 new tokens, 8000-piece BPE, 300
 * donor steps, k 64, 300 held-out lines, 50 items per evaluation task (the demo's probes use the same). Work files go to .cache/init-rules (rebuilt each run). Prints a
 * markdown table and appends one JSON line to bench/results/init-rules.jsonl.
 */
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { packageRoot } from '../ts/binding/loadNative.js';
import {
  createModel,
  extendTokenizerDir,
  fetchCorpora,
  initEmbeddings,
  LepModel,
  lepInfo,
  propagate,
  setThreads,
  Tokenizer,
  trainModel,
  trainTokenizer,
} from '../ts/index.js';
import { INIT_RULES, type InitRule } from '../ts/init/index.js';
import { evaluate } from '../ts/eval/index.js';
import { packDocuments, writeBlocks } from '../ts/train/index.js';
import { optionError } from '../ts/errors.js';
import { positiveInt } from './benchArgs.js';

const RESULTS = join(packageRoot, 'bench', 'results', 'init-rules.jsonl');
/** Characters of ru.txt the embeddings (and the donor) train on: the share the toy base saw. */
const TRAIN_CHARS = 3_000_000;
const SEQ_LEN = 128;

interface Loss {
  /** Mean negative log-likelihood (nats) on new-token targets and on all targets. */
  newTargets: number;
  all: number;
}

async function losses(dir: string, seqs: number[][], oldSize: number): Promise<Loss> {
  const m = await LepModel.load(dir);
  try {
    let all = 0, n = 0, onNew = 0, nNew = 0;
    (await m.score(seqs)).forEach((s, i) =>
      s.tokenLogprobs.forEach((lp, j) => {
        all -= lp;
        n++;
        if (seqs[i]![j + 1]! >= oldSize) (onNew -= lp, nNew++);
      }),
    );
    return { newTargets: onNew / nNew, all: all / n };
  } finally {
    m.dispose();
  }
}

interface Scores {
  /** Darumeru-style Micro-Avg over the built-in suites, and the Russian copy group's score. */
  microAvg: number;
  copyRu: number;
}

/** The model's `lep eval --tasks all --limit N` scores (no text metrics: the losses above cover them). */
async function scores(dir: string, limit: number, corporaDir: string): Promise<Scores> {
  const e = await evaluate(dir, ['all'], { limit, corporaDir, textMaxChars: 2_000 });
  return { microAvg: e.summary.microAvg, copyRu: e.summary.groups['Copy (RU)']! };
}

function documents(file: string, maxChars: number): string[][] {
  const text = readFileSync(file, 'utf8').slice(0, maxChars || undefined);
  return text.split(/\n\n+/).map((d) => d.split('\n').filter(Boolean)).filter((d) => d.length > 0);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      base: { type: 'string' }, instruct: { type: 'string' }, steps: { type: 'string' }, 'new-tokens': { type: 'string' },
      'bpe-size': { type: 'string' }, 'donor-steps': { type: 'string' }, 'omp-k': { type: 'string' }, rules: { type: 'string' },
      'eval-lines': { type: 'string' }, 'eval-limit': { type: 'string' }, work: { type: 'string' }, corpora: { type: 'string' }, threads: { type: 'string' },
      'no-record': { type: 'boolean' },
    },
  });
  const base = resolve(values.base ?? join(packageRoot, 'test', 'fixtures', 'toy-family', 'base'));
  const instruct = resolve(values.instruct ?? join(packageRoot, 'test', 'fixtures', 'toy-family', 'instruct'));
  const steps = positiveInt(values.steps ?? 200, 'steps');
  const newTokens = positiveInt(values['new-tokens'] ?? 2000, 'new-tokens');
  const bpeSize = positiveInt(values['bpe-size'] ?? 8000, 'bpe-size');
  const donorSteps = positiveInt(values['donor-steps'] ?? 300, 'donor-steps');
  const ompK = positiveInt(values['omp-k'] ?? 64, 'omp-k');
  const evalLines = positiveInt(values['eval-lines'] ?? 300, 'eval-lines');
  const evalLimit = positiveInt(values['eval-limit'] ?? 50, 'eval-limit');
  // The default first, then the donor rules, then the baselines (a run cut short still compares the first ones).
  const rules = (values.rules ?? 'mean,omp,focus,random,global-mean').split(',') as InitRule[];
  for (const r of rules) if (!INIT_RULES.includes(r)) throw optionError('rules', INIT_RULES.join(', '), r, '--rules');
  const work = resolve(values.work ?? join(packageRoot, '.cache', 'init-rules'));
  const threads = positiveInt(values.threads ?? availableParallelism(), 'threads');
  setThreads(threads);
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const t0 = performance.now();
  const log = (m: string): void => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)} s] ${m}`);

  const corporaDir = resolve(values.corpora ?? join(packageRoot, '.cache', 'corpora'));
  const corpora = await fetchCorpora({ cacheDir: corporaDir });
  const ruFile = corpora.files['ru.txt']!;
  const heldFile = corpora.files['heldout/ru.txt']!;

  // The new vocabulary: lep's own BPE on Russian text, Extended onto the base tokenizer.
  const bpe = join(work, 'ru-bpe');
  await trainTokenizer(ruFile, bpe, { vocabSize: bpeSize, like: base, corpus: { maxChars: TRAIN_CHARS } });
  const tokDir = join(work, 'tokenizer');
  const ext = extendTokenizerDir(base, bpe, tokDir, { maxNewTokens: newTokens });
  const oldTok = Tokenizer.fromDir(base);
  const newTok = Tokenizer.fromDir(tokDir);
  log(`tokenizer: ${oldTok.size} -> ${newTok.size} tokens (${JSON.stringify(ext.stats)})`);

  const { blocks } = await packDocuments(documents(ruFile, TRAIN_CHARS), newTok, { seqLen: SEQ_LEN });
  const data = join(work, 'ru-blocks.safetensors');
  writeBlocks(data, blocks);
  const held = readFileSync(heldFile, 'utf8').split('\n').filter((l) => l.length > 40).slice(0, evalLines);
  const seqs = (await newTok.encodeBatch(held)).map((s) => s.slice(0, 512));
  const nNew = seqs.reduce((a, s) => a + s.slice(1).filter((id) => id >= oldTok.size).length, 0);
  log(`${blocks.length} training blocks of ${SEQ_LEN}; ${seqs.length} held-out lines, ${nNew} new-token targets`);

  // The donor of omp/focus: a small model of the new vocabulary trained from scratch on the same text.
  let donor: string | undefined;
  if (rules.some((r) => r === 'omp' || r === 'focus')) {
    const fresh = join(work, 'donor-init');
    await createModel(fresh, { tokenizerDir: tokDir, modelType: 'llama', hiddenSize: 64, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 4, maxPositionEmbeddings: 512, seed: 1 });
    donor = join(work, 'donor');
    const r = await trainModel(fresh, donor, { data, steps: donorSteps, batchSize: 16, lr: 3e-3, warmupSteps: 20, seed: 1, resume: false });
    log(`donor: ${donorSteps} steps, last loss ${r.lastLoss.toFixed(3)}`);
  }

  const original = await scores(instruct, evalLimit, corporaDir);
  log(`original instruct model: ${JSON.stringify(original)}`);

  const rows: Record<string, unknown>[] = [];
  for (const rule of rules) {
    const init = join(work, `${rule}-init`);
    const ir = await initEmbeddings(base, tokDir, init, {
      rule,
      ...(rule === 'omp' || rule === 'focus' ? { auxModel: donor, ...(rule === 'omp' ? { ompK } : {}) } : {}),
    });
    const before = await losses(init, seqs, oldTok.size);
    const trained = join(work, `${rule}-trained`);
    const tr = await trainModel(init, trained, { data, params: 'embeddings', steps, batchSize: 8, lr: 3e-3, warmupSteps: 10, seed: 1, resume: false });
    const after = await losses(trained, seqs, oldTok.size);
    const prop = join(work, `${rule}-propagated`);
    await propagate({ base, donor: trained, instruct, out: prop, method: 'conversion' });
    const propagated = await losses(prop, seqs, oldTok.size);
    const evaluated = await scores(prop, evalLimit, corporaDir);
    const row = { rule, counts: ir.counts, donor: ir.input.donor, before, after, propagated, evaluated, trainLoss: tr.lastLoss };
    rows.push(row);
    log(`${rule}: ${JSON.stringify({ before, after, propagated, evaluated })}`);
    for (const d of [init, trained, prop]) rmSync(d, { recursive: true, force: true });
  }

  const f = (x: number): string => x.toFixed(3);
  const ratio = (x: number, of: number): string => `${f(x)} (${(x / of).toFixed(2)}x)`;
  const table = [
    `| rule | new-token loss: init | after ${steps} steps | propagated | all-token loss: init | after | propagated | propagated Micro-Avg | propagated copy RU |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => {
      const x = r as { rule: string; before: Loss; after: Loss; propagated: Loss; evaluated: Scores };
      return `| ${x.rule} | ${f(x.before.newTargets)} | ${f(x.after.newTargets)} | ${f(x.propagated.newTargets)} | ${f(x.before.all)} | ${f(x.after.all)} | ${f(x.propagated.all)} | ${ratio(x.evaluated.microAvg, original.microAvg)} | ${ratio(x.evaluated.copyRu, original.copyRu)} |`;
    }),
    `| *original instruct model* | | | | | | | ${f(original.microAvg)} | ${f(original.copyRu)} |`,
  ].join('\n');
  console.log(table);
  if (!values['no-record']) {
    const info = lepInfo();
    appendFileSync(
      RESULTS,
      `${JSON.stringify({
        bench: 'init-rules',
        date: new Date().toISOString(),
        machine: { cpu: cpus()[0]?.model, cores: cpus().length, threads, loadavg: loadavg(), torch: info.torchVersion },
        base, instruct, steps, newTokens, bpeSize, donorSteps, ompK, evalLines, oldSize: oldTok.size, newSize: newTok.size, newTargets: nNew, evalLimit, original,
        seconds: (performance.now() - t0) / 1000,
        rows,
      })}\n`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
