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
 *   OUT/lep-stage.json        the stage record of the whole run (stage `adapt`), written last
 *
 * Every stage folder holds that stage's own record (`lep-stage.json`, stage/stageRecord.ts; the data
 * stage's is adapt's, as packing has no command of its own), and adapt keeps no notes of its own: it
 * tags each stage's records with the recipe section the stage ran with (`tags.adapt`). A stage is skipped
 * when every one of its folders holds a valid record with this run's tag and every input that record
 * lists still has its fingerprint (content, not modification times), so an interrupted run resumes at
 * the stage it stopped in (and training resumes from its last checkpoint). A stage whose options or
 * inputs changed is redone, and so is every stage after it. Runs that an earlier lep began kept notes
 * (OUT/stages/<stage>.json; lep 0.1.0: manifest.json in the stage folder): they are read to resume
 * such a run, see `readLegacyNote`.
 *
 * Data-parallel (RANK / WORLD_SIZE set, e.g. by `lep launch` or torchrun; OUT on storage every rank
 * sees): rank 0 runs every stage; the other ranks wait for rank 0's records of the stages before
 * training, join the training, and stop after it.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { throwIfAborted } from '../binding/runJob.js';
import { basename, join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { calibrate } from '../calibrate/calibrate.js';
import { LepError } from '../errors.js';
import { initEmbeddings } from '../init/initEmbeddings.js';
import { newRowIds } from '../init/provenance.js';
import { propagateMethods, PROPAGATE_METHODS, type PropagateMethod, type PropagateResult } from '../propagate/propagate.js';
import { DEFAULT_MERGE_ORDER } from '../tokenizer/extend.js';
import { extendTokenizerDir } from '../tokenizer/extendTokenizerDir.js';
import { shrinkTokenizerDir } from '../tokenizer/shrinkTokenizerDir.js';
import { trainTokenizer } from '../tokenizer/train.js';
import { readDistributedEnv } from '../train/distributedEnv.js';
import { packCorpus } from '../train/packCorpus.js';
import {
  beginStage, corpusInputs, inputUnchanged, readStageRecord, STAGE_RECORD_FILE, stageInput, writeStageRecord, type RecordedStage, type StageInput, type StageRecord,
} from '../stage/stageRecord.js';
import { ADAPTER_DIR, trainModel } from '../train/trainModel.js';
import { TRAIN_SPEC } from '../train/trainOptions.js';
import { trainEventDetail } from '../train/trainEventDetail.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { ADAPT_TRAIN_DEFAULTS, type AdaptRecipe } from './recipe.js';

export const STAGES = ['tokenizer', 'init', 'data', 'train', 'propagate', 'calibrate'] as const;
export type StageName = (typeof STAGES)[number];
/**
 * @deprecated Where adapt kept its note of each finished stage before the stage records carried its tag
 * (OUT/stages/<stage>.json). Read only to resume a run such a version started; see docs/migration.md.
 */
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
  /** The run's folder (OUT). */
  outDir: string;
  /** @deprecated the 0.1.0 name of `outDir` (docs/migration.md). */
  out: string;
  /** Stages run now (the others were already done). */
  ran: StageName[];
  /** Output model per propagation method (with several instruct models: the folder holding one per model). */
  models: Partial<Record<PropagateMethod, string>>;
  /** Output model per propagation method and instruct model (the recipe's paths), for every recipe. */
  targets: Partial<Record<PropagateMethod, { instruct: string; out: string }[]>>;
  /** Calibrated model per propagation method (recipes with a calibrate section). */
  calibrated: Partial<Record<PropagateMethod, string>>;
  /**
   * The records of each finished stage (one per folder: the tokenizer stage's donor and tokenizer, one
   * per propagated model, …), whether it ran now or before; empty for a stage a lep 0.1.0 run finished.
   */
  records: Partial<Record<StageName, StageRecord[]>>;
}

/** The tag adapt gives a stage's records (`tags.adapt`): the stage and the recipe section it ran with. */
interface AdaptTag {
  stage: StageName;
  options: unknown;
}

