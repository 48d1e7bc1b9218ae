/**
 * Runs async jobs a few at a time, in the order they were queued; a running job may queue more, which run
 * after those already waiting (the main job queues a vocabulary's evaluations when its adaptation ends).
 * Hand-written rather than a pool library (p-limit, p-queue) because the rule that matters here is the
 * failure rule: the first failure aborts `controller`, so the jobs still running stop at their next safe
 * point, no queued job starts, and the error is thrown once every started job has settled (so nothing is
 * still writing when the caller reports it).
 */

import { abortedError } from '../binding/runJob.js';

/** A queued job; `add` queues another. */
export type QueuedJob = (add: (job: QueuedJob) => void) => Promise<void>;

export async function runJobQueue(width: number, jobs: readonly QueuedJob[], controller?: AbortController): Promise<void> {
  const queue = [...jobs];
  let running = 0;
  let failure: { error: unknown } | undefined;
  // Idle workers wait for a change (a job queued or finished) while others still run and may queue more.
  let wake = (): void => {};
  let changed = new Promise<void>((r) => (wake = r));
  const notify = (): void => {
    const w = wake;
    changed = new Promise<void>((r) => (wake = r));
    w();
  };
  const add = (job: QueuedJob): void => {
    queue.push(job);
    notify();
  };
  const worker = async (): Promise<void> => {
    for (;;) {
      // Aborted from outside (the caller's signal) or by a failure: no queued job starts.
      if (failure !== undefined || controller?.signal.aborted) return;
      const job = queue.shift();
      if (job === undefined) {
        if (running === 0) return;
        await changed;
        continue;
      }
      running++;
      try {
        await job(add);
      } catch (error) {
        if (failure === undefined) {
          failure = { error };
          controller?.abort(error);
        }
      } finally {
        running--;
        notify();
      }
    }
  };
  // A width that is not a finite number (NaN from a bad thread count) runs one job at a time rather than none.
  await Promise.all(Array.from({ length: Number.isFinite(width) ? Math.max(1, Math.floor(width)) : 1 }, worker));
  if (failure !== undefined) throw failure.error;
  // Aborted from outside while no job ran to report it: the queued jobs did not run, which is not success.
  if (controller?.signal.aborted) throw abortedError(controller.signal);
}
