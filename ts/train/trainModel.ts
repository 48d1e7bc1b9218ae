/**
 * `lep train`: causal-LM training of a model directory over packed blocks, on the native engine.
 * Writes into the output directory: checkpoints/step-N (atomic), train.log (one greppable line per
 * report step), train-config.json (the resolved options, read when a run resumes), the final model in HF
 * layout, and last the stage record `lep-stage.json` (stage/stageRecord.ts), removed when a run starts.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { callNative, LepError, optionError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import type { JobProgress } from '../binding/progress.js';
import { readModelDir, storedDtype } from '../checkpoint/modelDir.js';
import { writeModelFiles } from '../checkpoint/saveModelDir.js';
import { inspectSafetensors, readSafetensors } from '../checkpoint/safetensors.js';
import { writeEmbeddingPatch } from '../init/embeddingPatch.js';
import { newRowIds } from '../init/provenance.js';
import { LepModel } from '../model/LepModel.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { checkBlocksVocabulary } from './packBlocks.js';
import { runJob, throwIfAborted, type JobOptions } from '../binding/runJob.js';
import { beginStage, STAGE_RECORD_FILE, stageInput, writeStageRecord, type StageStart, type StageTagOptions } from '../stage/stageRecord.js';
import { withPath, writeJsonAtomic } from '../util/atomicWrite.js';
import { makeDirs } from '../util/makeDirs.js';
import { lockOutputDir } from '../util/outputLock.js';
import { removeOrphanTemps, tempPathFor, trackTemp, trackTempsIn, untrackTemp, untrackTempsIn } from '../util/tempPaths.js';
import { resolveLora, type LoraOptions } from '../lora/loraOptions.js';
import { saveAdapter } from '../lora/peftAdapter.js';
import { fileFingerprint, modelFingerprint } from '../stage/inputFingerprint.js';
import { readDistributedEnv, type DistributedEnv, type GradSync } from './distributedEnv.js';
import { checkOptions, defaultsOf, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { TRAIN_SPEC } from './trainOptions.js';
import { checkTrainDiskSpace } from './trainDisk.js';
import { CHECKPOINTS_DIR, incompleteCheckpoints, latestCheckpoint } from './checkpointDirs.js';
import { checkReplaceable } from '../util/writeDirAtomic.js';
import { checkTrainMemory, type TrainBatch } from './trainMemory.js';
import { checkBesideModels, checkOutputPath, type WrittenInto } from '../util/checkOutputPath.js';
import { checkWritable } from '../util/prepareFileOutput.js';
import { ioMessage, isIoError } from '../util/ioError.js';

/** Where a LoRA run writes its adapter (PEFT layout), next to the merged model. */
export const ADAPTER_DIR = 'adapter';

/** A training output is written into, not replaced: inputs may lie in its subfolders other than these. */
export const TRAIN_OUTPUT: WrittenInto = { ownSubdirs: [CHECKPOINTS_DIR, ADAPTER_DIR] };

/**
 * The training options: TRAIN_SPEC (trainOptions.ts) gives each one's type, bounds, default and doc; the
 * fields here are the ones no file or flag can hold.
 */
export type TrainOptions = Omit<OptionsOf<typeof TRAIN_SPEC>, 'lora'> &
  JobOptions &
  StageTagOptions & {
    /** LoRA settings (params `lora`); unset fields take the `sft` preset (docs/method.md §5). */
    lora?: LoraOptions;
    /** Called before training when the run resumes, with the checkpoint and its step. Defaults to none. */
    onResume?: (checkpoint: string, step: number) => void;
    /**
     * Data-parallel training across processes (c10d: Gloo on CPU, NCCL on CUDA). Each rank trains on its
     * part of every step's global batch of batchSize × gradAccum × worldSize blocks, so the result is that
     * of one process with that batch; rank 0 alone writes the log, checkpoints and model. `false` = one
     * process. Defaults to the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
     * MASTER_PORT), one process when WORLD_SIZE is unset or 1.
     */
    distributed?: DistributedEnv | false;
  };

/** The options that are not options of the spec: callbacks, the signal, the rendezvous. */
const TRAIN_NON_SPEC_KEYS = ['signal', 'onProgress', 'onResume', 'distributed', 'tags'] as const;

