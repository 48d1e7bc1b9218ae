/**
 * Disk space for a training run, counted before the model loads: a run whose checkpoints and final model
 * cannot fit on --out's filesystem is refused with the numbers, instead of failing with ENOSPC hours
 * later (an embeddings-only checkpoint at LLaMa-3-8B shapes with a 174816-token vocabulary holds 17 GB:
 * the trained matrices in f32 and AdamW's two moments).
 *
 * A lower bound, as trainMemory.ts's: per checkpoint (cpp/core/trainer.cpp save_checkpoint) the trained
 * tensors in f32 and the two f32 moments — with a row set, the trained matrices whole in the compute dtype
 * plus the rows' f32 master copy, moments and ids — and the final model in its stored dtype. LoRA
 * adapters and the small files are not counted. A new checkpoint is written before the oldest beyond
 * --keep-checkpoints is removed, so up to keep + 1 exist for a moment; the final model is written with
 * the last `keep` checkpoints in place. Checkpoints already in --out count as written (a resumed run),
 * or as freed (--no-resume removes them).
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { parameterCounts, type ModelConfig } from '../checkpoint/config.js';
import { storedDtype, type ModelDir } from '../checkpoint/modelDir.js';
import { checkpointDirs } from './checkpointDirs.js';
import { freeBytes } from '../util/freeBytes.js';
import { LepError } from '../errors.js';
import { gib } from '../processMemory.js';
import type { TrainDtype, TrainParams } from './trainMemory.js';

/** Bytes one checkpoint holds at least (see the module comment); `rows`: the row set's distinct rows. */
export function checkpointBytes(c: ModelConfig, params: TrainParams, dtype: TrainDtype, rows?: number): number {
  const n = parameterCounts(c);
  if (params === 'lora') return 0;
  const trained = params === 'all' ? n.all : n.embeddings;
  if (rows === undefined) return trained * (4 + 8);
  const rowElements = rows * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  return trained * (dtype === 'bf16' ? 2 : 4) + rowElements * (4 + 8) + rows * 8;
}

/** How many checkpoints a run from `startStep` writes (cpp/core/trainer.cpp: every N steps and at the end). */
export function checkpointsWritten(startStep: number, steps: number, every: number): number {
  if (startStep >= steps) return 0;
  if (every <= 0) return 1;
  return Math.floor(steps / every) - Math.floor(startStep / every) + (steps % every === 0 ? 0 : 1);
}

export interface DiskPlan {
  /** Bytes of one checkpoint and of the final model. */
  checkpoint: number;
  model: number;
  /** Checkpoints in --out now (resumed from), to be written, and kept (0: all). */
  existing: number;
  written: number;
  keep: number;
}

/** Bytes the run adds to --out at its peak, over what its existing checkpoints already hold. */
export function diskBytesNeeded(p: DiskPlan): number {
  const keep = p.keep > 0 ? p.keep : Infinity;
  const total = p.existing + p.written;
  // While the last checkpoint is written, before the oldest goes; then the final model beside the kept ones.
  const writingLast = p.written > 0 ? (Math.min(keep, total - 1) + 1) * p.checkpoint : 0;
  const writingModel = (p.written > 0 ? Math.min(keep, total) : p.existing) * p.checkpoint + p.model;
  return Math.max(writingLast, writingModel) - p.existing * p.checkpoint;
}

/** Bytes of the complete checkpoints of the run writing `outDir` (the files of its step-* directories) and their count. */
export function existingCheckpoints(outDir: string): { count: number; bytes: number } {
  const dirs = checkpointDirs(outDir);
  let bytes = 0;
  for (const d of dirs) for (const f of readdirSync(d)) bytes += statSync(join(d, f)).size;
  return { count: dirs.length, bytes };
}


/**
 * Refuses a run whose lower bound exceeds `free` bytes (plus `freed`, what --no-resume removes), naming
 * what takes the space and the ways to need less.
 */
export function checkTrainDisk(outDir: string, plan: DiskPlan, free: number, freed = 0): void {
  const need = diskBytesNeeded(plan);
  if (need <= free + freed) return;
  const at = plan.keep > 0 ? Math.min(plan.keep, plan.existing + plan.written - 1) + 1 : plan.existing + plan.written;
  const ways = [
    'free space there or write --out to a disk with room',
    ...(plan.keep !== 1 && plan.checkpoint > 0 ? [`keep fewer checkpoints (--keep-checkpoints 1, in a recipe train.keepCheckpoints: 1, needs at least ${gib(diskBytesNeeded({ ...plan, keep: 1 }))})`] : []),
  ];
  const keeping = plan.keep > 0
    ? `a new one is written before the oldest beyond --keep-checkpoints ${plan.keep} is removed`
    : '--keep-checkpoints 0 keeps every one';
  throw new LepError(
    'LEP_NO_SPACE',
    `training into ${outDir} needs at least ${gib(need)} more disk space, and its filesystem has ${gib(free)} free` +
      (freed ? ` (+ ${gib(freed)} of old checkpoints --no-resume removes)` : '') +
      `: the final model (${gib(plan.model)})` +
      (plan.checkpoint > 0 ? ` and up to ${at} checkpoints at a time of ${gib(plan.checkpoint)} each (the trained tensors in f32 and AdamW's two moments; ${keeping})` : '') +
      (plan.existing ? `, ${plan.existing} of them already there` : '') +
      `\nHINT: ${ways.join(', or ')}.`,
  );
}

export interface TrainDiskRun {
  params: TrainParams;
  dtype: TrainDtype;
  /** Distinct rows of a row set. */
  rows?: number;
  steps: number;
  checkpointEvery: number;
  keepCheckpoints: number;
  /** The step of the checkpoint the run resumes from (0: a fresh start) and whether it keeps the old ones. */
  startStep: number;
  resume: boolean;
}

/** checkTrainDisk for `lep train MODEL --out OUT`, from the model's config and what OUT holds now. */
export function checkTrainDiskSpace(model: Pick<ModelDir, 'config' | 'rawConfig'>, outDir: string, run: TrainDiskRun): void {
  const { config, rawConfig } = model;
  const old = existingCheckpoints(outDir);
  const plan: DiskPlan = {
    checkpoint: checkpointBytes(config, run.params, run.dtype, run.rows),
    // The final model is stored in the input model's dtype (trainModel.ts).
    model: parameterCounts(config).all * (storedDtype(rawConfig) === 'bf16' ? 2 : 4),
    existing: run.resume ? old.count : 0,
    written: checkpointsWritten(run.startStep, run.steps, run.checkpointEvery),
    keep: run.keepCheckpoints,
  };
  checkTrainDisk(outDir, plan, freeBytes(outDir), run.resume ? 0 : old.bytes);
}
