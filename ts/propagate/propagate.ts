/**
 * Learned Embedding Propagation (docs/method.md §4): carries the donor's embeddings (trained on the base model
 * with a new vocabulary) into an instruct model derived from that base.
 *
 *   1. read and check the three models (`checkInputs.ts`): architectures, hidden sizes, tensors, tokenizers;
 *   2. relate the donor's vocabulary to the base's by decoded string (`vocabularyMap.ts`): the averaging
 *      map T (conversion) and the overlap set C (overlap; cosines for every method);
 *   3. build the final tokenizer (`finalTokenizer.ts`): donor vocabulary + the instruct model's added
 *      tokens, special-token map and chat template; which rows are copied from the instruct model;
 *   4. one native job: float64 least squares per side, new embedding rows, the instruct checkpoint
 *      rewritten with them (cpp/core/propagate.h);
 *   5. config.json (new vocab_size), tokenizer files, `propagate_report.json` beside the weights, and last
 *      the stage record `lep-stage.json` (stage/stageRecord.ts).
 *
 * Several instruct models derived from the same base (`instruct: [A, B, …]`) go through one job: the
 * models are read and checked once, the vocabulary map is built once, and the native job builds the base
 * side of every system (and, with the normal-equations solver, its Gram matrix and Cholesky factor) once
 * (cpp/core/propagate.h). Each instruct model gets its own final tokenizer, residuals, overlap cosines,
 * correlation and report, and its own output directory, put in place as a whole; a target that fails
 * leaves the ones written before it in place, and the error says which were written.
 *
 * Several methods (`propagateMethods`, what `lep adapt` runs) go through one job too: overlap's system is
 * made of conversion's identity rows, so the rows the two share are accumulated once
 * (cpp/core/propagate.h), and each instruct model is read once.
 */
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { asErrorCode } from '../errorCodes.js';
import { getNative } from '../binding/loadNative.js';
import type { NativePropagateManyOptions, NativePropagateManyReport, NativePropagateSide, NativePropagateTarget, NativePropagateTargetReport } from '../binding/NativeTypes.js';
import { LepModel } from '../model/LepModel.js';
import { abortedError, runJob, type JobOptions } from '../binding/runJob.js';
import { checkAlphaScale, mergeAdapterInto, readAdapterConfig } from '../lora/peftAdapter.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { openDirAtomic, type PendingDir } from '../util/writeDirAtomic.js';
import { beginStage, stageInput, writeStageRecord, type StageStart, type StageTagOptions } from '../stage/stageRecord.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { checkFamily, readPropagateModel, type PropagateModel } from './checkInputs.js';
import { readModelDir, storedDtype } from '../checkpoint/modelDir.js';
import { configWithDtype } from '../checkpoint/saveModelDir.js';
import { buildFinalTokenizer } from './finalTokenizer.js';
import { buildVocabularyMap } from './vocabularyMap.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { PROPAGATE_SPEC } from './propagateOptions.js';

export { PROPAGATE_METHODS, LSTSQ_SOLVERS, type PropagateMethod, type LstsqSolverName } from './propagateOptions.js';
import { PROPAGATE_METHODS, type LstsqSolverName, type PropagateMethod } from './propagateOptions.js';
/** The paper's best method. */
export const DEFAULT_PROPAGATE_METHOD = PROPAGATE_SPEC.method.default;
export const DEFAULT_LSTSQ_SOLVER = PROPAGATE_SPEC.solver.default;
export const DEFAULT_PROPAGATE_CHUNK_ROWS = PROPAGATE_SPEC.chunkRows.default;
export const DEFAULT_PROPAGATE_MAX_SHARD_BYTES = PROPAGATE_SPEC.maxShardBytes.default;
export const DEFAULT_MIN_CORRELATION = PROPAGATE_SPEC.minCorrelation.default;
export const PROPAGATE_REPORT_FILE = 'propagate_report.json';