export const TRAIN_DEFAULTS = defaultsOf(TRAIN_SPEC);

export interface TrainResult {
  outDir: string;
  /** The run's steps at the end, counted from its start: a resumed run counts its checkpoint's steps too. */
  stepsDone: number;
  lastLoss: number;
  lastEvalLoss?: number;
  /** Bits per character of the last evaluation (text evaluation data packed by lep). */
  lastEvalBpc?: number;
  resumedFrom?: string;
  /**
   * The compute threads the job ran with on the CPU: OpenBLAS's (0 for another BLAS) and libtorch's own
   * pool's, which training gives the threads too where idle workers sleep soon (`lep info`, "thread waits").
   */
  threads: { blas: number; intraOp: number };
  /**
   * Where a float32 model's matrix products and loss softmax ran: 'onednn' (lep calls oneDNN, faster
   * than the BLAS with AVX2 and AVX-512 kernels; a CPU job whose libtorch pool has the threads) or 'libtorch' (its
   * BLAS; bf16 products always run in libtorch's own oneDNN path). `LEP_F32_PRODUCTS=blas` keeps them in the BLAS,
   * `=onednn` sends them to oneDNN on any CPU.
   */
  products: 'onednn' | 'libtorch';
  /**
   * What each micro-batch computed of the LM head, so the work lep skips is visible: the loss ran over
   * `lossChunkRows` positions at a time (the logits of a whole batch, positions x vocabulary, never exist
   * at once: a chunk holds about 64 MiB of them), and the head's gradient was computed for `gradientRows`
   * rows: the whole vocabulary when the head trains, the trained rows with `rows`, 0 when it is frozen.
   */
  head: { lossChunkRows: number; gradientRows: number };
}

/**
 * Options whose change makes a checkpoint's run a different run: resuming it with other values would give
 * a model that neither run describes. (Evaluation, reporting, checkpoint and thread settings may change.)
 */
export const TRAIN_RESUME_KEYS = [
  'modelDir', 'data', 'params', 'lora', 'rows', 'batchSize', 'gradAccum', 'steps', 'lr', 'embeddingLr', 'minLrRatio',
  'warmupSteps', 'beta1', 'beta2', 'eps', 'weightDecay', 'clip', 'seed', 'dtype',
] as const;

/** Where the resolved options of the run that writes `outDir` are kept. */
export const TRAIN_CONFIG_FILE = 'train-config.json';

/** The step of a checkpoint, from its state.json (a LepError naming the file when it is unreadable). */
export function checkpointStep(checkpoint: string): number {
  const file = join(checkpoint, 'state.json');
  let step: unknown;
  try {
    step = (JSON.parse(readFileSync(file, 'utf8')) as { step?: unknown }).step;
  } catch (e) {
    throw new LepError('LEP_BAD_CHECKPOINT', `cannot read the checkpoint state ${file}: ${(e as Error).message}\nHINT: delete ${checkpoint} to resume from the checkpoint before it, or start afresh with --no-resume.`);
  }
  if (!Number.isSafeInteger(step) || (step as number) < 0)
    throw new LepError('LEP_BAD_CHECKPOINT', `the checkpoint state ${file} has no valid "step" (found ${JSON.stringify(step)})\nHINT: delete ${checkpoint} to resume from the checkpoint before it, or start afresh with --no-resume.`);
  return step as number;
}

