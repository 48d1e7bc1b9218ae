/**
 * The one way TS runs a native job: progress and AbortSignal wiring around the `{promise, abort}` handle
 * both addons return (cpp/common/NodeJob.h). Every stage starts its native jobs through here.
 *
 * The abort rule: a job whose signal is aborted rejects with a LepError of code `LEP_ABORTED` whose `cause`
 * is the signal's reason, however the native side ended (it threw LEP_ABORTED at its next report, or it
 * finished with a partial result such as a generation cut short or a training stopped early). What a job
 * made before it stopped reaches the caller through its progress events, never through the rejection.
 */
import { callNative, LepError, optionError, withCallerStack } from '../errors.js';
import { checkAddressSpace } from '../processMemory.js';
import { loadedNative } from './loadNative.js';
import type { NativeJob } from './NativeTypes.js';
import type { JobProgress } from './progress.js';

export interface JobOptions<E = JobProgress> {
  /** Progress events from the native job (a union over `phase`: binding/progress.ts). */
  onProgress?: (event: E) => void;
  /** Aborts the job; the promise rejects with a LepError `LEP_ABORTED` whose `cause` is the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The rejection of an aborted job: the native LEP_ABORTED error when the job raised one (its message says
 * where it stopped), else a new one; the signal's reason is the cause either way.
 */
export function abortedError(signal: AbortSignal, raised?: unknown): LepError {
  const reason: unknown = signal.reason;
  if (raised instanceof LepError && raised.code === 'LEP_ABORTED' && raised.cause === undefined) {
    const err = new LepError('LEP_ABORTED', raised.message, { cause: reason });
    err.stack = raised.stack;
    return err;
  }
  if (raised instanceof LepError && raised.code === 'LEP_ABORTED') return raised;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : '';
  return new LepError('LEP_ABORTED', `the job was aborted${why ? `: ${why}` : ''}`, { cause: reason });
}

/**
 * Runs a native job with AbortSignal and progress wiring (the abort rule above). `keepPartial`: a job that
 * finishes although the signal was aborted resolves with what it made, for a caller that keeps whole parts
 * of it and then rejects with LEP_ABORTED itself (propagate's per-target reports).
 */
export async function runJob<T, E = JobProgress>(
  start: (onProgress: (e: E) => boolean) => NativeJob<T>,
  options: JobOptions<E> = {},
  keepPartial = false,
): Promise<T> {
  checkJobOptions(options);
  const { signal, onProgress } = options;
  throwIfAborted(signal);
  if (loadedNative()) checkAddressSpace('job');  // a SentencePiece job alone maps no BLAS
  // A job that cannot start (no thread for it) throws here, synchronously: a LepError like a rejection.
  const job = callNative(() =>
    start((e) => {
      onProgress?.(e);
      return !signal?.aborted;
    }),
  );
  const onAbort = (): void => job.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await withCallerStack(job.promise);
    if (signal?.aborted && !keepPartial) throw abortedError(signal);
    return result;
  } catch (e) {
    if (signal?.aborted) throw abortedError(signal, e);
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * `signal` an AbortSignal and `onProgress` a function, or absent: from plain JavaScript a wrong value
 * failed inside the job's wiring with a bare TypeError.
 */
export function checkJobOptions(options: { signal?: unknown; onProgress?: unknown } | null | undefined): void {
  if (options === null || (options !== undefined && typeof options !== 'object')) throw optionError('options', 'an object', options);
  const { signal, onProgress } = options ?? {};
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw optionError('signal', 'an AbortSignal', signal);
  if (onProgress !== undefined && typeof onProgress !== 'function') throw optionError('onProgress', 'a function', onProgress);
}

/** The abort rule between native jobs (a stage's loop over batches or steps): LEP_ABORTED once the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}
