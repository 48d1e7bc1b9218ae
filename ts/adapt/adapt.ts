/**
 * `lep adapt`: the whole method from a recipe — tokenizer → init → data → embedding training →
 * propagation (docs/method.md §1–4) — into one output folder, a sub-folder per stage:
 *
 *   OUT/tokenizer/            the new tokenizer (and OUT/tokenizer-donor/ for Extended/Optimized)
 *   OUT/init/                 the base model resized to it, new rows initialised (lep init)
 *   OUT/data/                 packed training and evaluation blocks
 *   OUT/train/                the base with trained embeddings (lep train --embeddings-only)
 *   OUT/propagate-<method>/   the adapted instruct model, one per method (lep propagate); with several
 *                             instruct models, OUT/propagate-<method>/<instruct folder name>/ each, all of
 *                             a method in one propagation job (the base side solved once)
 *   OUT/calibrate-<method>/   optional: the propagated model after LoRA calibration (lep calibrate),
 *                             with OUT/calibration-data/ (answers, calibration set) shared by all methods
 *
 *   OUT/stages/<stage>.json   adapt's own note of each finished stage: the options it ran with (recipe
 *                             section, input files' sizes and times), its result, seconds
 *   OUT/lep-stage.json        the stage record of the whole run (stage `adapt`), written last
 *
 * Every stage folder holds that stage's own record (`lep-stage.json`, stage/stageRecord.ts; the data
 * stage's is adapt's, as packing has no command of its own); adapt writes nothing else into them. A stage
 * is skipped when its note matches the current options and its folders hold valid records, so an
 * interrupted run resumes at the stage it stopped in (and training resumes from its last checkpoint). A
 * stage whose options changed is redone, and so is every stage after it.
 *
 * Data-parallel (RANK / WORLD_SIZE set, e.g. by `lep launch` or torchrun; OUT on storage every rank
 * sees): rank 0 runs every stage; the other ranks wait for rank 0's notes of the stages before
 * training, join the training, and stop after it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { throwIfAborted } from '../binding/runJob.js';
import { basename, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { calibrate } from '../calibrate/calibrate.js';
import { LepError } from '../errors.js';
import { initEmbeddings } from '../init/initEmbeddings.js';
import { PROVENANCE_FILE } from '../init/provenance.js';
import { propagate, PROPAGATE_METHODS, type PropagateMethod, type PropagateResult } from '../propagate/propagate.js';
import { DEFAULT_MERGE_ORDER } from '../tokenizer/extend.js';
import { extendTokenizerDir } from '../tokenizer/extendTokenizerDir.js';
import { shrinkTokenizerDir } from '../tokenizer/shrinkTokenizerDir.js';
import { trainTokenizer } from '../tokenizer/train.js';
import { readDistributedEnv } from '../train/distributedEnv.js';
import { packCorpus } from '../train/packCorpus.js';
import { beginStage, corpusInputs, readStageRecord, STAGE_RECORD_FILE, stageInput, writeStageRecord, type RecordedStage, type StageInput } from '../stage/stageRecord.js';
import { ADAPTER_DIR, trainModel } from '../train/trainModel.js';
import { TRAIN_SPEC } from '../train/trainOptions.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { ADAPT_TRAIN_DEFAULTS, type AdaptRecipe } from './recipe.js';

export const STAGES = ['tokenizer', 'init', 'data', 'train', 'propagate', 'calibrate'] as const;
export type StageName = (typeof STAGES)[number];
/** Where adapt keeps its note of each finished stage: OUT/stages/<stage>.json. */
export const STAGE_NOTES_DIR = 'stages';
/**
 * @deprecated Where lep 0.1.0's adapt kept its note of a stage: inside the stage's own folder (over
 * init's own manifest.json). Read only to resume a run that version started; see docs/migration.md.
 */
export const MANIFEST_FILE = 'manifest.json';

export interface AdaptProgress {
  stage: StageName;
  /** 1-based index of the stage and the stage count. */
  index: number;
  stages: number;
  /** What the stage reports (free text), e.g. "step 120/300 loss 3.21". */
  detail: string;
  /** Fraction of the stage done, when known. */
  fraction?: number;
  /** The step inside the stage and its units done of total (0: unknown), where the stage counts them (see stage/stageProgress.ts). */
  phase?: string;
  done?: number;
  total?: number;
}

type Counts = { phase: string; done: number; total: number };

export interface AdaptOptions {
  onProgress?: (p: AdaptProgress) => void;
  signal?: AbortSignal;
}