/** Refuses to resume `checkpoint` when the run that wrote `configFile` had other TRAIN_RESUME_KEYS values. */
function checkSameRun(configFile: string, checkpoint: string, nowOptions: Record<string, unknown>): void {
  if (!existsSync(configFile)) return;
  let then: Record<string, unknown>;
  try {
    // A record written before an option had a default in the spec ran with that default.
    then = { ...TRAIN_DEFAULTS, ...(JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>) };
  } catch (e) {
    throw new LepError('LEP_BAD_CHECKPOINT', `cannot read ${configFile}, the options of the run that wrote ${checkpoint}: ${(e as Error).message}\nHINT: start afresh with --no-resume, or choose another --out.`);
  }
  // A row set is a set: its order and repeats do not change the run (the core trains the sorted distinct
  // ids), so those are compared and shown; a long one (--rows new at 8B: thousands of ids) by its size,
  // its ends and the first id where the two differ.
  const rowSet = (v: unknown): unknown => (Array.isArray(v) ? [...new Set(v as number[])].sort((a, b) => a - b) : v);
  then = { ...then, rows: rowSet(then.rows) };
  const now: Record<string, unknown> = { ...nowOptions, rows: rowSet(nowOptions.rows) };
  const firstDiff = (a: unknown, b: unknown): string => {
    if (!Array.isArray(a) || !Array.isArray(b)) return '';
    const i = a.findIndex((x, j) => x !== b[j]);
    const at = i < 0 ? Math.min(a.length, b.length) : i;
    return ` (id #${at + 1}: ${a[at] ?? 'none'} then, ${b[at] ?? 'none'} now)`;
  };
  const show = (v: unknown): string =>
    v === undefined ? 'unset' : Array.isArray(v) && v.length > 8 ? `${v.length} ids [${v.slice(0, 3).join(',')},…,${v.slice(-2).join(',')}]` : JSON.stringify(v);
  // The model and the data are the same when their fingerprints are, wherever they now lie (a moved
  // project), and a file rewritten in place is another one; a run recorded before fingerprints: its paths.
  const moved = { modelDir: 'modelFingerprint', data: 'dataFingerprint' } as Record<string, string>;
  const same = (k: string): boolean =>
    k in moved && then[moved[k]!] !== undefined ? then[moved[k]!] === now[moved[k]!] : JSON.stringify(then[k]) === JSON.stringify(now[k]);
  const diffs = TRAIN_RESUME_KEYS.filter((k) => !same(k)).map((k) =>
    `${k} ${show(then[k])} then, ${show(now[k])} now${k in moved && then[moved[k]!] !== undefined ? ` (${then[moved[k]!]} then, ${now[moved[k]!]} now)` : ''}${k === 'rows' ? firstDiff(then[k], now[k]) : ''}`);
  if (diffs.length > 0)
    throw new LepError(
      'LEP_RESUME_MISMATCH',
      `the checkpoint ${checkpoint} was made by a run with other options: ${diffs.join('; ')}\n` +
        'HINT: run with the options of that run to resume it, start afresh with --no-resume (removes its checkpoints), or choose another --out.',
    );
}

/** The batch's shape for the memory check, from the data file's header (none if it has no tokens tensor: the trainer names that). */
function trainBatch(header: ReturnType<typeof inspectSafetensors>, batchSize: number): TrainBatch | undefined {
  const tokens = header.tensors.find((t) => t.name === 'tokens');
  return tokens?.shape.length === 2 ? { batchSize, positions: Math.max(0, tokens.shape[1]! - 1) } : undefined;
}

/**
 * A training that failed once its job had started (out of memory, a full disk at a checkpoint or at the
 * final model's write) as the error it was, plus how to go on: the newest checkpoint, which the same
 * command resumes from. Not for an abort (its message says where to resume), nor for failures whose
 * resume needs more than fixing a cause: a non-finite loss or weights (other options), a refused resume,
 * a lost rank (its HINT says to restart all ranks).
 */
const NO_RESUME_NOTE = new Set(['LEP_ABORTED', 'LEP_NAN_LOSS', 'LEP_NAN_WEIGHTS', 'LEP_RESUME_MISMATCH', 'LEP_DIST_PEER_LOST', 'LEP_DIST_TIMEOUT', 'LEP_DIST_MISMATCH']);
function withResumeNote(e: unknown, outDir: string): unknown {
  // A file-system error (a full disk at the final model's tokenizer files or the stage record) gets the
  // note too, as LEP_IO with the same words the CLI would print.
  if (isIoError(e)) e = new LepError('LEP_IO', ioMessage(e), { cause: e });
  if (!(e instanceof LepError) || NO_RESUME_NOTE.has(e.code)) return e;
  const last = latestCheckpoint(outDir);
  if (last === undefined) return e;
  const note = `RESUME: the newest checkpoint is ${last} (step ${checkpointStep(last)}): once the cause is fixed, the same command resumes from there`;
  const err = new LepError(e.code, `${e.message}\n${note}`, { cause: e.cause });
  err.stack = e.stack;
  return err;
}

