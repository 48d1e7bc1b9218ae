/**
 * Ends this process with SIGKILL when the process that started it is gone or a deadline has passed, even
 * while its main thread is stuck in native code. For helper children whose parent waits for one answer
 * (the BLAS probe, blasProbe.ts): under a memory limit OpenBLAS can spin forever retrying an allocation
 * (0.3.21's blas_memory_alloc), and a child that no signal handler or timer of its own can end would
 * otherwise outlive a parent killed meanwhile, spinning on a core.
 *
 * A worker thread watches, because it has its own event loop: the main thread's timers never fire while
 * the main thread is blocked. It checks the parent by pid (tempPaths.ts `pidAlive`: an exited parent not
 * yet reaped counts as gone), not by `process.ppid`, which a worker reads once at its start. SIGKILL,
 * not an exception: the process is stuck, and a probe holds nothing to clean up.
 */
import { Worker, isMainThread, workerData } from 'node:worker_threads';

import { pidAlive } from './tempPaths.js';

interface Watch {
  parentPid: number;
  deadline: number;
}

const CHECK_EVERY_MS = 200;

/**
 * Starts the watchdog for this process: SIGKILL once `parentPid` is gone or after `timeoutMs`. Returns
 * false if no thread could be started (a thread limit): the parent's own timeout still bounds the child.
 */
export function exitWithParent(parentPid: number, timeoutMs: number): boolean {
  const watch: Watch = { parentPid, deadline: Date.now() + timeoutMs };
  try {
    // unref: a child that finishes its work exits without waiting for the watchdog. execArgv []: the
    // parent's flags (`--input-type`, say) can stop a worker from loading. A worker that fails later
    // emits 'error', which unhandled would end this process; the parent's timeout is the fallback then.
    const worker = new Worker(new URL(import.meta.url), { workerData: { lepWatchdog: watch }, execArgv: [] });
    worker.on('error', () => {});
    worker.unref();
    return true;
  } catch {
    return false;
  }
}

const watch = isMainThread ? undefined : (workerData as { lepWatchdog?: Watch } | null)?.lepWatchdog;
if (watch)
  setInterval(() => {
    if (!pidAlive(watch.parentPid) || Date.now() > watch.deadline) process.kill(process.pid, 'SIGKILL');
  }, CHECK_EVERY_MS);
