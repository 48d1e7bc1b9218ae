/**
 * Where a training run keeps its checkpoints: `OUT/checkpoints/step-NNNNNNNN` (cpp/core/trainer.cpp names
 * them, zero-padded, so name order is step order). A checkpoint being written is a `*.tmp-PID` beside them
 * and is never listed.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The subdirectory of a training output that holds its checkpoints. */
export const CHECKPOINTS_DIR = 'checkpoints';

/** The files of a complete checkpoint (cpp/core/trainer.cpp, kCheckpointFiles, writes these three). */
export const CHECKPOINT_FILES = ['trainable.safetensors', 'optimizer.safetensors', 'state.json'] as const;

function stepDirs(outDir: string): string[] {
  const dir = join(outDir, CHECKPOINTS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /^step-\d+$/.test(n)).sort().map((n) => join(dir, n));
}

/** Whether a checkpoint directory holds every file of a checkpoint. */
export function isCompleteCheckpoint(dir: string): boolean {
  return CHECKPOINT_FILES.every((f) => existsSync(join(dir, f)));
}

/** The complete checkpoint directories of the run writing `outDir`, oldest first (none when there are none). */
export function checkpointDirs(outDir: string): string[] {
  return stepDirs(outDir).filter(isCompleteCheckpoint);
}

/**
 * Step directories that lack a checkpoint file: never resumed from. A process killed while a folder was
 * removed could leave one (a CLI quitting on a second signal removed a checkpoint's temporary folder
 * while its job still wrote it, and the job renamed what was left into place; the trainer now checks
 * its files first, this catches any other way).
 */
export function incompleteCheckpoints(outDir: string): string[] {
  return stepDirs(outDir).filter((d) => !isCompleteCheckpoint(d));
}

/** Newest complete checkpoint directory of the run writing `outDir`, if any. */
export function latestCheckpoint(outDir: string): string | undefined {
  return checkpointDirs(outDir).at(-1);
}
