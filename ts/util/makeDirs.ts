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

/** Creates `dir` and its missing parents; `flag` names the option the directory came from. */
export function makeDirs(dir: string, flag: string): void {
  const missing: string[] = [];
  let at = resolve(dir);
  for (;;) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(at).isDirectory();
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw ioError(flag, dir, `${at}: ${code}`);
      // A symbolic link to nowhere: mkdir would fail on it with a confusing EEXIST.
      if (lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) throw ioError(flag, dir, `${at} is a symbolic link to a path that does not exist`);
    }
    if (isDir === true) break;
    if (isDir === false) throw ioError(flag, dir, `${at} exists and is not a directory`);
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
      if (code !== 'EEXIST') throw ioError(flag, dir, `mkdir ${d} failed with ${code}`);
    }
  }
}
