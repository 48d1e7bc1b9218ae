/**
 * A lock on an output directory that a long command writes into over time (training: checkpoints, log,
 * final model). A second command on the same directory is refused while the holder runs; a lock left by
 * a process that no longer runs (killed, machine rebooted) is taken over.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { linkSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import { pidAlive, tempPathFor } from './tempPaths.js';

/** The lock file inside the output directory. */
export const LOCK_FILE = 'lep.lock';

interface Holder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

/** A lock file's holder; undefined when it is half-written (by a killed process): treated as stale. */
function parseHolder(text: string): Holder | undefined {
  try {
    return JSON.parse(text) as Holder;
  } catch {
    return undefined;
  }
}

function readHolder(file: string): Holder | undefined {
  try {
    return parseHolder(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // unreadable: treated as stale
  }
}

/**
 * Removes `file` if it holds a lock that may be removed: one whose holder no longer runs, or one that
 * cannot be parsed. A file that is gone is left gone: another command released or removed it.
 *
 * The file is moved aside to a name of this process's own before it is removed, and what was moved is
 * compared with what was judged: between the read and the removal, another command may have removed the
 * stale lock and taken a new one, and removing by name would then remove that live lock (two commands
 * held the lock at once). A live lock moved aside by that race is linked back at once.
 */
function removeIfStale(file: string, live: (h: Holder | undefined) => boolean): void {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return; // gone, or not ours to read: retried, never removed blind
  }
  if (live(parseHolder(text))) return;
  const aside = tempPathFor(`${file}.aside-${randomUUID()}`);
  try {
    renameSync(file, aside);
  } catch {
    return; // gone: another command removed it first
  }
  try {
    if (readFileSync(aside, 'utf8') !== text) linkSync(aside, file);
  } catch {
    // EEXIST: a third command took the lock in the instant it was aside. The race left is that instant,
    // where before it was the whole time between a read and a removal.
  } finally {
    rmSync(aside, { force: true });
  }
}

const sameHolder = (a: Holder | undefined, b: Holder | undefined): boolean =>
  a === undefined || b === undefined ? a === b : a.pid === b.pid && a.host === b.host && a.since === b.since;

/** Creates `file` holding `me` all at once (written to a temporary name, then hard-linked: fails with EEXIST). */
function createLock(file: string, me: Holder): boolean {
  // Unique: workers of one process share its pid, and processes on other machines writing a shared
  // folder can have the same pid (pid 1 in two containers); a shared name let one's content be linked as
  // the other's lock.
  const tmp = tempPathFor(`${file}.new-${randomUUID()}`);
  writeFileSync(tmp, JSON.stringify(me));
  try {
    linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** Sleeps synchronously (lockOutputDir is synchronous; the wait is a few milliseconds). */
function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Takes the lock on `dir` (which must exist) for `command`; returns the function that releases it.
 * `flag` names the option the directory came from.
 *
 * The lock file appears with its content (a hard link of a complete temporary file), so a reader never
 * sees it half-written. Only the holder of a second lock, `lep.lock.takeover` (taken the same way), may
 * remove a stale lock: when several commands find the same stale lock at once, one removes it and the
 * others then find a live one, so two commands never hold the lock together. (A takeover lock whose
 * process died within its few microseconds is itself removed as stale.)
 */
// The locks this process holds. Released by their commands when they end, or at exit: the CLI exits on a
// signal without the command's own cleanup (cli/interrupt.ts), and a lock left behind made the next run
// take it over as stale. One 'exit' listener for all of them.
const held = new Set<() => void>();
process.on('exit', () => {
  for (const release of [...held]) release();
});

/**
 * Whether a lock bearing this process's pid was taken by this process (any of its threads: a second
 * trainModel on the same OUT, from a worker too) rather than left by an earlier process that had the same
 * pid (a container's processes reuse low pids across restarts): taken after this process started.
 */
function sinceThisProcess(h: Holder): boolean {
  const started = Date.now() - process.uptime() * 1000;
  const at = Date.parse(h.since);
  return Number.isFinite(at) && at >= started - 50;
}

export function lockOutputDir(dir: string, flag: string, command: string): () => void {
  const file = join(dir, LOCK_FILE);
  const takeover = `${file}.takeover`;
  const me: Holder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  const live = (h: Holder | undefined): h is Holder => !!h && (h.host !== me.host || (h.pid === process.pid ? sinceThisProcess(h) : pidAlive(h.pid)));
  const ours = (f: string): boolean => sameHolder(readHolder(f), me);
  for (let attempt = 0; attempt < 1000; attempt++) {
    if (createLock(file, me)) {
      const release = (): void => {
        held.delete(release);
        if (ours(file)) rmSync(file, { force: true });
      };
      held.add(release);
      return release;
    }
    const h = readHolder(file);
    // Another machine's process cannot be checked from here: refused, the user decides.
    if (live(h))
      throw new LepError(
        'LEP_OUTPUT_LOCKED',
        `${flag} ${dir} is in use by ${h.command} (pid ${h.pid} on ${h.host}, since ${h.since}); two runs writing one directory would mix their checkpoints and logs\n` +
          `HINT: wait for that run to finish or stop it, or choose another ${flag}${h.host !== me.host ? `; if it no longer runs, delete ${file}` : ''}.`,
      );
    if (!createLock(takeover, me)) {
      removeIfStale(takeover, live);
      sleepMs(5); // another command is taking the stale lock over: see what it leaves
      continue;
    }
    try {
      // Nobody else removes or replaces a stale lock now; a new one can appear only where the file is gone,
      // so only a file that is there and stale is removed.
      removeIfStale(file, live);
    } finally {
      if (ours(takeover)) rmSync(takeover, { force: true });
    }
  }
  throw new LepError('LEP_OUTPUT_LOCKED', `${flag} ${dir}: could not take ${file}\nHINT: run one command per output directory.`);
}