/** The propagation options: PROPAGATE_SPEC (propagateOptions.ts) gives each one's type, bounds, default and doc. */
export type PropagateOptions = OptionsOf<typeof PROPAGATE_SPEC> &
  JobOptions &
  StageTagOptions & {
    /**
     * The instruct model derived from the base (`--instruct`), or several (repeat `--instruct`): one job
     * reads the base and donor and solves the base side once for all of them.
     */
    instruct: string | readonly string[];
    /**
     * Output model directory (`--out`); must differ from the inputs. With several instruct models: one
     * directory `DIR`, written as `DIR/<instruct folder name>` per model (the names must differ), or one
     * directory per instruct model, in the same order (repeat `--out`).
     */
    out: string | readonly string[];
    /** Called with each warning as it arises (they are also in the result). Defaults to none. */
    onWarning?: (message: string) => void;
  };

export interface PropagateSideResult extends NativePropagateSide {
  /** Warnings about this side (low base/instruct correlation, rank-deficient system). */
  warnings: string[];
}

export interface PropagateResult {
  /** The propagated model's directory. */
  outDir: string;
  /** @deprecated the 0.1.0 name of `outDir` (docs/migration.md). */
  out: string;
  /** The instruct model this output was propagated into. */
  instruct: string;
  method: PropagateMethod;
  solver: LstsqSolverName;
  sides: PropagateSideResult[];
  vocabulary: {
    oldSize: number;
    donorSize: number;
    finalSize: number;
    /** Embedding rows written (≥ finalSize when the donor matrix is padded). */
    rows: number;
    overlapTokens: number;
    averaging: { identityRows: number; averagedRows: number; emptyRows: number; entries: number };
    copiedRows: number;
    appendedTokens: string[];
  };
  hiddenSize: number;
  dtype: string;
  warnings: string[];
  /** The body LoRA merged into this model (PropagateOptions.lora): adapter, rank, alpha, alpha scale, merged scale (alpha / S / r). */
  lora?: Record<string, unknown>;
  /**
   * prepareSeconds: reading and checking the models, tokenizer maps (shared by every instruct model of a
   * call); nativeSeconds: the whole native job; writeSeconds: writing this model's checkpoint.
   */
  timings: { prepareSeconds: number; nativeSeconds: number; writeSeconds: number; totalSeconds: number };
  files: string[];
}

/** `propagate` with several instruct models: one result per model, in the order given. */
export interface PropagateManyResult {
  results: PropagateResult[];
  timings: {
    prepareSeconds: number;
    /** The native job's shared part: mapping the models, every correlation pass and least-squares solve. */
    sharedSeconds: number;
    nativeSeconds: number;
    totalSeconds: number;
  };
}

interface Target {
  method: PropagateMethod;
  instruct: string;
  out: string;
  /** The flag the output came from, for errors. */
  outFlag: string;
}

/** One method of `propagateMethods` and where its outputs go (the forms of PropagateOptions.out). */
export interface PropagateRun {
  method: PropagateMethod;
  out: string | readonly string[];
}