export interface AdaptResult {
  out: string;
  /** Stages run now (the others were already done). */
  ran: StageName[];
  /** Output model per propagation method (with several instruct models: the folder holding one per model). */
  models: Partial<Record<PropagateMethod, string>>;
  /** Output model per propagation method and instruct model (the recipe's paths), for every recipe. */
  targets: Partial<Record<PropagateMethod, { instruct: string; out: string }[]>>;
  /** Calibrated model per propagation method (recipes with a calibrate section). */
  calibrated: Partial<Record<PropagateMethod, string>>;
  /** Per-stage notes (OUT/stages/<stage>.json): the options each stage ran with, its result, seconds. */
  manifests: Partial<Record<StageName, StageManifest>>;
}

/** Adapt's note of one finished stage (OUT/stages/<stage>.json). */
export interface StageManifest {
  stage: StageName;
  options: unknown;
  result: unknown;
  seconds: number;
  finished: string;
}

/**
 * What a stage's inputs look like on disk (name, size, modification time of each file): part of the
 * stage's options, so a model or corpus changed in place is noticed and the stage redone.
 */
function fingerprint(paths: string | readonly string[] | undefined): [string, number, number][] {
  const out: [string, number, number][] = [];
  const add = (p: string) => {
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) for (const f of readdirSync(p).sort()) add(join(p, f));
    else out.push([p, st.size, Math.round(st.mtimeMs)]);
  };
  for (const p of paths === undefined ? [] : typeof paths === 'string' ? [paths] : paths) add(p);
  return out;
}

/**
 * Progress through a corpus: UTF-8 bytes read against the files' sizes (a fingerprint's), as a label, a
 * fraction and the counts of `phase`. A script filter or maxChars ends a stage short of 1; the stage's
 * own end reports 1.
 */
function corpusRead(bytes: number, files: [string, number, number][], phase: string): { label: string; fraction: number | undefined; counts: Counts } {
  const total = files.reduce((n, [, size]) => n + size, 0);
  return {
    label: `${(bytes / 1e6).toFixed(1)} of ${(total / 1e6).toFixed(1)} MB`,
    fraction: total > 0 ? Math.min(0.99, bytes / total) : undefined,
    counts: { phase, done: bytes, total },
  };
}

function readJson(f: string): unknown {
  if (!existsSync(f)) return undefined;
  try {
    return JSON.parse(readFileSync(f, 'utf8')) as unknown;
  } catch {
    return undefined;
  }
}

const noteFile = (out: string, name: StageName) => join(out, STAGE_NOTES_DIR, `${name}.json`);

/** Adapt's note of a stage; `legacy` when it is lep 0.1.0's, inside the stage folder (its outputs kept no stage records). */
function readNote(out: string, name: StageName, dir: string): { note: StageManifest; legacy: boolean } | undefined {
  const note = readJson(noteFile(out, name)) as StageManifest | undefined;
  if (note) return { note, legacy: false };
  const old = readJson(join(dir, MANIFEST_FILE)) as Partial<StageManifest> | undefined;
  // lep init's own manifest.json has a stage and options too, but no `finished`: only adapt's counts.
  return old?.stage === name && typeof old.finished === 'string' && 'options' in old ? { note: old as StageManifest, legacy: true } : undefined;
}

/** Folders that hold the record of one stage (what the stage's function records itself as). */
interface RecordSet {
  dirs: string[];
  stage: RecordedStage;
}

/** Whether every folder holds a valid record of its stage (a stage that finished writes it last). */
function recorded(sets: readonly RecordSet[]): boolean {
  try {
    for (const { dirs, stage } of sets) for (const d of dirs) readStageRecord(d, stage);
    return true;
  } catch {
    return false;
  }
}

/** The ids of rows `lep init` made (not copied from the base): what `newRowsOnly` trains. */
function newRows(initDir: string): number[] {
  const prov = JSON.parse(readFileSync(join(initDir, PROVENANCE_FILE), 'utf8')) as { tokens: { id: number; source: string }[] };
  const copied = new Set(['copy', 'id-map', 'special', 'override']);
  return prov.tokens.filter((t) => !copied.has(t.source)).map((t) => t.id);
}

