/** Atomic file writes: temporary name in the same directory, fsync, rename over the target. */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';

import { tempPathFor, trackTemp, untrackTemp } from './tempPaths.js';

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  trackTemp(tmp);
  try {
    const fd = openSync(tmp, 'w');
    try {
      const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      // writeSync may write less than asked (a file-size limit or a full disk reached mid-buffer); the
      // next call then throws the reason. One call used to publish the truncated file.
      for (let off = 0; off < buf.length; ) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw withPath(e, path);
  } finally {
    untrackTemp(tmp);
  }
}

export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * `e` naming `path` when it is a file-system error that names none: write and fsync errors carry no path,
 * and the CLI's LEP_IO_<errno> message (cli/dispatch.ts) should say which output met the full disk.
 */
export function withPath(e: unknown, path: string): unknown {
  const err = e as NodeJS.ErrnoException;
  if (err instanceof Error && typeof err.code === 'string' && err.path === undefined) err.path = path;
  return e;
}
