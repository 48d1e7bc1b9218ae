/**
 * Where a training run keeps its checkpoints: `OUT/checkpoints/step-NNNNNNNN` (cpp/core/trainer.cpp names
 * them, zero-padded, so name order is step order). A checkpoint being written is a `*.tmp-PID` beside them
 * and is never listed.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** The subdirectory of a training output that holds its checkpoints. */
export const CHECKPOINTS_DIR = 'checkpoints';

/** The complete checkpoint directories of the run writing `outDir`, oldest first (none when there are none). */
export function checkpointDirs(outDir: string): string[] {
  const dir = join(outDir, CHECKPOINTS_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => /^step-\d+$/.test(n)).sort().map((n) => join(dir, n));
}

/** Newest complete checkpoint directory of the run writing `outDir`, if any. */
export function latestCheckpoint(outDir: string): string | undefined {
  return checkpointDirs(outDir).at(-1);
}