export async function adapt(recipe: AdaptRecipe, outDir: string, options: AdaptOptions = {}): Promise<AdaptResult> {
  const started = beginStage('adapt');
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  const r = recipe;
  const methods = r.propagate?.methods ?? [...PROPAGATE_METHODS];
  const result: AdaptResult = { out, ran: [], models: {}, targets: {}, calibrated: {}, manifests: {} };
  const instructs = typeof r.instruct === 'string' ? [r.instruct] : r.instruct;
  const many = typeof r.instruct !== 'string';
  if (many && new Set(instructs.map((d) => basename(d))).size !== instructs.length)
    throw new LepError('LEP_BAD_RECIPE', `recipe.instruct: two instruct models share a folder name (${instructs.join(', ')}); each method writes OUT/propagate-<method>/<folder name>\nHINT: give the instruct models folders of different names (a symlink will do).`);
  if (many && r.calibrate)
    throw new LepError('LEP_BAD_RECIPE', 'recipe.calibrate: calibration runs with one instruct model (its answers are generated by that model)\nHINT: run one recipe per instruct model for calibration, or drop the calibrate section.');
  let redoRest = false;
  // The calibrate stage exists only for recipes that ask for it.
  const planned = STAGES.filter((s) => s !== 'calibrate' || r.calibrate);
  const dist = readDistributedEnv();
  const follower = dist !== undefined && dist.rank !== 0;
  // The run's own record says it finished: an earlier run's goes until this one has.
  if (!follower) rmSync(join(out, STAGE_RECORD_FILE), { force: true });
  const report = (stage: StageName, detail: string, fraction?: number, counts?: Counts) =>
    options.onProgress?.({ stage, index: planned.indexOf(stage) + 1, stages: planned.length, detail, ...(fraction === undefined ? {} : { fraction }), ...counts });

  /**
   * Runs `body` unless the stage's note says it is done with these options and the folders in `records`
   * hold their stages' records.
   */
  const stage = async (name: StageName, dirs: string[], stageOptions: unknown, records: readonly RecordSet[], body: () => Promise<unknown>): Promise<void> => {
    const dir = dirs[0]!;
    if (follower) return follow(name, dir, stageOptions, body);
    const prev = readNote(out, name, dir);
    if (!redoRest && prev && JSON.stringify(prev.note.options) === JSON.stringify(stageOptions) && (prev.legacy || recorded(records))) {
      result.manifests[name] = prev.note;
      report(name, 'done before, kept', 1);
      return;
    }
    // Options changed (or first run): this stage and every later one are redone. Training keeps its
    // checkpoints only when it is being resumed with the same options. The note goes after the folders:
    // a rank waiting for the training note to go then finds no stale checkpoints.
    if (prev) for (const d of dirs) rmSync(d, { recursive: true, force: true });
    rmSync(noteFile(out, name), { force: true });
    redoRest = true;
    throwIfAborted(options.signal);
    const t0 = Date.now();
    report(name, 'started', 0);
    const res = await body();
    const manifest: StageManifest = { stage: name, options: stageOptions, result: res, seconds: (Date.now() - t0) / 1000, finished: new Date().toISOString() };
    mkdirSync(join(out, STAGE_NOTES_DIR), { recursive: true });
    writeJsonAtomic(noteFile(out, name), manifest);
    result.manifests[name] = manifest;
    result.ran.push(name);
    report(name, `done in ${manifest.seconds.toFixed(1)} s`, 1);
  };

  /**
   * A rank other than 0: waits until rank 0 has finished a stage with these options (its note), and
   * trains with it; it never deletes or writes stage outputs. Before training, a stale training
   * note (other options) means rank 0 has yet to clear that folder: wait, so every rank resumes
   * from the same checkpoints.
   */
  const follow = async (name: StageName, dir: string, stageOptions: unknown, body: () => Promise<unknown>): Promise<void> => {
    const same = (m: StageManifest | undefined) => m !== undefined && JSON.stringify(m.options) === JSON.stringify(stageOptions);
    if (name === 'propagate') return;
    let waited = false;
    for (;;) {
      const m = readNote(out, name, dir)?.note;
      if (same(m)) {
        result.manifests[name] = m;
        return report(name, 'done by rank 0', 1);
      }
      if (name === 'train' && m === undefined) break;
      if (!waited) report(name, `rank ${dist!.rank}: waiting for rank 0 to finish this stage`);
      waited = true;
      throwIfAborted(options.signal);
      await sleep(1000);
    }
    report(name, 'started', 0);
    await body();
    result.ran.push(name);
  };

  // 1. tokenizer
  const tokDir = r.tokenizer.kind === 'existing' ? r.tokenizer.dir! : join(out, 'tokenizer');
  const donorDir = join(out, 'tokenizer-donor');
  const t = r.tokenizer;
  const spm = {
    // Unset keys take trainTokenizer's defaults (TOKENIZER_TRAIN_SPEC).
    type: t.type,
    vocabSize: t.vocabSize,
    inputSentenceSize: t.inputSentenceSize,
    seed: t.seed,
    corpus: { normalize: r.corpus.normalize, script: r.corpus.script, maxChars: r.corpus.maxChars },
    signal: options.signal,
    onProgress: (e: Counts) => report('tokenizer', `${e.phase} ${e.done}/${e.total}`, e.total ? e.done / e.total : undefined, { phase: e.phase, done: e.done, total: e.total }),
  } as const;
  const inputs = { base: fingerprint(r.base), instruct: fingerprint(r.instruct), corpus: fingerprint(r.corpus.train), eval: fingerprint(r.corpus.eval) };
  // The folders that hold the tokenizer stage's records: the trained tokenizer; or the donor that Extended
  // and Optimized train first, and the tokenizer that lep tokenizer extend or shrink makes with it.
  const tokRecords: RecordSet[] =
    t.kind === 'existing' ? [] : t.kind === 'train' ? [{ dirs: [tokDir], stage: 'tokenizer' }] : [{ dirs: [donorDir], stage: 'tokenizer' }, { dirs: [tokDir], stage: t.kind }];
  // The merge order as resolved, not as written: a run whose recipe left it unset was made under the
  // default of its day, and a changed default (new-first -> keep-ascii) must redo the tokenizer.
  const mergeOrder = t.kind === 'extend' || t.kind === 'shrink' ? (t.mergeOrder ?? DEFAULT_MERGE_ORDER) : undefined;
  const tokOptions = mergeOrder === undefined ? t : { ...t, mergeOrder };
  await stage('tokenizer', [join(out, 'tokenizer'), donorDir], { tokenizer: tokOptions, corpus: r.corpus, base: r.base, files: [inputs.base, inputs.corpus] }, tokRecords, async () => {
    if (t.kind === 'existing') return { dir: tokDir };
    if (t.kind === 'train') return (await trainTokenizer(r.corpus.train, tokDir, { ...spm, like: instructs[0]! })).stats;
    await trainTokenizer(r.corpus.train, donorDir, spm);
    if (t.kind === 'extend') return extendTokenizerDir(r.base, donorDir, tokDir, { mergeOrder }).stats;
    const s = await shrinkTokenizerDir(r.base, tokDir, {
      keep: t.keep!,
      corpus: r.corpus.train,
      read: { normalize: r.corpus.normalize, script: r.corpus.script, maxChars: r.corpus.maxChars },
      donorDir,
      extend: { mergeOrder },
      onProgress: (e) => {
        const at = corpusRead(e.bytes, inputs.corpus, 'shrink');
        report('tokenizer', `shrink: base tokens counted on ${at.label}`, at.fraction, at.counts);
      },
    });
    return { shrink: s.shrink, extend: s.extend, size: s.size };
  });

  // 2. init: the base resized to the new tokenizer
  const initDir = join(out, 'init');
  await stage('init', [initDir], { tokenizer: tokDir, init: r.init ?? {}, files: inputs.base }, [{ dirs: [initDir], stage: 'init' }], async () => {
    const res = await initEmbeddings(r.base, tokDir, initDir, { ...r.init, signal: options.signal, onProgress: (e) => report('init', `${e.phase} ${e.done}/${e.total}`, undefined, { phase: e.phase, done: e.done, total: e.total }) });
    return { oldSize: res.oldSize, newSize: res.newSize, rows: res.rows, counts: res.counts, seconds: res.seconds };
  });

  // 3. data: training and evaluation blocks with the new tokenizer
  const dataDir = join(out, 'data');
  const trainData = join(dataDir, 'train.safetensors');
  const evalData = r.corpus.eval ? join(dataDir, 'eval.safetensors') : undefined;
  const evalBlocks = r.train.evalBlocks ?? ADAPT_TRAIN_DEFAULTS.evalBlocks;
  await stage('data', [dataDir], { corpus: r.corpus, seqLen: r.train.seqLen, evalBlocks, files: [inputs.corpus, inputs.eval] }, [{ dirs: [dataDir], stage: 'data' }], async () => {
    const dataStage = beginStage('data');
    mkdirSync(dataDir, { recursive: true });
    const read = { normalize: r.corpus.normalize, script: r.corpus.script, signal: options.signal };
    report('data', 'packing training text');
    const tr = await packCorpus(r.corpus.train, initDir, trainData, {
      seqLen: r.train.seqLen,
      maxChars: r.corpus.maxChars,
      ...read,
      onProgress: (e) => {
        const at = corpusRead(e.bytes, inputs.corpus, 'packing');
        report('data', `packing training text: ${at.label}`, at.fraction, at.counts);
      },
    });
    const ev = r.corpus.eval ? await packCorpus(r.corpus.eval, initDir, evalData!, { seqLen: r.train.seqLen, maxBlocks: evalBlocks, ...read }) : undefined;
    // Packing has no command of its own: adapt records this stage itself.
    writeStageRecord(dataDir, dataStage, {
      inputs: [...(await corpusInputs('corpus', r.corpus.train)), ...(r.corpus.eval ? await corpusInputs('evalCorpus', r.corpus.eval) : []), stageInput('tokenizer', initDir)],
      resolved: { seqLen: r.train.seqLen, evalBlocks, normalize: r.corpus.normalize, script: r.corpus.script, maxChars: r.corpus.maxChars },
      result: { train: tr, eval: ev },
    });
    return { train: tr, eval: ev };
  });

  // 4. embedding-only training of the resized base
  const trainDir = join(out, 'train');
  const { seqLen: _seqLen, newRowsOnly, evalBlocks: _evalBlocks, ...trainOptions } = r.train;
  await stage('train', [trainDir], { train: r.train }, [{ dirs: [trainDir], stage: 'train' }], async () => {
    const steps = trainOptions.steps ?? TRAIN_SPEC.steps.default;  // the spec's default: one source
    const res = await trainModel(initDir, trainDir, {
      ...trainOptions,
      data: trainData,
      evalData,
      // With train.lora: LoRA + embeddings and head (modules to save) in one run, as the authors' later CPT.
      params: trainOptions.lora ? 'lora' : 'embeddings',
      ...(trainOptions.lora ? { lora: { modulesToSave: ['embed_tokens', 'lm_head'], ...trainOptions.lora } } : {}),
      ...(newRowsOnly ? { rows: newRows(initDir) } : {}),
      checkpointEvery: trainOptions.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10)),
      signal: options.signal,
      onProgress: (e) => {
        if (e.phase === 'train') report('train', `step ${e.done}/${e.total} loss ${e.loss.toFixed(3)}`, e.done / e.total, { phase: 'train', done: e.done, total: e.total });
        if (e.phase === 'eval') report('train', `step ${e.done} eval loss ${e.evalLoss.toFixed(3)}${e.bpc !== undefined ? ` bpc ${Number(e.bpc).toFixed(3)}` : ''}`);
      },
    });
    return res;
  });

  // 5. propagation into the instruct model, one output per method
  const propDirs = methods.map((m) => join(out, `propagate-${m}`));
  // Each output model holds its record: OUT/propagate-<method>, or with several instruct models one folder per model in it.
  const propRecords = { dirs: propDirs.flatMap((d) => (many ? instructs.map((i) => join(d, basename(i))) : [d])), stage: 'propagate' } as const;
  await stage('propagate', propDirs, { methods, solver: r.propagate?.solver, keepOverlapRows: r.propagate?.keepOverlapRows, alphaScale: r.propagate?.alphaScale, instruct: r.instruct, files: inputs.instruct }, [propRecords], async () => {
    const reports: Record<string, unknown> = {};
    for (const [i, method] of methods.entries()) {
      report('propagate', `${method} (${i + 1}/${methods.length})`, i / methods.length, { phase: 'methods', done: i, total: methods.length });
      const common = {
        base: r.base, donor: trainDir, method, solver: r.propagate?.solver, device: r.propagate?.device, keepOverlapRows: r.propagate?.keepOverlapRows, signal: options.signal,
        ...(r.train.lora ? { lora: join(trainDir, ADAPTER_DIR), alphaScale: r.propagate?.alphaScale } : {}),
      };
      const results = many ? (await propagate({ ...common, instruct: instructs, out: propDirs[i]! })).results : [await propagate({ ...common, instruct: instructs[0]!, out: propDirs[i]! })];
      const summary = (p: PropagateResult) => ({ sides: p.sides, vocabulary: p.vocabulary, warnings: p.warnings });
      reports[method] = many ? Object.fromEntries(results.map((p) => [p.instruct, summary(p)])) : summary(results[0]!);
    }
    return reports;
  });
  if (follower) return result;
  for (const [i, m] of methods.entries()) {
    result.models[m] = propDirs[i]!;
    result.targets[m] = instructs.map((instruct) => ({ instruct, out: many ? join(propDirs[i]!, basename(instruct)) : propDirs[i]! }));
  }
  const firstModel = result.targets[methods[0]!]![0]!.out;
  if (!existsSync(join(firstModel, 'config.json'))) throw new LepError('LEP_ADAPT', `propagation wrote no model into ${firstModel}`);

  // 6. optional LoRA calibration of chosen propagated models
  const c = r.calibrate;
  if (c) {
    const calMethods = c.methods ?? methods;
    for (const m of calMethods) if (!methods.includes(m)) throw new LepError('LEP_BAD_RECIPE', `recipe.calibrate.methods: "${m}" is not among the propagation methods ${methods.join(', ')}`);
    const calDirs = calMethods.map((m) => join(out, `calibrate-${m}`));
    const work = join(out, 'calibration-data');
    const { methods: _m, ...rest } = c;
    const files = [c.data, c.copyText, typeof c.prompts === 'string' ? c.prompts : undefined].filter((f): f is string => f !== undefined);
    await stage('calibrate', calDirs, { calibrate: c, files: fingerprint(files) }, [{ dirs: calDirs, stage: 'calibrate' }], async () => {
      const reports: Record<string, unknown> = {};
      for (const [i, method] of calMethods.entries()) {
        report('calibrate', `${method} (${i + 1}/${calMethods.length})`, i / calMethods.length, { phase: 'methods', done: i, total: calMethods.length });
        const res = await calibrate(result.models[method]!, calDirs[i]!, {
          ...rest,
          original: instructs[0]!,
          workDir: work,
          signal: options.signal,
          // Half the stage for the original model's answers, half for training (progress and ETA only).
          onAnswers: (e) => report('calibrate', `${method}: answers ${e.done}/${e.total}`, (i + (0.5 * e.done) / Math.max(1, e.total)) / calMethods.length, { phase: 'answers', done: e.done, total: e.total }),
          onProgress: (e) => {
            if (e.phase === 'train') report('calibrate', `${method}: step ${e.done}/${e.total} loss ${e.loss.toFixed(3)}`, (i + 0.5 + (0.5 * e.done) / e.total) / calMethods.length, { phase: 'train', done: e.done, total: e.total });
          },
        });
        reports[method] = { examples: res.examples, blocks: res.blocks, steps: res.train.stepsDone, lastLoss: res.train.lastLoss };
      }
      return reports;
    });
    for (const [i, m] of calMethods.entries()) result.calibrated[m] = calDirs[i]!;
  }
  await writeAdaptRecord(out, started, r, { ...result, recordDirs: { tokenizer: tokRecords.flatMap((s) => s.dirs), init: [initDir], data: [dataDir], train: [trainDir], propagate: propRecords.dirs, calibrate: Object.values(result.calibrated) } });
  return result;
}