/**
 * Bits per character of the evaluation loss, when the evaluation blocks carry `target_chars` (text packed
 * by packDocuments) and no loss mask: loss (nats/token) x predicted tokens / (characters x ln 2), over the
 * blocks the evaluation reads (the first evalBatches x batchSize, or all).
 */
function evalBitsPerChar(evalData: string | undefined, batchSize: number, evalBatches: number): ((loss: number) => number) | undefined {
  if (evalData === undefined) return undefined;
  const tensors = readSafetensors(evalData);
  const chars = tensors.find((t) => t.name === 'target_chars');
  const tokens = tensors.find((t) => t.name === 'tokens');
  if (!chars || !tokens || tensors.some((t) => t.name === 'loss_mask')) return undefined;
  const perBlock = new Int32Array(chars.data.buffer.slice(chars.data.byteOffset, chars.data.byteOffset + chars.data.byteLength));
  const used = evalBatches > 0 ? Math.min(perBlock.length, evalBatches * batchSize) : perBlock.length;
  let total = 0;
  for (let i = 0; i < used; i++) total += perBlock[i]!;
  const predicted = used * (tokens.shape[1]! - 1);
  return total > 0 ? (loss) => (loss * predicted) / (total * Math.LN2) : undefined;
}

/**
 * The final model goes into the output directory next to the run's checkpoints and log, so it cannot be
 * renamed in as one directory: it is written aside, and its files are moved in with config.json (the
 * file every reader opens first) removed first and put back last — a model without config.json is never
 * mistaken for a finished one.
 */
async function writeFinalModel(outDir: string, write: (dir: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(join(outDir, 'final-model'));
  trackTemp(tmp);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
    await write(tmp);
    rmSync(join(outDir, 'config.json'), { force: true });
    const names = readdirSync(tmp).filter((n) => n !== 'config.json');
    for (const n of names) renameSync(join(tmp, n), join(outDir, n));
    if (existsSync(join(tmp, 'config.json'))) renameSync(join(tmp, 'config.json'), join(outDir, 'config.json'));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
    untrackTemp(tmp);
  }
}

