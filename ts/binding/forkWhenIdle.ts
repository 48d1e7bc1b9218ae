/**
 * Starting a child process while a lep job runs in this process could hang that job: Node starts children
 * with fork(), OpenBLAS's pre-fork handler shuts its thread pool down, and a job inside a multithreaded
 * BLAS call at that moment waited forever for the work the pool lost (backtrace: the job's thread spins
 * in OpenBLAS's exec_blas). lep.node's fork gate (cpp/core/fork_gate.h) now makes a fork wait for a safe
 * point, up to LEP_FORK_WAIT_MS; waiting here instead never blocks the event loop and has no limit. lep's
 * own child processes go through here.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { loadedNative } from './loadNative.js';

/**
 * Calls `start` (which starts a child process) once no lep job is running in this process, and returns
 * what it returns. JavaScript runs one thing at a time and jobs start only from it, so no job can start
 * between the check and the call. Waits as long as the running jobs take.
 */
export async function forkWhenIdle<T>(start: () => T): Promise<T> {
  while ((loadedNative()?.runningJobs() ?? 0) > 0) await sleep(20);
  return start();
}
