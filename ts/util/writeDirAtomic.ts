/**
 * Output directories that appear all at once: built under `OUT.tmp-PID` next to `OUT`, then renamed into
 * place, so a killed command leaves either the previous `OUT` or the new one, never a half-written one
 * that looks finished (plus a `*.tmp-PID` that the next run removes).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';

import { makeDirs } from './makeDirs.js';
import { removeOrphanTemps, tempPathFor, trackTemp, untrackTemp } from './tempPaths.js';

/** A fresh temporary directory for `outDir`, after removing the ones dead processes left. */
function begin(outDir: string, flag: string): string {
  makeDirs(dirname(outDir), flag, outDir);
  removeOrphanTemps(dirname(outDir), `${basename(outDir)}.`);
  const tmp = tempPathFor(outDir);
  trackTemp(tmp);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  return tmp;
}

/** Puts the finished `tmp` at `outDir`, replacing what was there. */
function finish(tmp: string, outDir: string): void {
  // rename(2) cannot replace a non-empty directory: move the old one aside first. Killed between the two
  // renames, OUT is missing and OUT.old.tmp-PID holds the previous output until the next run removes it.
  const old = tempPathFor(`${outDir}.old`);
  trackTemp(old);
  try {
    if (existsSync(outDir)) renameSync(outDir, old);
    renameSync(tmp, outDir);
    rmSync(old, { recursive: true, force: true });
  } finally {
    untrackTemp(old);
  }
}

function abandon(tmp: string): void {
  rmSync(tmp, { recursive: true, force: true });
  untrackTemp(tmp);
}

/**
 * Runs `build(tmp)` on a fresh temporary directory and then puts it at `outDir`, replacing what was there.
 * `flag` names the option `outDir` came from (for errors).
 */
export async function writeDirAtomic<T>(outDir: string, flag: string, build: (tmp: string) => Promise<T> | T): Promise<T> {
  outDir = resolve(outDir);
  const tmp = begin(outDir, flag);
  try {
    const result = await build(tmp);
    finish(tmp, outDir);
    return result;
  } finally {
    abandon(tmp);
  }
}

/** `writeDirAtomic` for a synchronous `build`. */
export function writeDirAtomicSync<T>(outDir: string, flag: string, build: (tmp: string) => T): T {
  outDir = resolve(outDir);
  const tmp = begin(outDir, flag);
  try {
    const result = build(tmp);
    finish(tmp, outDir);
    return result;
  } finally {
    abandon(tmp);
  }
}