/** Pairs each instruct model with its output directory for one method (see PropagateOptions.out). */
function resolveTargets(o: Pick<PropagateOptions, 'instruct' | 'out'>, method: PropagateMethod): Target[] {
  const list = typeof o.instruct === 'string' ? [o.instruct] : o.instruct;
  if (!Array.isArray(list) || list.length === 0 || list.some((x) => typeof x !== 'string' || x === ''))
    throw optionError('instruct', 'a directory path or a non-empty list of them', o.instruct, '--instruct');
  if (typeof o.instruct === 'string') {
    if (typeof o.out !== 'string' || o.out === '') throw optionError('out', 'a directory path', o.out, '--out');
    return [{ method, instruct: o.instruct, out: resolve(o.out), outFlag: '--out' }];
  }
  let targets: Target[];
  if (typeof o.out === 'string' && o.out !== '') {
    targets = list.map((instruct) => ({ method, instruct, out: resolve(o.out as string, basename(resolve(instruct))), outFlag: '--out' }));
    const names = targets.map((t) => basename(t.out));
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined)
      throw new LepError(
        'LEP_BAD_OPTION',
        `two instruct models (--instruct) have the folder name "${dup}", so --out ${o.out} would hold both as ${join(o.out, dup)}` +
          '\nHINT: give one --out per --instruct, in the same order (each is that model\'s output directory).',
      );
  } else if (Array.isArray(o.out) && o.out.length === list.length && o.out.every((x) => typeof x === 'string' && x !== '')) {
    targets = list.map((instruct, i) => ({ method, instruct, out: resolve(o.out[i] as string), outFlag: `--out (#${i + 1})` }));
    const outs = targets.map((t) => t.out);
    const dup = outs.find((x, i) => outs.indexOf(x) !== i);
    if (dup !== undefined) throw new LepError('LEP_BAD_OPTION', `two instruct models would be written to ${dup}\nHINT: give each --instruct its own --out.`);
  } else {
    throw optionError('out', `one directory (outputs DIR/<instruct name>) or ${list.length} directories, one per instruct model`, o.out, '--out');
  }
  return targets;
}

function resolveOptions(options: Omit<PropagateOptions, 'method' | 'out'>, runs: readonly PropagateRun[]) {
  checkOptions(PROPAGATE_SPEC, options, { kind: 'options' }, ['instruct', 'out', 'onWarning', 'signal', 'onProgress', 'tags']);
  const o = withDefaults(PROPAGATE_SPEC, options);
  const { solver, chunkRows, maxShardBytes, minCorrelation, device } = o;
  if (o.alphaScale !== undefined && o.lora === undefined) throw optionError('alphaScale', 'no alpha scale without a LoRA adapter (--lora)', o.alphaScale, '--alpha-scale', 'the scale divides the merged adapter\'s lora_alpha: give the adapter with --lora, or drop --alpha-scale.');
  const alphaScale = checkAlphaScale(o.alphaScale);
  if (o.lora !== undefined && (typeof o.lora !== 'string' || o.lora === '')) throw optionError('lora', 'a PEFT adapter directory', o.lora, '--lora');
  const lora = o.lora === undefined ? undefined : readAdapterConfig(o.lora);  // a bad adapter fails before any work
  if (runs.length === 0) throw optionError('method', 'at least one propagation method', [], '--method');
  for (const r of runs) if (!PROPAGATE_METHODS.includes(r.method)) throw optionError('method', PROPAGATE_METHODS.join(' | '), r.method, '--method');
  if (new Set(runs.map((r) => r.method)).size !== runs.length) throw optionError('method', 'each method once', runs.map((r) => r.method).join(', '), '--method');
  // runs[i]'s targets are targets.slice(i * n, (i + 1) * n), n instruct models each.
  const targets = runs.flatMap((r) => resolveTargets({ instruct: o.instruct, out: r.out }, r.method));
  const instructs = targets.map((t) => t.instruct);
  for (const t of targets) checkOutputPath(t.out, t.outFlag, { '--base': o.base, '--donor': o.donor, '--instruct': instructs, '--lora': o.lora });
  const outs = targets.map((t) => t.out);
  const dup = outs.find((x, i) => outs.indexOf(x) !== i);
  if (dup !== undefined) throw new LepError('LEP_BAD_OPTION', `two propagation methods would be written to ${dup}\nHINT: give each method its own output directory.`);
  return { solver, chunkRows, maxShardBytes, minCorrelation, device, targets, lora, alphaScale };
}

