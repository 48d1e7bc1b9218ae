/**
 * A lock on an output directory that a long command writes into over time (training: checkpoints, log,
 * final model). A second command on the same directory is refused while the holder runs; a lock left by
 * a process that no longer runs (killed, machine rebooted) is taken over.
 */
import { hostname } from 'node:os';
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import { pidAlive } from './tempPaths.js';

/** The lock file inside the output directory. */
export const LOCK_FILE = 'lep.lock';

interface Holder {
  pid: number;
  host: string;
  command: string;
  since: string;
}

function readHolder(file: string): Holder | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Holder;
  } catch {
    return undefined; // unreadable or half-written by a killed process: treated as stale
  }
}

/**
 * Takes the lock on `dir` (which must exist) for `command`; returns the function that releases it.
 * `flag` names the option the directory came from.
 */
export function lockOutputDir(dir: string, flag: string, command: string): () => void {
  const file = join(dir, LOCK_FILE);
  const me: Holder = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw e;
      const h = readHolder(file);
      // Another machine's process cannot be checked from here: refused, the user decides.
      if (h && (h.host !== me.host || (h.pid !== process.pid && pidAlive(h.pid))))
        throw new LepError(
          'LEP_OUTPUT_LOCKED',
          `${flag} ${dir} is in use by ${h.command} (pid ${h.pid} on ${h.host}, since ${h.since}); two runs writing one directory would mix their checkpoints and logs\n` +
            `HINT: wait for that run to finish or stop it, or choose another ${flag}${h.host !== me.host ? `; if it no longer runs, delete ${file}` : ''}.`,
        );
      rmSync(file, { force: true }); // stale: its process is gone
      continue;
    }
    writeSync(fd, JSON.stringify(me));
    closeSync(fd);
    return () => {
      if (readHolder(file)?.pid === process.pid) rmSync(file, { force: true });
    };
  }
}
