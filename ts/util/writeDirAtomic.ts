/**
 * Output directories that appear all at once: built under `OUT.tmp-PID` next to `OUT`, then renamed into
 * place, so a killed command leaves either the previous `OUT` or the new one, never a half-written one
 * that looks finished (plus a `*.tmp-PID` that the next run removes).
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, parse, resolve } from 'node:path';

import { LepError } from '../errors.js';
import { makeDirs } from './makeDirs.js';
import { pidAlive, removeOrphanTemps, tempPathFor, trackTemp, untrackTemp } from './tempPaths.js';

/**
 * Files one of lep's output directories holds (a model, a tokenizer, a stage's record). An existing OUT is
 * replaced as a whole only when it holds one of these: a folder of anything else (a home, a project) is
 * refused rather than deleted.
 */
const LEP_OUTPUT_MARKERS = [
  'config.json', 'tokenizer.json', 'tokenizer_config.json', 'manifest.json', 'model.safetensors',
  'model.safetensors.index.json', 'adapter_config.json', 'init_provenance.json', 'propagate_report.json',
  'lep_tokenizer_run.json', 'tokenizer.model', 'lep-stage.json',
];

/**
 * Throws unless `outDir` is absent, empty, or one of lep's outputs (replaced as a whole); for a command
 * that writes the directory only at its end (training's --patch), to refuse before the work.
 */
export function checkReplaceable(outDir: string, flag: string): void {
  outDir = resolve(outDir);
  let st;
  try {
    st = lstatSync(outDir);
  } catch {
    return; // nothing there yet
  }
  const hint = `\nHINT: give ${flag} a new or empty directory, or one an earlier lep run wrote (it is replaced as a whole).`;
  if (!st.isDirectory()) throw new LepError('LEP_OUTPUT_NOT_DIR', `${flag} ${outDir} exists and is not a directory${hint}`);
  const special = [parse(outDir).root, homedir(), process.cwd()].map((p) => resolve(p));
  if (special.includes(outDir))
    throw new LepError('LEP_OUTPUT_NOT_EMPTY', `${flag} ${outDir} is the root, home or current directory, which lep would replace as a whole${hint}`);
  const names = readdirSync(outDir);
  if (names.length > 0 && !names.some((n) => LEP_OUTPUT_MARKERS.includes(n)))
    throw new LepError('LEP_OUTPUT_NOT_EMPTY', `${flag} ${outDir} holds files that no lep run wrote (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', ...' : ''}), and lep replaces its output directory as a whole${hint}`);
}

/**
 * Previous outputs this thread left aside when both of finish()'s renames failed (it then said where they
 * are): the next write of the same OUT from this thread puts them back. Recorded rather than found by
 * name, since another thread of this process (same pid) may be between its own two renames.
 */
const stranded = new Set<string>();

/**
 * A process killed between finish()'s two renames, or one whose second rename and rename back both failed
 * (finish() then says where the previous output is), leaves no OUT and the previous output at
 * OUT.old.tmp-PID: put it back before anything removes orphans, so that output is never lost. This
 * process's own is put back only where this thread recorded it (`stranded`).
 */
function restoreOld(outDir: string): void {
  if (existsSync(outDir)) return;
  const prefix = `${basename(outDir)}.old.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dirname(outDir));
  } catch {
    return;
  }
  const left = names
    .filter((n) => n.startsWith(prefix))
    .map((n) => ({ path: join(dirname(outDir), n), pid: Number(n.slice(prefix.length)) }))
    .find(({ path, pid }) => (pid === process.pid ? stranded.has(path) : !pidAlive(pid)));
  if (left) {
    renameSync(left.path, outDir);
    stranded.delete(left.path);
  }
}

/** A fresh temporary directory for `outDir`, after removing the ones dead processes left. */
function begin(outDir: string, flag: string): string {
  makeDirs(dirname(outDir), flag, outDir);
  restoreOld(outDir);
  checkReplaceable(outDir, flag);
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
  // renames, OUT is missing and OUT.old.tmp-PID holds the previous output; the next run puts it back.
  const old = tempPathFor(`${outDir}.old`);
  trackTemp(old);
  try {
    const hadOld = existsSync(outDir);
    if (hadOld) renameSync(outDir, old);
    try {
      renameSync(tmp, outDir);
    } catch (e) {
      if (hadOld) {
        try {
          renameSync(old, outDir); // the previous output stays
        } catch {
          // Both renames failed (a failing disk): say where the previous output is; the next run puts it back.
          stranded.add(old);
          throw new LepError(
            'LEP_IO',
            `cannot put the new ${outDir} in place (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}), nor the previous one back: it is at ${old}` +
              `\nHINT: check the disk (dmesg); the next lep run writing ${outDir} moves it back, or rename it yourself.`,
            { cause: e },
          );
        }
      }
      throw e;
    }
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
 * An error met while building `tmp`, naming `outDir` instead: the temporary directory it names is gone
 * by the time the user reads it (`cannot write OUT/model.safetensors`, not `OUT.tmp-PID/...`).
 */
function naming(e: unknown, tmp: string, outDir: string): unknown {
  if (!(e instanceof Error)) return e;
  const fix = (v: unknown): unknown => (typeof v === 'string' ? v.split(tmp).join(outDir) : v);
  e.message = fix(e.message) as string;
  const io = e as NodeJS.ErrnoException & { dest?: string };
  if (io.path !== undefined) io.path = fix(io.path) as string;
  if (io.dest !== undefined) io.dest = fix(io.dest) as string;
  return e;
}

/**
 * Runs `build(tmp)` on a fresh temporary directory and then puts it at `outDir`, replacing what was there.
 * `flag` names the option `outDir` came from (for errors).
 */
export async function writeDirAtomic<T>(outDir: string, flag: string, build: (tmp: string) => Promise<T> | T): Promise<T> {
  outDir = resolve(outDir);
  const tmp = begin(outDir, flag);
  try {
    let result: T;
    try {
      result = await build(tmp);
    } catch (e) {
      throw naming(e, tmp, outDir);
    }
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
    let result: T;
    try {
      result = build(tmp);
    } catch (e) {
      throw naming(e, tmp, outDir);
    }
    finish(tmp, outDir);
    return result;
  } finally {
    abandon(tmp);
  }
}

/** An output directory being built aside (`dir`), put in place by `commit()` or dropped by `abandon()`. */
export interface PendingDir {
  /** Where the output resolves to. */
  out: string;
  /** The temporary directory to fill. */
  dir: string;
  /** Puts `dir` at `out`, replacing what was there. */
  commit(): void;
  /** Removes `dir` (after commit: nothing left to remove). */
  abandon(): void;
}

/**
 * `writeDirAtomic` split open, for a job that builds several outputs at once and keeps the ones that
 * finished when a later one fails (`lep propagate` with several instruct models). The caller must call
 * `abandon()` in a finally block.
 */
export function openDirAtomic(outDir: string, flag: string): PendingDir {
  const out = resolve(outDir);
  const tmp = begin(out, flag);
  return { out, dir: tmp, commit: () => finish(tmp, out), abandon: () => abandon(tmp) };
}