/**
 * The record of the whole run (stage `adapt`) in OUT, written last: the recipe's inputs with
 * fingerprints, the recipe, and where each stage's own record is (paths relative to OUT).
 */
async function writeAdaptRecord(out: string, start: ReturnType<typeof beginStage>, r: AdaptRecipe, res: AdaptResult & { recordDirs: Partial<Record<StageName, string[]>> }): Promise<void> {
  const { recordDirs, manifests: _m, ...rest } = res;
  const paths = (p: string | readonly string[] | undefined) => (p === undefined ? [] : typeof p === 'string' ? [p] : [...p]);
  const inputs: StageInput[] = [
    stageInput('base', r.base),
    ...paths(r.instruct).map((p) => stageInput('instruct', p)),
    ...(r.tokenizer.kind === 'existing' && r.tokenizer.dir ? [stageInput('tokenizer', r.tokenizer.dir)] : []),
    ...(await corpusInputs('corpus', r.corpus.train)),
    ...(r.corpus.eval ? await corpusInputs('evalCorpus', r.corpus.eval) : []),
    ...(r.calibrate?.data ? [stageInput('calibrationData', r.calibrate.data)] : []),
    ...(r.calibrate?.copyText ? [stageInput('copyText', r.calibrate.copyText)] : []),
  ];
  const stages = Object.fromEntries(
    Object.entries(recordDirs).map(([name, dirs]) => [name, { records: dirs.map((d) => relative(out, join(d, STAGE_RECORD_FILE))), ran: rest.ran.includes(name as StageName) }]),
  );
  writeStageRecord(out, start, { inputs, resolved: { ...r }, result: { ...rest, stages } });
}
