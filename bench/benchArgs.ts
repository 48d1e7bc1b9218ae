/** What the side-by-side benchmarks share: their common flags, and the median of repeated runs. */
import { cpus } from 'node:os';

import { optionError } from '../ts/errors.js';

/** Threads measured by default: 1 and one per core (just 1 on a one-core machine), because on small
 *  machines one thread per core can hurt single-token work. */
export const DEFAULT_THREADS = [...new Set([1, cpus().length])];

/** `--threads 1,2`: distinct positive integers. */
export function parseThreadList(value: unknown): number[] {
  const threads = String(value).split(',').map(Number);
  if (!threads.every((t) => Number.isInteger(t) && t >= 1)) throw optionError('threads', 'positive integers separated by commas', value, '--threads');
  return [...new Set(threads)];
}

/** A flag that must be a positive integer (`--reps`, `--steps`). */
export function positiveInt(value: unknown, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw optionError(name, 'a positive integer', value, `--${name}`);
  return n;
}

/** `--size`: one of the benchmark's named shapes. */
export function parseSize<K extends string>(value: unknown, sizes: Record<K, unknown>): K {
  if (typeof value !== 'string' || !(value in sizes)) throw optionError('size', Object.keys(sizes).join(', '), value, '--size');
  return value as K;
}

/** Median of repeated timings (robust to one run disturbed by a neighbour on a shared machine). */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