/** A value as sorted-key JSON, undefined left out: two tags are the same when these are equal. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x,
  ) ?? 'null';
}

/** Size and modification time of every file under `p` (a file or a directory): what legacy notes compared. */
function statFiles(p: string): [string, number, number][] {
  const st = statSync(p, { throwIfNoEntry: false });
  if (!st) return [];
  if (st.isDirectory()) return readdirSync(p).sort().flatMap((f) => statFiles(join(p, f)));
  return [[p, st.size, Math.round(st.mtimeMs)]];
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

/**
 * The note an earlier lep's adapt kept of a finished stage, when it says the stage ran with `options`:
 * OUT/stages/<stage>.json (its folders hold stage records without adapt's tag), or lep 0.1.0's
 * manifest.json inside the stage folder (no records: `recordless`). Those notes held the options adapt
 * now puts in its tag, plus `files`, the inputs' sizes and modification times, which must still hold.
 */
function readLegacyNote(out: string, name: StageName, dir: string, options: unknown): { recordless: boolean } | undefined {
  type Note = { stage?: unknown; options?: unknown; finished?: unknown };
  const matches = (note: Note | undefined): boolean => {
    if (note?.stage !== name || typeof note.finished !== 'string' || typeof note.options !== 'object' || note.options === null) return false;
    const { files, ...rest } = note.options as { files?: unknown };
    if (canonical(rest) !== canonical(options)) return false;
    // `files`: [path, size, mtime] triples (nested in lists); each must still describe its file.
    const triples: [string, number, number][] = [];
    const walk = (v: unknown): void => {
      if (!Array.isArray(v)) return;
      if (v.length === 3 && typeof v[0] === 'string' && typeof v[1] === 'number' && typeof v[2] === 'number') triples.push(v as [string, number, number]);
      else v.forEach(walk);
    };
    walk(files);
    return triples.every(([p, size, mtime]) => canonical(statFiles(p)) === canonical([[p, size, mtime]]));
  };
  if (matches(readJson(noteFile(out, name)) as Note | undefined)) return { recordless: false };
  // lep init's own manifest.json has a stage and options too, but no `finished`: only adapt's counts.
  if (matches(readJson(join(dir, MANIFEST_FILE)) as Note | undefined)) return { recordless: true };
  return undefined;
}

/** Folders that hold the record of one stage (what the stage's function records itself as). */
interface RecordSet {
  dirs: string[];
  stage: RecordedStage;
}

/**
 * The records in every folder of a stage, when each is a valid record of its stage (a stage that
 * finished writes it last) and, with `tag`, carries that tag and lists inputs that still have their
 * fingerprints; else undefined.
 */
async function finishedRecords(sets: readonly RecordSet[], tag?: AdaptTag): Promise<StageRecord[] | undefined> {
  const out: StageRecord[] = [];
  for (const { dirs, stage } of sets)
    for (const d of dirs) {
      let record: StageRecord;
      try {
        record = readStageRecord(d, stage);
      } catch {
        return undefined;
      }
      if (tag !== undefined) {
        if (canonical(record.tags?.adapt) !== canonical(tag)) return undefined;
        for (const input of record.inputs) if (!(await inputUnchanged(input))) return undefined;
      }
      out.push(record);
    }
  return out;
}

/** When the stage's record files were last written (absent ones count too): what a waiting rank polls. */
function recordsStamp(sets: readonly RecordSet[]): string {
  return sets.flatMap(({ dirs }) => dirs.map((d) => statSync(join(d, STAGE_RECORD_FILE), { throwIfNoEntry: false })?.mtimeMs ?? -1)).join(',');
}

/**
 * Removes a stage's folders. Each is first renamed aside, so that a rank waiting for this stage sees
 * either the old folder whole (its stale record) or none, never a half-removed one with checkpoints left.
 */
function removeDirs(dirs: readonly string[]): void {
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    const aside = `${d}.removing-${process.pid}`;
    renameSync(d, aside);
    rmSync(aside, { recursive: true, force: true });
  }
}