export async function trainModel(modelDir: string, outDir: string, options: TrainOptions): Promise<TrainResult> {
  const stage = beginStage('train');
  checkOptions(TRAIN_SPEC, options, { kind: 'options' }, TRAIN_NON_SPEC_KEYS);
  throwIfAborted(options.signal);  // before OUT and its train-config.json are made
  const given = withDefaults(TRAIN_SPEC, options);
  if (!existsSync(given.data)) throw optionError('data', 'an existing packed blocks file', given.data, '--data');
  if (given.evalData !== undefined && !existsSync(given.evalData)) throw optionError('evalData', 'an existing packed blocks file', given.evalData, '--eval-data');
  // Training writes into OUT and never replaces it: data may lie in a subdirectory of it (calibrate keeps
  // its blocks in OUT/calibration-data), not beside the files the run writes nor in its checkpoints.
  checkOutputPath(outDir, '--out', { MODEL_DIR: modelDir, '--data': given.data, '--eval-data': given.evalData }, TRAIN_OUTPUT);
  // The patch is written when the training ends: a path it cannot take is refused now, not hours later.
  if (given.patchDir !== undefined) {
    checkOutputPath(given.patchDir, '--patch', { '--data': given.data, '--eval-data': given.evalData });
    checkBesideModels(given.patchDir, '--patch', { MODEL_DIR: modelDir, '--out': outDir }, TRAIN_OUTPUT.ownSubdirs);
    checkReplaceable(given.patchDir, '--patch');
  }
  const model = readModelDir(modelDir);  // model errors first (a mistyped MODEL_DIR)
  const dataHeader = inspectSafetensors(given.data);
  // Blocks packed with another vocabulary train without an error and teach nothing.
  if (existsSync(join(modelDir, 'tokenizer.json'))) {
    let tok: Tokenizer | undefined;
    const modelTokenizer = (): Tokenizer => (tok ??= Tokenizer.fromDir(modelDir));
    checkBlocksVocabulary(given.data, dataHeader, modelTokenizer, '--data', modelDir);
    if (given.evalData !== undefined) checkBlocksVocabulary(given.evalData, inspectSafetensors(given.evalData), modelTokenizer, '--eval-data', modelDir);
  }
  if (given.lora !== undefined && given.params !== 'lora') throw optionError('lora', 'no LoRA settings unless params is "lora"', 'LoRA settings', '--lora-*', 'add --params lora (--lora), or drop the --lora-* settings.');
  if (given.patchDir !== undefined && given.params !== 'embeddings') throw optionError('patchDir', 'no patch unless params is "embeddings"', given.patchDir, '--patch', 'a patch holds trained embedding rows: add --params embeddings (--embeddings-only), or drop --patch.');
  if (given.rows !== undefined && given.params !== 'embeddings') throw optionError('rows', 'no row set unless params is "embeddings"', 'a row set', '--rows', 'a row set trains some embedding rows only: add --params embeddings (--embeddings-only), or drop --rows.');
  // With only the embeddings training, their learning rate is --lr: a second one would be ambiguous.
  if (given.embeddingLr !== undefined && given.params === 'embeddings')
    throw optionError('embeddingLr', 'no embedding learning rate when params is "embeddings"', given.embeddingLr, '--embedding-lr', 'only the embeddings train here, at --lr: drop --embedding-lr, or train all parameters with it.');
  // 'new' becomes the ids init made, recorded as ids.
  const rows = given.rows === 'new' ? newRowIds(modelDir, '--rows new') : given.rows;
  const o: ResolvedTrainOptions = { ...given, rows };
  // The two defaults that depend on another option.
  const warmupSteps = o.warmupSteps ?? Math.min(100, Math.floor(o.steps / 10));
  const checkpointEvery = o.checkpointEvery ?? Math.max(1, Math.ceil(o.steps / 10));
  const dist = o.distributed === undefined ? readDistributedEnv() : o.distributed || undefined;
  const { distTimeout, gradSync } = o;
  // Before anything is written: a run that cannot fit in memory leaves no output directory.
  const rowCount = o.rows === undefined ? undefined : new Set(o.rows).size;
  if (o.device === 'cpu') checkTrainMemory(model.config, o.params, o.dtype, modelDir, undefined, rowCount, trainBatch(dataHeader, o.batchSize));
  // One GPU per local rank, as torchrun expects; one this libtorch and machine lack leaves no output either.
  const device = dist && o.device === 'cuda' ? `cuda:${dist.localRank}` : o.device;
  if (device !== 'cpu') callNative(() => getNative().checkDevice(device));
  // Only rank 0 writes into outDir; the others read the checkpoint to resume from (shared storage).
  const writer = (dist?.rank ?? 0) === 0;
  outDir = resolve(outDir);
  // And on disk: checkpoints and the final model that cannot fit on --out's filesystem (a read-only one is
  // named as such first: its free space says nothing).
  if (writer) {
    checkWritable(outDir, '--out', outDir);
    const last = o.resume === false ? undefined : latestCheckpoint(outDir);
    checkTrainDiskSpace(model, outDir, { ...o, rows: rowCount, checkpointEvery, startStep: last ? checkpointStep(last) : 0, resume: o.resume !== false });
  }
  makeDirs(outDir, '--out');
  // Two runs writing one directory would interleave checkpoints and logs: the second is refused.
  const unlock = writer ? lockOutputDir(outDir, '--out', 'lep train') : () => {};
  try {
    return await trainLocked(modelDir, outDir, o, { device, warmupSteps, checkpointEvery, dist, distTimeout, gradSync, writer, stage });
  } finally {
    unlock();
  }
}

/**
 * Training stopped at a step boundary, where it checkpointed. With a HINT, so that a command running
 * training as a stage (lep adapt) prints it as it is.
 */
function stoppedAt(step: number, steps: number, checkpoint: string, options?: { cause?: unknown }): LepError {
  return new LepError('LEP_ABORTED', `training stopped at step ${step} of ${steps}; checkpoint ${checkpoint}\nHINT: run again (the same command or call) to resume from it.`, options);
}

/** The options with their defaults, a row set as ids. */
type ResolvedTrainOptions = Omit<TrainOptions, 'rows'> & typeof TRAIN_DEFAULTS & { rows?: number[] };

