/**
 * `mkdir -p` that fails with a named error. Node's own recursive mkdir spins forever where a pseudo
 * file system refuses a new directory with ENOENT (measured: `mkdirSync('/proc/x/y', {recursive: true})`
 * never returns on Node 20), so each missing component is made one at a time.
 */
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import { LepError } from '../errors.js';

function ioError(flag: string, dir: string, what: string): LepError {
  return new LepError('LEP_BAD_OUTPUT', `cannot create ${flag} ${dir}: ${what}\nHINT: choose a directory on a writable disk for ${flag}.`);
}

/**
 * Creates `dir` and its missing parents; `flag` names the option the path came from, `shown` the path the
 * user gave (when `dir` is its parent).
 */
export function makeDirs(dir: string, flag: string, shown = dir): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(at).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw ioError(flag, shown, `${at}: ${code}`);
      // A symbolic link to nowhere: mkdir would fail on it with a confusing EEXIST.
      if (code === 'ENOENT' && lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) throw ioError(flag, shown, `${at} is a symbolic link to a path that does not exist`);
    }
    if (isDir === true) break;
    if (isDir === false) throw ioError(flag, shown, `${at} exists and is not a directory`);
    missing.push(at);
    const up = dirname(at);
    if (up === at) break;
    at = up;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw ioError(flag, shown, `mkdir ${d} failed with ${code}`);
    }
  }
}