export async function adapt(recipe: AdaptRecipe, outDir: string, options: AdaptOptions = {}): Promise<AdaptResult> {
  const started = beginStage('adapt');
  const out = resolve(outDir);
  mkdirSync(out, { recursive: true });
  const r = recipe;
  const methods = r.propagate?.methods ?? [...PROPAGATE_METHODS];
  const result: AdaptResult = { outDir: out, out, ran: [], models: {}, targets: {}, calibrated: {}, records: {} };
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
   * Runs `body` unless the stage is done: its folders hold records tagged with these options and inputs
   * unchanged (or an earlier lep's note says so). `body` gets the tag to pass to the stage's function.
   */
  const stage = async (name: StageName, dirs: string[], stageOptions: unknown, records: readonly RecordSet[], body: (tags: { adapt: AdaptTag }) => Promise<unknown>): Promise<void> => {
    const dir = dirs[0]!;
    const tag: AdaptTag = { stage: name, options: stageOptions };
    if (follower) return follow(name, dir, tag, records, () => body({ adapt: tag }));
    const done = redoRest ? undefined : await doneRecords(name, dir, tag, records);
    if (done) {
      result.records[name] = done;
      report(name, 'done before, kept', 1);
      return;
    }
    // Options or inputs changed (or first run): this stage and every later one are redone. An unfinished
    // stage's folder stays: training resumes from its checkpoints (trainModel refuses ones made with
    // other options). A finished one, or one an earlier lep's note speaks for, goes.
    if (existsSync(join(dir, STAGE_RECORD_FILE)) || existsSync(noteFile(out, name)) || existsSync(join(dir, MANIFEST_FILE))) removeDirs(dirs);
    rmSync(noteFile(out, name), { force: true });
    redoRest = true;
    throwIfAborted(options.signal);
    const t0 = Date.now();
    report(name, 'started', 0);
    await body({ adapt: tag });
    result.records[name] = (await finishedRecords(records)) ?? [];
    result.ran.push(name);
    report(name, `done in ${((Date.now() - t0) / 1000).toFixed(1)} s`, 1);
  };

  /** A finished stage's records: tagged by this lep, or kept by an earlier lep's matching note (legacy). */
  const doneRecords = async (name: StageName, dir: string, tag: AdaptTag, records: readonly RecordSet[]): Promise<StageRecord[] | undefined> => {
    const tagged = await finishedRecords(records, tag);
    if (tagged) return tagged;
    const legacy = readLegacyNote(out, name, dir, tag.options);
    if (legacy?.recordless) return [];
    return legacy ? finishedRecords(records) : undefined;
  };

  /**
   * A rank other than 0: waits until rank 0 has finished a stage with these options (its records), and
   * trains with it; it never deletes or writes stage outputs. Before training, a stale training record
   * (other options) means rank 0 has yet to move that folder away: wait, so every rank resumes from the
   * same checkpoints.
   */
  const follow = async (name: StageName, dir: string, tag: AdaptTag, records: readonly RecordSet[], body: () => Promise<unknown>): Promise<void> => {
    if (name === 'propagate') return;
    let waited = false;
    // A record with this tag whose inputs changed stays until rank 0 reaches the stage and redoes it,
    // maybe hours later: its inputs (a model, a corpus) are fingerprinted again only when a record changes.
    let rejected: string | undefined;
    for (;;) {
      const stamp = recordsStamp(records);
      const done = stamp === rejected ? undefined : await doneRecords(name, dir, tag, records);
      if (done) {
        result.records[name] = done;
        return report(name, 'done by rank 0', 1);
      }
      rejected = stamp;
      if (name === 'train' && !existsSync(join(dir, STAGE_RECORD_FILE)) && !existsSync(noteFile(out, name))) break;
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
  // The corpus files' sizes: how far packing and shrinking have read (progress only).
  const corpusFiles = (typeof r.corpus.train === 'string' ? [r.corpus.train] : r.corpus.train).flatMap(statFiles);
  // The folders that hold the tokenizer stage's records: the trained tokenizer; or the donor that Extended
  // and Optimized train first, and the tokenizer that lep tokenizer extend or shrink makes with it.
  const tokRecords: RecordSet[] =
    t.kind === 'existing' ? [] : t.kind === 'train' ? [{ dirs: [tokDir], stage: 'tokenizer' }] : [{ dirs: [donorDir], stage: 'tokenizer' }, { dirs: [tokDir], stage: t.kind }];
  // The merge order as resolved, not as written: a run whose recipe left it unset was made under the
  // default of its day, and a changed default (new-first -> keep-ascii) must redo the tokenizer.
  const mergeOrder = t.kind === 'extend' || t.kind === 'shrink' ? (t.mergeOrder ?? DEFAULT_MERGE_ORDER) : undefined;
  const tokOptions = mergeOrder === undefined ? t : { ...t, mergeOrder };
  // An existing tokenizer is no stage of adapt's: nothing is made, and init's record lists it as an input.
  if (t.kind === 'existing') report('tokenizer', `the recipe's tokenizer ${tokDir}: nothing to make`, 1);
  else await stage('tokenizer', [join(out, 'tokenizer'), donorDir], { tokenizer: tokOptions, corpus: r.corpus, base: r.base }, tokRecords, async (tags) => {
    if (t.kind === 'train') return (await trainTokenizer(r.corpus.train, tokDir, { ...spm, like: instructs[0]!, tags })).stats;
    await trainTokenizer(r.corpus.train, donorDir, { ...spm, tags });
    if (t.kind === 'extend') return extendTokenizerDir(r.base, donorDir, tokDir, { mergeOrder, tags }).stats;
    const s = await shrinkTokenizerDir(r.base, tokDir, {
      keep: t.keep!,
      corpus: r.corpus.train,
      read: { normalize: r.corpus.normalize, script: r.corpus.script, maxChars: r.corpus.maxChars },
      donorDir,
      extend: { mergeOrder },
      tags,
      onProgress: (e) => {
        const at = corpusRead(e.bytes, corpusFiles, 'shrink');
        report('tokenizer', `shrink: base tokens counted on ${at.label}`, at.fraction, at.counts);
      },
    });
    return { shrink: s.shrink, extend: s.extend, size: s.size };
  });

  // 2. init: the base resized to the new tokenizer
  const initDir = join(out, 'init');
  await stage('init', [initDir], { tokenizer: tokDir, init: r.init ?? {} }, [{ dirs: [initDir], stage: 'init' }], async (tags) => {
    const res = await initEmbeddings(r.base, tokDir, initDir, { ...r.init, tags, signal: options.signal, onProgress: (e) => report('init', `${e.phase} ${e.done}/${e.total}`, undefined, { phase: e.phase, done: e.done, total: e.total }) });
    return { oldSize: res.oldSize, newSize: res.newSize, rows: res.rows, counts: res.counts, seconds: res.seconds };
  });

  // 3. data: training and evaluation blocks with the new tokenizer
  const dataDir = join(out, 'data');
  const trainData = join(dataDir, 'train.safetensors');
  const evalData = r.corpus.eval ? join(dataDir, 'eval.safetensors') : undefined;
  const evalBlocks = r.train.evalBlocks ?? ADAPT_TRAIN_DEFAULTS.evalBlocks;
  await stage('data', [dataDir], { corpus: r.corpus, seqLen: r.train.seqLen, evalBlocks }, [{ dirs: [dataDir], stage: 'data' }], async (tags) => {
    const dataStage = beginStage('data');
    mkdirSync(dataDir, { recursive: true });
    const read = { normalize: r.corpus.normalize, script: r.corpus.script, signal: options.signal };
    report('data', 'packing training text');
    const tr = await packCorpus(r.corpus.train, initDir, trainData, {
      seqLen: r.train.seqLen,
      maxChars: r.corpus.maxChars,
      ...read,
      onProgress: (e) => {
        const at = corpusRead(e.bytes, corpusFiles, 'packing');
        report('data', `packing training text: ${at.label}`, at.fraction, at.counts);
      },
    });
    const ev = r.corpus.eval ? await packCorpus(r.corpus.eval, initDir, evalData!, { seqLen: r.train.seqLen, maxBlocks: evalBlocks, ...read }) : undefined;
    // Packing has no command of its own: adapt records this stage itself.
    writeStageRecord(dataDir, dataStage, {
      inputs: [...(await corpusInputs('corpus', r.corpus.train)), ...(r.corpus.eval ? await corpusInputs('evalCorpus', r.corpus.eval) : []), stageInput('tokenizer', initDir)],
      resolved: { seqLen: r.train.seqLen, evalBlocks, normalize: r.corpus.normalize, script: r.corpus.script, maxChars: r.corpus.maxChars },
      result: { train: tr, eval: ev },
      tags,
    });
    return { train: tr, eval: ev };
  });

  // 4. embedding-only training of the resized base
  const trainDir = join(out, 'train');
  const { seqLen: _seqLen, newRowsOnly, evalBlocks: _evalBlocks, ...trainOptions } = r.train;
  await stage('train', [trainDir], { train: r.train }, [{ dirs: [trainDir], stage: 'train' }], async (tags) => {
    const steps = trainOptions.steps ?? TRAIN_SPEC.steps.default;  // the spec's default: one source
    const res = await trainModel(initDir, trainDir, {
      ...trainOptions,
      data: trainData,
      evalData,
      // With train.lora: LoRA + embeddings and head (modules to save) in one run, as the authors' later CPT.
      params: trainOptions.lora ? 'lora' : 'embeddings',
      ...(trainOptions.lora ? { lora: { modulesToSave: ['embed_tokens', 'lm_head'], ...trainOptions.lora } } : {}),
      ...(newRowsOnly ? { rows: newRowIds(initDir, 'recipe.train.newRowsOnly') } : {}),
      checkpointEvery: trainOptions.checkpointEvery ?? Math.max(1, Math.ceil(steps / 10)),
      tags,
      signal: options.signal,
      // A run stopped in this stage goes on from its newest checkpoint: said, as lep train says it.
      onResume: (checkpoint, step) => report('train', `resuming from ${checkpoint} (step ${step} of ${steps})`),
      onProgress: (e) => {
        if (e.phase === 'train') report('train', trainEventDetail(e), e.done / e.total, { phase: 'train', done: e.done, total: e.total });
        if (e.phase === 'eval') report('train', trainEventDetail(e));
      },
    });
    return res;
  });

  // 5. propagation into the instruct model, one output per method
  const propDirs = methods.map((m) => join(out, `propagate-${m}`));
  // Each output model holds its record: OUT/propagate-<method>, or with several instruct models one folder per model in it.
  const propRecords = { dirs: propDirs.flatMap((d) => (many ? instructs.map((i) => join(d, basename(i))) : [d])), stage: 'propagate' } as const;
  await stage('propagate', propDirs, { methods, solver: r.propagate?.solver, keepOverlapRows: r.propagate?.keepOverlapRows, alphaScale: r.propagate?.alphaScale, instruct: r.instruct }, [propRecords], async (tags) => {
    // Every method in one job: overlap and conversion accumulate the rows they share once (propagate.ts).
    const phases = { correlation: 'correlating base and instruct', solve: 'solving', apply: 'applying the maps', write: 'writing' } as const;
    let shown = '';
    let shownAt = 0;
    const all = await propagateMethods(
      {
        base: r.base, donor: trainDir, instruct: many ? instructs : instructs[0]!, solver: r.propagate?.solver, device: r.propagate?.device, keepOverlapRows: r.propagate?.keepOverlapRows, tags, signal: options.signal,
        ...(r.train.lora ? { lora: join(trainDir, ADAPTER_DIR), alphaScale: r.propagate?.alphaScale } : {}),
        onProgress: (e) => {
          if (!(e.phase in phases)) return;
          // One line per pass (phase, side, output), then at most one every 2 s (a 7B job's solve takes
          // minutes). Each pass is its own progress phase, so its ETA counts its own rows. The job's
          // targets are the methods' outputs in order, one per instruct model.
          const target = 'target' in e && e.target !== undefined ? e.target : undefined;
          const of = target === undefined ? methods.join(' + ') : `${methods[Math.floor(target / instructs.length)]}${many ? ` ${basename(instructs[target % instructs.length]!)}` : ''}`;
          const side = 'side' in e ? (e.side === 1 ? ' (output side)' : ' (input side)') : '';
          const what = `${phases[e.phase as keyof typeof phases]}${side}, ${of}`;
          if (what === shown && e.done < e.total && performance.now() - shownAt < 2000) return;
          shown = what;
          shownAt = performance.now();
          report('propagate', `${what} ${Math.round((100 * e.done) / Math.max(1, e.total))}%`, undefined, { phase: `${e.phase}${side}, ${of}`, done: e.done, total: e.total });
        },
      },
      methods.map((method, i) => ({ method, out: propDirs[i]! })),
    );
    const reports: Record<string, unknown> = {};
    for (const [i, method] of methods.entries()) {
      const one = all[i]!;
      const results = 'results' in one ? one.results : [one];
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
    await stage('calibrate', calDirs, { calibrate: c }, [{ dirs: calDirs, stage: 'calibrate' }], async (tags) => {
      const reports: Record<string, unknown> = {};
      for (const [i, method] of calMethods.entries()) {
        report('calibrate', `${method} (${i + 1}/${calMethods.length})`, i / calMethods.length, { phase: 'methods', done: i, total: calMethods.length });
        const res = await calibrate(result.models[method]!, calDirs[i]!, {
          ...rest,
          original: instructs[0]!,
          workDir: work,
          tags,
          signal: options.signal,
          // Half the stage for the original model's answers, half for training (progress and ETA only).
          onAnswers: (e) => report('calibrate', `${method}: answers ${e.done}/${e.total}`, (i + (0.5 * e.done) / Math.max(1, e.total)) / calMethods.length, { phase: 'answers', done: e.done, total: e.total }),
          onProgress: (e) => {
            if (e.phase === 'train') report('calibrate', `${method}: ${trainEventDetail(e)}`, (i + 0.5 + (0.5 * e.done) / e.total) / calMethods.length, { phase: 'train', done: e.done, total: e.total });
          },
        });
        reports[method] = { examples: res.examples, blocks: res.blocks, steps: res.train.stepsDone, lastLoss: res.train.lastLoss };
      }
      return reports;
    });
    for (const [i, m] of calMethods.entries()) result.calibrated[m] = calDirs[i]!;
  }
  // Notes an earlier lep kept (OUT/stages): gone once every stage they spoke for is redone.
  if (existsSync(join(out, STAGE_NOTES_DIR)) && readdirSync(join(out, STAGE_NOTES_DIR)).length === 0) rmdirSync(join(out, STAGE_NOTES_DIR));
  await writeAdaptRecord(out, started, r, { ...result, recordDirs: { tokenizer: tokRecords.flatMap((s) => s.dirs), init: [initDir], data: [dataDir], train: [trainDir], propagate: propRecords.dirs, calibrate: Object.values(result.calibrated) } });
  return result;
}

/**
 * The record of the whole run (stage `adapt`) in OUT, written last: the recipe's inputs with
 * fingerprints, the recipe, and where each stage's own record is (paths relative to OUT).
 */
async function writeAdaptRecord(out: string, start: ReturnType<typeof beginStage>, r: AdaptRecipe, res: AdaptResult & { recordDirs: Partial<Record<StageName, string[]>> }): Promise<void> {
  const { recordDirs, records: _r, ...rest } = res;
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