/** One instruct model's share of the job: its tokenizer, copied rows, output rows. */
function planTarget(instruct: PropagateModel, donor: PropagateModel, map: Awaited<ReturnType<typeof buildVocabularyMap>>, keepOverlapRows: boolean) {
  const final = buildFinalTokenizer(donor.tokenizer, instruct.tokenizer);
  const rows = Math.max(donor.rows, final.size);
  // Rows copied unprojected from the instruct model: added/special tokens by string, and with
  // keepOverlapRows every overlap token (its old id is the instruct model's id for the same piece).
  const copyPairs: [number, number][] = [...final.copyRows];
  if (keepOverlapRows) {
    const taken = new Set(copyPairs.map(([to]) => to));
    for (let i = 0; i < map.overlap.newIds.length; i++)
      if (!taken.has(map.overlap.newIds[i]!) && map.overlap.oldIds[i]! < instruct.rows) copyPairs.push([map.overlap.newIds[i]!, map.overlap.oldIds[i]!]);
  }
  return { final, rows, copyPairs };
}

/**
 * Propagates `donor`'s embeddings into `instruct` and writes the result to `out` (see the module doc).
 * With a list of instruct models, writes one output per model and returns their results together.
 */
export async function propagate(options: PropagateOptions & { instruct: string }): Promise<PropagateResult>;
export async function propagate(options: PropagateOptions & { instruct: readonly string[] }): Promise<PropagateManyResult>;
export async function propagate(options: PropagateOptions): Promise<PropagateResult | PropagateManyResult>;
export async function propagate(options: PropagateOptions): Promise<PropagateResult | PropagateManyResult> {
  if (typeof options !== 'object' || options === null) throw optionError('options', 'an object', options);
  const { method, out, ...rest } = options;
  return (await propagateMethods(rest, [{ method: method ?? DEFAULT_PROPAGATE_METHOD, out }]))[0]!;
}

/**
 * `propagate` for several methods at once, in one native job (see the module doc): `runs` gives each
 * method and its outputs (`out`'s forms). Returns one result per run, in order, as `propagate` returns for
 * that method alone. A failure of any output rejects the call; the other outputs are still written and
 * stay, and the error names the written and the failed ones (a method whose system cannot be solved fails
 * only its own outputs).
 */
export async function propagateMethods(options: Omit<PropagateOptions, 'method' | 'out'>, runs: readonly PropagateRun[]): Promise<(PropagateResult | PropagateManyResult)[]> {
  const t0 = performance.now();
  const stage = beginStage('propagate');
  const o = resolveOptions(options, runs);
  const single = typeof options.instruct === 'string';
  const base = readPropagateModel('base', options.base);
  const donor = readPropagateModel('donor', options.donor);
  // Every instruct model is read and checked before any work: a bad second model fails the call at once.
  const perRun = single ? 1 : options.instruct.length;
  const instructs = o.targets.slice(0, perRun).map((t) => readPropagateModel('instruct', t.instruct));
  for (const inst of instructs) checkFamily(base, donor, inst);

  const map = await buildVocabularyMap(base.tokenizer, donor.tokenizer);
  const plans = instructs.map((inst) => planTarget(inst, donor, map, options.keepOverlapRows ?? false));
  const t1 = performance.now();

  // Each output is built aside and renamed into place: a killed propagate leaves no directory that looks finished.
  const pending: PendingDir[] = [];
  try {
    for (const t of o.targets) pending.push(openDirAtomic(t.out, t.outFlag));
    const nativeTargets: NativePropagateTarget[] = o.targets.map((t, i) => {
      const p = plans[i % perRun]!;
      return {
        method: t.method,
        instructFiles: instructs[i % perRun]!.weightFiles,
        copyTo: Int32Array.from(p.copyPairs.map(([to]) => to)),
        copyFrom: Int32Array.from(p.copyPairs.map(([, from]) => from)),
        outRows: p.rows,
        outDir: pending[i]!.dir,
      };
    });
    const report = await runPropagateJob(
      {
        method: runs[0]!.method,  // each target names its own
        solver: o.solver,
        baseFiles: base.weightFiles,
        donorFiles: donor.weightFiles,
        ...(runs.some((r) => r.method === 'conversion') ? { tOffsets: map.averaging.offsets.subarray(0, donor.rows + 1), tIndices: map.averaging.indices } : {}),
        overlapNew: map.overlap.newIds,
        overlapOld: map.overlap.oldIds,
        maxShardBytes: o.maxShardBytes,
        chunkRows: o.chunkRows,
        device: o.device,
        targets: nativeTargets,
      },
      options,
    );
    const t2 = performance.now();

    // Finish and put in place each target the job wrote; one that fails here leaves the others.
    const results: (PropagateResult | undefined)[] = [];
    const failures: { index: number; code: string; message: string }[] = [];
    for (const [i, t] of o.targets.entries()) {
      const native = report.targets[i]!;
      if (native.error) {
        failures.push({ index: i, ...native.error });
        results.push(undefined);
        continue;
      }
      try {
        // `all`: this method's instruct models (the stage record's batch).
        const all = o.targets.filter((x) => x.method === t.method);
        const ctx = { options, o, t, base, donor, instruct: instructs[i % perRun]!, map, plan: plans[i % perRun]!, all, times: { t0, t1, t2 }, stage };
        results.push(await finishTarget(ctx, native, report, pending[i]!.dir));
        pending[i]!.commit();
      } catch (e) {
        failures.push({ index: i, code: (e as LepError).code ?? 'LEP_WRITE_FAILED', message: (e as Error).message });
        results.push(undefined);
      }
    }
    if (failures.length) throw partialFailure(o.targets, results, failures, o.targets.length === 1, runs.length > 1, options.signal);
    const done = results as PropagateResult[];
    return runs.map((_, r) => {
      const mine = done.slice(r * perRun, (r + 1) * perRun);
      if (single) return mine[0]!;
      return {
        results: mine,
        timings: { prepareSeconds: (t1 - t0) / 1000, sharedSeconds: report.sharedSeconds, nativeSeconds: (t2 - t1) / 1000, totalSeconds: (performance.now() - t0) / 1000 },
      };
    });
  } finally {
    for (const p of pending) p.abandon();
  }
}

