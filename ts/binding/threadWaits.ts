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
 *   - `GOMP_SPINCOUNT` = 10000 (3000 and 30000 were slower; `OMP_WAIT_POLICY=passive`, no spin, too).
 * With both set, a CPU training job gives libtorch's pool the threads too (cpp/core/runtime.h
 * `short_thread_waits`): a small f32 step ran 1.14-1.16 s against 1.34-1.38 s with the pool at 1, on 2
 * cores (bench/README.md, "Thread waits"). Inference keeps the pool at 1: sharing made scoring slower.
 *
 * The user's own settings win (`OMP_WAIT_POLICY` counts for OpenMP). A library that is already in the
 * process (another addon loaded it) read its environment already: lep then sets nothing for it, so the
 * environment keeps saying what that library does, and training keeps libtorch's pool at 1.
 */
import { existsSync, readFileSync } from 'node:fs';

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

/**
 * What to set, given the environment and the text of /proc/self/maps (the libraries this process has
 * loaded; '' where unknown). Pure, for tests.
 */
export function decideThreadWaits(env: NodeJS.ProcessEnv, maps: string): ThreadWaitChoice {
  const set: Record<string, string> = {};
  const clauses = THREAD_WAIT_DEFAULTS.map(({ name, value, library, userAlso }) => {
    const user = [name, ...userAlso].find((v) => env[v] !== undefined);
    if (user) return `${user}=${env[user]} (yours)`;
    if (library.test(maps)) return `${name} unset (its library was loaded before lep)`;
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
  decided = decideThreadWaits(process.env, maps);
  Object.assign(process.env, decided.set);
}
