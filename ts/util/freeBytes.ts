/** Free space on a filesystem, for the checks that refuse work which cannot fit (training, SentencePiece's save). */
import { existsSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Free bytes for this user on the filesystem that holds, or will hold, `path` (its nearest existing
 * ancestor); Infinity where the filesystem reports no size (some FUSE and network mounts), so that lep
 * never refuses a run on a number the filesystem did not give.
 */
export function freeBytes(path: string): number {
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  const s = statfsSync(path);
  return s.blocks > 0 ? s.bavail * s.bsize : Infinity;
}