/**
 * Runs the native job. An abort does not discard the report (runJob's keepPartial): targets written before
 * the abort are kept (their reports say so), the rest carry LEP_ABORTED / LEP_NOT_RUN; partialFailure then
 * rejects with LEP_ABORTED.
 */
function runPropagateJob(spec: NativePropagateManyOptions, options: JobOptions): Promise<NativePropagateManyReport> {
  return runJob((p) => getNative().propagate(spec, p), options, true);
}

/** The error for a call where some targets were not written: names those written, and why the others were not. */
function partialFailure(
  targets: Target[],
  results: (PropagateResult | undefined)[],
  failures: { index: number; code: string; message: string }[],
  single: boolean,
  methods: boolean,
  signal: AbortSignal | undefined,
): unknown {
  if (single) {
    const err = new LepError(asErrorCode(failures[0]!.code), failures[0]!.message);
    return signal?.aborted ? abortedError(signal, err) : err;
  }
  // With several methods each output is named by its method too.
  const what = (i: number): string => `${methods ? `${targets[i]!.method} ` : ''}${targets[i]!.instruct}`;
  const written = results.flatMap((r, i) => (r ? [`${what(i)} -> ${r.outDir}`] : []));
  const first = failures.find((f) => f.code !== 'LEP_NOT_RUN') ?? failures[0]!;
  // Each failure's own HINT once, after the list (targets failing alike repeated it in every line).
  const hints: string[] = [];
  const lines = failures.map((f) => {
    if (f.code === 'LEP_NOT_RUN') return `  ${what(f.index)} -> ${targets[f.index]!.out}: not run (an earlier target was aborted)`;
    const [text, ...hint] = f.message.split('\nHINT: ');
    for (const h of hint) if (!hints.includes(h)) hints.push(h);
    return `  ${what(f.index)} -> ${targets[f.index]!.out}: ${f.code}: ${text}`;
  });
  return new LepError(
    signal?.aborted ? 'LEP_ABORTED' : asErrorCode(first.code),
    `propagate wrote ${written.length} of ${targets.length} ${methods ? 'outputs (method, instruct model)' : 'instruct models'}` +
      (written.length ? ` (complete: ${written.join(', ')})` : '') +
      `; not written:\n${lines.join('\n')}` +
      `\nHINT: ${hints.map((h) => `${h.replace(/\.$/, '')}; `).join('')}the written outputs are complete: fix the cause and run again ` +
      `(lep adapt: the same command, which skips what is done; lep propagate: only the ${methods ? 'methods and instruct models' : 'instruct models'} not written).`,
    signal?.aborted ? { cause: signal.reason } : undefined,
  );
}