async function trainLocked(
  modelDir: string,
  outDir: string,
  o: ResolvedTrainOptions,
  r: { device: string; warmupSteps: number; checkpointEvery: number; dist: DistributedEnv | undefined; distTimeout: number; gradSync: GradSync; writer: boolean; stage: StageStart },
): Promise<TrainResult> {
  const options = o;
  const { device, warmupSteps, checkpointEvery, dist, distTimeout, gradSync, writer, stage } = r;
  // A checkpoint or final model killed mid-write is a stray *.tmp-PID: never resumed from, removed here.
  const ckpts = join(outDir, CHECKPOINTS_DIR);
  // So is a step folder missing one of a checkpoint's files (checkpointDirs.ts): named in train.log below.
  const incomplete = writer ? incompleteCheckpoints(outDir) : [];
  if (writer) {
    removeOrphanTemps(ckpts);
    removeOrphanTemps(outDir);
    for (const d of incomplete) rmSync(d, { recursive: true, force: true });
  }
  const resumeFrom = o.resume === false ? undefined : latestCheckpoint(outDir);
  const resolved = { ...o, warmupSteps, checkpointEvery, modelDir: resolve(modelDir), data: resolve(o.data),
    modelFingerprint: modelFingerprint(modelDir), dataFingerprint: fileFingerprint(o.data), signal: undefined, onProgress: undefined, onResume: undefined, tags: undefined, resumedFrom: resumeFrom, distributed: dist, distTimeout, gradSync };
  const configFile = join(outDir, TRAIN_CONFIG_FILE);
  if (resumeFrom) {
    const step = checkpointStep(resumeFrom);
    checkSameRun(configFile, resumeFrom, resolved);
    o.onResume?.(resumeFrom, step);
  }
  const model = await LepModel.load(modelDir, { device, dtype: o.dtype });
  // --no-resume drops the old checkpoints only once the model has loaded: a wrong model or device then
  // fails with the old run intact.
  if (writer && o.resume === false && existsSync(ckpts)) rmSync(ckpts, { recursive: true, force: true });
  let lora;
  try {
    lora = o.params === 'lora' ? resolveLora(o.lora ?? {}, model.dir.config.numHiddenLayers) : undefined;
  } catch (e) {
    model.dispose();
    throw e;
  }
  // Only now, with the options checked and the model loaded, does OUT change: a refused or failed start
  // leaves an earlier run's record and options as they were (its checkpoints resume under those). A
  // record left by an earlier run would call this unfinished run finished: it goes, and is written again
  // when the final model is in place.
  if (writer) {
    rmSync(join(outDir, STAGE_RECORD_FILE), { force: true });
    writeJsonAtomic(configFile, resolved);
  }
  const log = join(outDir, 'train.log');
  const started = Date.now();
  const appendLog = (line: string): void => {
    if (!writer) return;
    try {
      appendFileSync(log, line);
    } catch (e) {
      // A full disk meets the log first: it stops the run (LEP_IO with the RESUME line, withResumeNote);
      // appendFileSync's error names no path.
      throw withPath(e, log);
    }
  };
  for (const d of incomplete) appendLog(`removed ${d}: an incomplete checkpoint (a process was killed while writing or removing it)\n`);
  if (resumeFrom) appendLog(`resume from ${resumeFrom}\n`);
  // The evaluation covers evalBatches x the global micro-batch (batchSize x ranks), split over the ranks.
  const bpcOf = evalBitsPerChar(o.evalData, o.batchSize * (dist?.worldSize ?? 1), o.evalBatches);
  const onEvent = (e: JobProgress): void => {
    // train.log keeps its 0.1.0 line format (report/parseTrainLog.ts reads it).
    if (e.phase === 'train') {
      const elapsed = (Date.now() - started) / 1000;
      // Data-parallel: what this rank all-reduced, how long it then waited, how many buckets started during backward.
      const comm = dist ? ` | allreduce_mb ${(e.allreduceBytes / 1e6).toFixed(2)} | allreduce_wait_s ${e.allreduceWaitS.toFixed(3)} | early_buckets ${e.allreduceEarlyBuckets}` : '';
      appendLog(`step ${e.done} | loss ${e.loss.toFixed(4)} | lr ${e.lr.toExponential(2)} | grad_norm ${e.gradNorm.toFixed(3)} | ${Math.round(e.tokensPerS)} tok/s | ${elapsed.toFixed(1)} s${comm}\n`);
    } else if (e.phase === 'eval') {
      if (bpcOf) e.bpc = bpcOf(e.evalLoss);
      appendLog(`step ${e.done} | eval_loss ${e.evalLoss.toFixed(4)}${e.bpc !== undefined ? ` | bpc ${e.bpc.toFixed(4)}` : ''}\n`);
    }
    options.onProgress?.(e);
  };
  // The trainer writes each checkpoint as step-N.tmp-PID first: removed if the CLI quits on a signal mid-write.
  trackTempsIn(join(outDir, CHECKPOINTS_DIR));
  try {
    const r = await runJob(
      (p) =>
        model.native.train(
          {
            params: o.params,
            lora,
            rows: o.rows,
            data: resolve(o.data),
            evalData: o.evalData === undefined ? undefined : resolve(o.evalData),
            batchSize: o.batchSize,
            gradAccum: o.gradAccum,
            steps: o.steps,
            lr: o.lr,
            embeddingLr: o.embeddingLr ?? o.lr,
            minLrRatio: o.minLrRatio,
            warmupSteps,
            beta1: o.beta1,
            beta2: o.beta2,
            eps: o.eps,
            weightDecay: o.weightDecay,
            clip: o.clip,
            seed: o.seed,
            evalEvery: o.evalEvery,
            evalBatches: o.evalBatches,
            checkpointEvery,
            checkpointDir: join(outDir, CHECKPOINTS_DIR),
            keepCheckpoints: o.keepCheckpoints,
            resumeFrom,
            reportEvery: o.reportEvery,
            activationCheckpointing: o.activationCheckpointing,
            ...(dist ? { dist: { ...dist, timeoutS: distTimeout, gradSync, bucketMb: o.gradBucketMb } } : {}),
          },
          p,
        ),
      { signal: o.signal, onProgress: onEvent },
    ).catch((e: unknown) => {
      // The abort rule (binding/runJob.ts) with what a caller needs to resume: the trainer checkpointed
      // at the step boundary where it stopped.
      if (!(e instanceof LepError && e.code === 'LEP_ABORTED')) throw e;
      const last = latestCheckpoint(outDir);
      throw last
        ? stoppedAt(checkpointStep(last), o.steps, last, { cause: e.cause })
        : new LepError('LEP_ABORTED', 'training stopped before its first step; nothing to resume\nHINT: run again (the same command or call) to start it.', { cause: e.cause });
    });
    if (r.stoppedEarly) throw stoppedAt(r.stepsDone, o.steps, r.lastCheckpoint);
    const result: TrainResult = { outDir, stepsDone: r.stepsDone, lastLoss: r.lastLoss, threads: { blas: r.blasThreads, intraOp: r.intraOpThreads }, products: r.products, head: { lossChunkRows: r.lossChunkRows, gradientRows: r.headGradRows }, ...(r.lastEvalLoss >= 0 ? { lastEvalLoss: r.lastEvalLoss, ...(bpcOf ? { lastEvalBpc: bpcOf(r.lastEvalLoss) } : {}) } : {}), ...(resumeFrom ? { resumedFrom: resumeFrom } : {}) };
    if (!writer) return result;
    if (lora) {
      await saveAdapter(model, lora, join(outDir, ADAPTER_DIR), resolve(modelDir));
      await runJob((p) => model.native.mergeLora(p), {});
    }
    await writeFinalModel(outDir, (dir) => writeModelFiles(model, modelDir, dir, storedDtype(model.dir.rawConfig)));
    if (o.patchDir !== undefined) writeEmbeddingPatch(outDir, o.patchDir);
    writeStageRecord(outDir, stage, {
      inputs: [
        stageInput('model', modelDir),
        stageInput('data', o.data),
        ...(o.evalData !== undefined ? [stageInput('evalData', o.evalData)] : []),
      ],
      // What train-config.json holds, with the LoRA settings as they ran (the preset filled in).
      resolved: { ...resolved, ...(lora ? { lora } : {}) },
      result,
      tags: o.tags,
    });
    return result;
  } catch (e) {
    throw withResumeNote(e, outDir);  // everything in this try runs once the training job starts
  } finally {
    untrackTempsIn(join(outDir, CHECKPOINTS_DIR));
    model.dispose();
  }
}
