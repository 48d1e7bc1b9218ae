/** Free space on a filesystem, for the checks that refuse work which cannot fit (training, SentencePiece's save), and where an output will be made. */
import { existsSync, statfsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Free bytes for this user on the filesystem that holds, or will hold, `path` (its nearest existing
 * ancestor); Infinity where the filesystem reports no size (some FUSE and network mounts), so that lep
 * never refuses a run on a number the filesystem did not give.
 */
export function freeBytes(path: string): number {
  const s = statfsSync(nearestExisting(path));
  return s.blocks > 0 ? s.bavail * s.bsize : Infinity;
}

/** `path`, or the nearest of its ancestors that exists: where an output not yet made will be created. */
export function nearestExisting(path: string): string {
  let at = resolve(path);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  return at;
}