interface TargetContext {
  options: Omit<PropagateOptions, 'method' | 'out'>;
  o: ReturnType<typeof resolveOptions>;
  t: Target;
  base: PropagateModel;
  donor: PropagateModel;
  instruct: PropagateModel;
  map: Awaited<ReturnType<typeof buildVocabularyMap>>;
  plan: ReturnType<typeof planTarget>;
  all: Target[];
  times: { t0: number; t1: number; t2: number };
  stage: StageStart;
}

/**
 * Merges the body LoRA of `options.lora` into the propagated model in `dir` (see PropagateOptions.lora):
 * loads it, merges with alpha / S, and puts the merged weights in place of the written ones. Returns the
 * weight files now in `dir` and the merged adapter's settings.
 */
async function mergeLoraInto(dir: string, oldFiles: string[], c: TargetContext): Promise<{ files: string[]; lora: Record<string, unknown> }> {
  // Loaded in the dtype it is written in (bf16: the same bits as through a float32 load, half the memory; see mergeAdapter).
  const dtype = storedDtype(readModelDir(dir).rawConfig);
  const model = await LepModel.load(dir, { dtype, signal: c.options.signal });
  try {
    const scaled = await mergeAdapterInto(model, c.options.lora!, { alphaScale: c.o.alphaScale, skipModulesToSave: true, signal: c.options.signal });
    const sub = join(dir, 'lora-merged');  // inside the temporary output: removed with it if anything fails
    const files = await runJob((p) => model.native.save({ dir: sub, dtype, maxShardBytes: c.o.maxShardBytes }, p), { signal: c.options.signal });
    for (const f of oldFiles) rmSync(join(dir, f), { force: true });
    for (const f of files) renameSync(join(sub, f), join(dir, f));
    rmSync(sub, { recursive: true, force: true });
    // The merged weights are stored in `dtype` (f32 for an f16 instruct model): config.json says so.
    writeJsonAtomic(join(dir, 'config.json'), configWithDtype(model.dir.rawConfig, dtype));
    const l = c.o.lora!;
    return { files, lora: { adapter: resolve(c.options.lora!), rank: l.rank, alpha: l.alpha, alphaScale: c.o.alphaScale, mergedScale: scaled.alpha / l.rank, targets: l.targets, layers: l.layers, modulesToSaveSkipped: l.modulesToSave } };
  } finally {
    model.dispose();
  }
}

