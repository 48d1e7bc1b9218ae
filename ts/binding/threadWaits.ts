/**
 * How long idle OpenBLAS and OpenMP worker threads spin before they sleep, set before libtorch loads both.
 *
 * A CPU training step alternates matmuls (OpenBLAS's pool) with element-wise work (libtorch's OpenMP pool:
 * the loss softmax over the logits, norms, AdamW). With one pool at 1 thread the element-wise half runs on
 * one core; with both at full size each pool's idle workers spin for a while after their work and take the
 * cores from the other pool's: OpenBLAS's for 2^28 cycles (about 0.1 s) by default, libgomp's for 300000
 * spins. Both libraries read their setting once, when they load, from the environment:
 *   - `OPENBLAS_THREAD_TIMEOUT` = 20 (2^20 cycles, about 0.4 ms at 2.5 GHz): long enough that decoding's
 *     back-to-back one-row products still find the workers awake (16 made decoding 15-20 % slower), short
 *     enough that the OpenMP workers get the cores;
 *   - `GOMP_SPINCOUNT` = 10000 (30000 was slower, and so was 3000 with the timeout at 20;
 *     `OMP_WAIT_POLICY=passive`, no spin, too).
 * With both set, a CPU training job gives libtorch's pool the threads too (cpp/core/runtime.h
 * `training_shares_pools`, which takes 20 and 30000 spins as the most it shares with: the numbers here and
 * there go together): a small f32 step ran about 15 % faster on 2 cores (bench/README.md, "Thread
 * waits"). Inference keeps the pool at 1 where the BLAS runs a float32 model's products: sharing made
 * scoring slower there (cpp/core/compute_threads.h says where it does not).
 *
 * The user's own settings win (`OMP_WAIT_POLICY` counts for OpenMP). A library that is already in the
 * process (another addon loaded it) read its environment already: lep then sets nothing for it, so the
 * environment keeps saying what that library does, and training keeps libtorch's pool at 1. Child
 * processes inherit what lep set, as they do `OPENBLAS_CORETYPE`; `SET_BY_LEP` names it, so a child
 * lep reports those values as lep's, not the user's. In a worker thread `process.env` is the thread's own
 * copy and does not reach native libraries, so lep sets nothing there.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

/** lep's defaults, each with the library it is for (a pattern of its file name in /proc/self/maps). */
export const THREAD_WAIT_DEFAULTS = [
  { name: 'OPENBLAS_THREAD_TIMEOUT', value: '20', library: /libopenblas/, userAlso: [] as string[] },
  { name: 'GOMP_SPINCOUNT', value: '10000', library: /libgomp/, userAlso: ['OMP_WAIT_POLICY'] },
] as const;

export interface ThreadWaitChoice {
  /** The variables lep set, e.g. { OPENBLAS_THREAD_TIMEOUT: '20' }. */
  set: Record<string, string>;
  /** One clause per variable: set by lep, left to the user, or not set since the library was loaded. */
  reason: string;
}

/** The variable that names the values lep set, for the processes this one starts. */
export const SET_BY_LEP = 'LEP_THREAD_WAITS';  // a process.env name, not an error code

/**
 * What to set, given the environment, the text of /proc/self/maps (the libraries this process has
 * loaded; '' where unknown) and whether `process.env` reaches native code (not in a worker thread).
 * Pure, for tests.
 */
export function decideThreadWaits(env: NodeJS.ProcessEnv, maps: string, canSet = true): ThreadWaitChoice {
  const set: Record<string, string> = {};
  const inherited = new Set((env[SET_BY_LEP] ?? '').split(' '));
  const clauses = THREAD_WAIT_DEFAULTS.map(({ name, value, library, userAlso }) => {
    const given = [name, ...userAlso].find((v) => env[v] !== undefined);
    if (given) return `${given}=${env[given]} (${inherited.has(`${given}=${env[given]}`) ? "lep's, inherited" : 'yours'})`;
    if (library.test(maps)) return `${name} unset (its library was loaded before lep)`;
    if (!canSet) return `${name} unset (lep loaded in a worker thread, whose process.env does not reach native libraries)`;
    set[name] = value;
    return `${name}=${value} (lep's)`;
  });
  return { set, reason: clauses.join(', ') };
}

let decided: ThreadWaitChoice | undefined;

/** The choice this process made (undefined before the addon was loaded). */
export function threadWaitChoice(): ThreadWaitChoice | undefined {
  return decided;
}

/** Sets lep's thread-wait defaults where the user has not; must run before the first load of lep.node. */
export function selectThreadWaits(): void {
  if (decided) return;
  const maps = existsSync('/proc/self/maps') ? readFileSync('/proc/self/maps', 'utf8') : '';
  decided = decideThreadWaits(process.env, maps, isMainThread);
  const pairs = Object.entries(decided.set).map(([k, v]) => `${k}=${v}`);
  if (pairs.length === 0) return;
  Object.assign(process.env, decided.set);
  process.env[SET_BY_LEP] = pairs.join(' ');
}
