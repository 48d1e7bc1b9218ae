import { cpus } from 'node:os';

import { optionError } from '../errors.js';

/**
 * The most compute threads lep accepts: more than any machine it runs on has cores. Unbounded, 1e9 made
 * libgomp abort the whole process allocating 224 GB for its pool at the next job.
 */
export const MAX_THREADS = 1024;

/** `threads` as a thread count (0: one per core), or LEP_BAD_OPTION naming where it came from. */
export function checkThreadCount(threads: unknown, name: string, flag?: string): number {
  if (typeof threads !== 'number' || !Number.isInteger(threads) || threads < 0 || threads > MAX_THREADS)
    throw optionError(name, `an integer from 0 (one per core) to ${MAX_THREADS}`, threads, flag);
  return threads;
}

/** LEP_THREADS as a thread count (LEP_BAD_OPTION if it is not one), or undefined when unset or empty. */
export function threadsFromEnv(): number | undefined {
  const name = 'LEP_THREADS', value = process.env[name]?.trim();
  if (!value) return undefined;
  return checkThreadCount(/^\d+$/.test(value) ? Number(value) : value, name);
}

/** The thread count lep.node was last given in this thread (by its load from LEP_THREADS, or setThreads). */
let given: number | undefined;

/** Notes what lep.node was told (0: one per core), for `computeThreads`. */
export function noteThreads(threads: number): void {
  given = threads;
}

/**
 * The compute threads a job runs with: what lep.node was told, else LEP_THREADS, else one per core
 * (os.cpus(), the count lep.node's own default, hardware_concurrency, sees too).
 */
export function computeThreads(): number {
  const n = given ?? threadsFromEnv() ?? 0;
  return n > 0 ? n : Math.max(1, cpus().length);
}
