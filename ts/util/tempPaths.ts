/**
 * Temporary outputs (`NAME.tmp-PID`): the ones this process is writing are tracked so that an interrupted
 * command can remove them before it exits; ones left by a killed process (its PID no longer running) are
 * removed by the next command that writes next to them.
 */
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

// Each path with the number of writers of this process that have it in hand (two exports to one path may
// overlap): the last to finish untracks it.
const live = new Map<string, number>();

/** The temporary name lep writes `path` under before renaming it into place. */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}`;
}

export function trackTemp(path: string): void {
  live.set(path, (live.get(path) ?? 0) + 1);
}

export function untrackTemp(path: string): void {
  const n = live.get(path) ?? 0;
  if (n > 1) live.set(path, n - 1);
  else live.delete(path);
}

// Folders where native code writes temporaries of this process whose names TS cannot know in advance (a
// training checkpoint's step-N.tmp-PID): removeTrackedTemps removes this process's there too.
const liveDirs = new Set<string>();

export function trackTempsIn(dir: string): void {
  liveDirs.add(dir);
}

export function untrackTempsIn(dir: string): void {
  liveDirs.delete(dir);
}

/** Removes every temporary output this process still has (synchronous: safe in an `exit` handler). */
export function removeTrackedTemps(): string[] {
  for (const dir of liveDirs) {
    try {
      for (const name of readdirSync(dir)) if (name.endsWith(`.tmp-${process.pid}`)) live.set(join(dir, name), 1);
    } catch {
      // not made yet, or unreadable: nothing of ours to remove
    }
  }
  liveDirs.clear();
  const removed = [...live.keys()];
  for (const p of removed) {
    try {
      // A native job may still be writing into it as the process exits: retry, and never throw from here
      // (this runs in an `exit` handler, where a throw would replace the exit code).
      rmSync(p, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // left for the next run's orphan removal
    }
  }
  live.clear();
  return removed;
}

/** Whether a process with this id runs on this machine (EPERM: it runs as another user). */
export function pidAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped by its parent; a container's init can take seconds) answers the
  // signal too, but holds nothing: its state in /proc/PID/stat, after the last ')' of its name, is Z.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;  // no /proc (not Linux), or gone just now: kill answered, so count it alive
  }
}

const TEMP_NAME = /\.tmp-(\d+)$/;

/**
 * Removes the `*.tmp-PID` entries of `dir` whose PID is dead (another lep's, or this one's earlier life
 * when the PID was reused, is left alone), optionally only those whose name starts with `prefix`.
 * Returns the removed paths.
 */
export function removeOrphanTemps(dir: string, prefix = ''): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = TEMP_NAME.exec(n);
    if (!m || !n.startsWith(prefix) || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    rmSync(join(dir, n), { recursive: true, force: true });
    removed.push(join(dir, n));
  }
  return removed;
}
