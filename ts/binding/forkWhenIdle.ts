/**
 * Starting a child process while a lep job runs in this process can hang that job: Node starts children
 * with fork(), OpenBLAS's pre-fork handler shuts its thread pool down, and a job inside a multithreaded
 * BLAS call at that moment waits forever for the work the pool lost (backtrace: the job's thread spins
 * in OpenBLAS's exec_blas, the new pool's thread sleeps with nothing queued). lep's own child processes
 * go through here.
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