/** Writes config, tokenizer and report files beside one target's checkpoint in `dir`; returns its result. */
async function finishTarget(c: TargetContext, native: NativePropagateTargetReport, report: NativePropagateManyReport, dir: string): Promise<PropagateResult> {
  const { options, o, t, instruct, map, plan } = c;
  const warnings: string[] = [];
  const warn = (m: string): string => {
    warnings.push(m);
    options.onWarning?.(m);
    return m;
  };
  const sides: PropagateSideResult[] = native.sides.map((s) => {
    const w: string[] = [];
    if (s.baseInstructCorrelation < o.minCorrelation)
      w.push(
        warn(
          `the base and instruct ${s.tensor} correlate at only ${s.baseInstructCorrelation.toFixed(3)} (below ${o.minCorrelation}): ` +
            `the instruct model ${t.instruct} looks unrelated to the base ${options.base}, and propagation assumes it was fine-tuned from it` +
            '\nHINT: pass the base the instruct model was derived from (--base), or lower --min-correlation if this is intended.',
        ),
      );
    if (s.solverFellBack) w.push(warn(`the ${s.side} least-squares system is rank-deficient; it was solved with a rank-revealing lstsq`));
    return { ...s, warnings: w };
  });

  // Model directory files around the weights: config.json, tokenizer, generation config.
  writeJsonAtomic(join(dir, 'config.json'), { ...instruct.model!.rawConfig, vocab_size: plan.rows });
  writeJsonAtomic(join(dir, 'tokenizer.json'), plan.final.json);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), plan.final.config);
  for (const f of ['special_tokens_map.json', 'generation_config.json', 'chat_template.jinja'])
    if (existsSync(join(t.instruct, f))) copyFileSync(join(t.instruct, f), join(dir, f));
  // tokenizer.model (SentencePiece) must describe the final vocabulary: the donor's, if it has one.
  if (existsSync(join(options.donor, 'tokenizer.model'))) copyFileSync(join(options.donor, 'tokenizer.model'), join(dir, 'tokenizer.model'));
  const merged = c.o.lora ? await mergeLoraInto(dir, native.files, c) : undefined;
  const t3 = performance.now();

  const result: PropagateResult = {
    outDir: t.out,
    out: t.out,
    instruct: t.instruct,
    method: t.method,
    solver: o.solver,
    sides,
    vocabulary: {
      oldSize: c.base.tokenizer.size,
      donorSize: c.donor.tokenizer.size,
      finalSize: plan.final.size,
      rows: plan.rows,
      overlapTokens: map.overlap.newIds.length,
      averaging: {
        identityRows: map.averaging.identityRows,
        averagedRows: map.averaging.averagedRows,
        emptyRows: map.averaging.emptyRows,
        entries: map.averaging.indices.length,
      },
      copiedRows: plan.copyPairs.length,
      appendedTokens: plan.final.appended,
    },
    hiddenSize: report.hiddenSize,
    dtype: native.dtype,
    warnings,
    timings: {
      prepareSeconds: (c.times.t1 - c.times.t0) / 1000,
      nativeSeconds: (c.times.t2 - c.times.t1) / 1000,
      writeSeconds: native.writeSeconds,
      totalSeconds: (t3 - c.times.t0) / 1000,
    },
    files: [...(merged?.files ?? native.files), 'config.json', 'tokenizer.json', 'tokenizer_config.json'],
    ...(merged ? { lora: merged.lora } : {}),
  };
  const resolved = { method: t.method, solver: o.solver, chunkRows: o.chunkRows, maxShardBytes: o.maxShardBytes, device: o.device, minCorrelation: o.minCorrelation, keepOverlapRows: options.keepOverlapRows ?? false, ...(o.lora ? { lora: resolve(options.lora!), alphaScale: o.alphaScale } : {}) };
  // The other instruct models of the same call (their base side was solved together with this one's).
  const batch = c.all.length > 1 ? { batch: c.all.map((x) => ({ instruct: resolve(x.instruct), out: x.out })) } : {};
  writeJsonAtomic(join(dir, PROPAGATE_REPORT_FILE), {
    inputs: { base: resolve(options.base), donor: resolve(options.donor), instruct: resolve(t.instruct) },
    options: resolved,
    ...batch,
    ...result,
  });
  // Last: the stage record of this target (its directory is then renamed into place as a whole).
  writeStageRecord(dir, c.stage, {
    inputs: [
      stageInput('base', options.base),
      stageInput('donor', options.donor),
      stageInput('instruct', t.instruct),
      ...(options.lora !== undefined ? [stageInput('lora', options.lora)] : []),
    ],
    resolved: { base: resolve(options.base), donor: resolve(options.donor), instruct: resolve(t.instruct), out: t.out, ...resolved, ...batch },
    result,
    tags: options.tags,
  });
  return result;
}
