/**
 * Chooses OpenBLAS's kernel set (its "core") before libtorch loads OpenBLAS.
 *
 * OpenBLAS built with DYNAMIC_ARCH (Debian's is) picks its kernels from the CPU's model number at load
 * time. A version older than the CPU does not know the model and falls back to a generic core: Debian
 * 12's 0.3.21 runs `Prescott` (SSE3 kernels) on Sapphire-Rapids-class Xeons, 26.6 GFLOP/s per core in f32
 * against 140.7 with `OPENBLAS_CORETYPE=SKYLAKEX` (docs/architecture.md, measured 2026-12-02). The model number
 * says nothing reliable to us either, so the rule works from instruction-set flags:
 *
 * 1. The user's own `OPENBLAS_CORETYPE` always wins; lep then does nothing.
 * 2. The CPU's level is read from /proc/cpuinfo flags: AVX-512 (F, CD, BW, DQ, VL: what OpenBLAS's
 *    SkylakeX kernels use), AVX2 + FMA (Haswell kernels), AVX (Sandybridge kernels).
 * 3. A child process loads the addon without an override and reports the core OpenBLAS picked
 *    (`openblas_get_corename`). Asking the library itself is the only way to know what this build of it
 *    does on this CPU: a table of OpenBLAS versions against CPU models would be stale with the next
 *    distribution or CPU, and this process cannot load the library twice. If that core's level is at
 *    least the CPU's, lep keeps it (this AMD EPYC: 0.3.21 picks Cooperlake by itself).
 * 4. Otherwise the library's choice was generic: a second child loads it with the core for the CPU's
 *    level (SKYLAKEX, HASWELL, SANDYBRIDGE) and runs a few f32/f64 products against a float64 loop
 *    (runtime.h: blas_self_check). Only if it loads that core, does not crash and computes within
 *    rounding does lep set `OPENBLAS_CORETYPE` for this process (and the processes it starts); else the
 *    library's own choice stays (older OpenBLAS builds are known to crash or compute wrongly with some
 *    cores on some processors).
 *
 * The probes cost two addon loads (about 2 s) once per machine: the result is cached in
 * `$XDG_CACHE_HOME/lep/blas-core.json` (else `~/.cache/lep/`), keyed by the CPU's model and flags, the
 * addon files the loader would try (path, size, modification time: a rebuild or reinstall probes again)
 * and the BLAS library's path, size and modification time, so an OpenBLAS upgrade probes again. Every
 * decision is cached (a BLAS that is not OpenBLAS too) except a probe that could not load the addon: that
 * is fixed by installing something, after which lep must probe again.
 * `lep info` prints the core in use and `blasCoreChoice().reason`.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { addonCandidatePaths } from './loadNative.js';
import { userCacheDir } from '../util/userCacheDir.js';

/** What a probe child reports (blasProbe.ts), or why it failed. */
export interface BlasProbe {
  /** `openblas_get_corename()` in the child, e.g. "Prescott"; "" when the BLAS is not OpenBLAS. */
  core: string;
  blasPath: string;
  f32Error: number;
  f64Error: number;
  /** Set when the child did not report: its exit status or signal and last stderr line. */
  failed?: string;
}

export interface CpuFeatures {
  model: string;
  avx: boolean;
  avx2: boolean;
  fma: boolean;
  avx512: boolean;
  avx512bf16: boolean;
  amx: boolean;
}

export interface BlasCoreChoice {
  /** The OPENBLAS_CORETYPE lep set for this process; undefined when it set none. */
  chosen?: string;
  /** Why, in a sentence for `lep info`. */
  reason: string;
  /** The core OpenBLAS picks by itself here, if a probe ran (or the cache knew it). */
  libraryDefault?: string;
}

/** Largest relative errors a correct f32 / f64 kernel stays under in blas_self_check (measured 3e-7 / 6e-16). */
export const BLAS_CHECK_TOLERANCE = { f32: 1e-4, f64: 1e-12 };
/**
 * How long a probe may take; one takes about 1 s (two addon loads and a few small products). A probe
 * stuck past it (OpenBLAS spinning on a failed allocation under a memory limit) is killed, by its own
 * watchdog (exitWithParent.ts) and by the parent's timeout, and lep keeps the library's choice for that run.
 */
export const PROBE_TIMEOUT_MS = 30_000;
/** Set in probe children so they load the library's own choice instead of choosing again. */
export const PROBE_ENV = 'LEP_BLAS_PROBE';

/** Instruction-set level: 0 SSE only, 1 AVX, 2 AVX2 + FMA, 3 AVX-512 (F/CD/BW/DQ/VL). */
export function cpuLevel(f: CpuFeatures): number {
  return f.avx512 ? 3 : f.avx2 && f.fma ? 2 : f.avx ? 1 : 0;
}

/** The OPENBLAS_CORETYPE for a level (names OpenBLAS accepts since 0.3.x); undefined for level 0. */
export function coreForLevel(level: number): string | undefined {
  return [undefined, 'SANDYBRIDGE', 'HASWELL', 'SKYLAKEX'][level];
}

/**
 * The instruction-set level a core's kernels use, by OpenBLAS's corename (case-insensitive). Unknown names
 * (newer cores such as SapphireRapids, other architectures) count as the best level: lep never replaces a
 * core it does not know.
 */
export function coreLevel(core: string): number {
  const c = core.toLowerCase();
  if (['skylakex', 'cooperlake', 'sapphirerapids'].includes(c)) return 3;
  if (['haswell', 'zen'].includes(c)) return 2;
  if (['sandybridge', 'bulldozer', 'piledriver', 'steamroller', 'excavator'].includes(c)) return 1;
  const sse = ['prescott', 'core2', 'penryn', 'dunnington', 'nehalem', 'atom', 'nano', 'opteron', 'opteron(sse3)',
    'barcelona', 'bobcat', 'athlon', 'katmai', 'coppermine', 'northwood', 'banias', 'generic'];
  return sse.includes(c) ? 0 : 3;
}

/** Features from /proc/cpuinfo's text (the first processor's flags line). */
export function parseCpuinfo(text: string): CpuFeatures {
  const flags = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? '').trim().split(/\s+/));
  const name = (/^model name\s*:(.*)$/m.exec(text)?.[1] ?? 'unknown CPU').trim();
  // The family and model numbers name the generation where the name does not: a virtual machine's "AMD
  // EPYC" was a Zen 5 (family 26) one day and, by its float32 matmul rate (less than half), an older one
  // days before, and bench records that said only the name could not tell the two apart.
  const family = /^cpu family\s*:\s*(\d+)/m.exec(text)?.[1];
  const number = /^model\s*:\s*(\d+)/m.exec(text)?.[1];
  const model = family && number ? `${name} (family ${family}, model ${number})` : name;
  const has = (...names: string[]): boolean => names.every((n) => flags.has(n));
  return {
    model,
    avx: has('avx'),
    avx2: has('avx2'),
    fma: has('fma'),
    avx512: has('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'),
    avx512bf16: has('avx512_bf16'),
    amx: has('amx_tile'),
  };
}

/** Names of the features present, for `lep info` ("AVX2, AVX-512, AVX-512 BF16"). */
export function describeFeatures(f: CpuFeatures): string {
  const names: [boolean, string][] = [[f.avx, 'AVX'], [f.avx2, 'AVX2'], [f.fma, 'FMA'], [f.avx512, 'AVX-512'],
    [f.avx512bf16, 'AVX-512 BF16'], [f.amx, 'AMX']];
  const on = names.filter(([b]) => b).map(([, n]) => n);
  return on.length ? on.join(', ') : 'none of AVX/AVX2/AVX-512/AMX';
}

function probeFailure(p: BlasProbe): string | undefined {
  if (p.failed) return p.failed;
  if (!(p.f32Error <= BLAS_CHECK_TOLERANCE.f32) || !(p.f64Error <= BLAS_CHECK_TOLERANCE.f64))
    return `its matmul check failed (relative error f32 ${p.f32Error.toExponential(1)}, f64 ${p.f64Error.toExponential(1)})`;
  return undefined;
}

/**
 * The decision, from the CPU's features, the library's own choice and (when that was generic) a probe of
 * the better core. Pure: the probes are run by the caller (`probe` is called at most once).
 */
export function decideBlasCore(cpu: CpuFeatures, libraryDefault: BlasProbe, probe: (core: string) => BlasProbe): BlasCoreChoice {
  const own = libraryDefault.core;
  if (libraryDefault.failed) return { reason: `kept the library's choice: the probe of it failed (${libraryDefault.failed})` };
  if (!own) return { reason: 'the BLAS in use is not OpenBLAS; nothing to choose' };
  const level = cpuLevel(cpu);
  const better = coreForLevel(level);
  if (!better || coreLevel(own) >= level)
    return { libraryDefault: own, reason: `OpenBLAS's own choice ${own} already uses this CPU's best instruction set; kept` };
  const tried = probe(better);
  const failure = probeFailure(tried) ??
    (tried.core.toLowerCase() === better.toLowerCase() ? undefined : `this OpenBLAS build loaded ${tried.core || 'nothing'} for it`);
  if (failure)
    return { libraryDefault: own, reason: `OpenBLAS picked the generic ${own}; ${better} was tried and rejected: ${failure}; kept ${own}` };
  return {
    chosen: better,
    libraryDefault: own,
    reason: `OpenBLAS picked the generic ${own} on a CPU with ${describeFeatures(cpu)}; set OPENBLAS_CORETYPE=${better}, ` +
      `which passed the matmul check (relative error f32 ${tried.f32Error.toExponential(1)}, f64 ${tried.f64Error.toExponential(1)})`,
  };
}

/** Runs blasProbe.js in a child with OPENBLAS_CORETYPE = core (unset when undefined). */
export function runBlasProbe(core: string | undefined, extraEnv: Record<string, string> = {}): BlasProbe {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, [PROBE_ENV]: '1' };
  delete env.OPENBLAS_VERBOSE;
  if (core === undefined) delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = core;
  const script = fileURLToPath(new URL('./blasProbe.js', import.meta.url));
  // The child's watchdog ends it at PROBE_TIMEOUT_MS, or when this process dies first; the parent's own
  // limit, a little later, is for a child that could not start one. SIGKILL: a stuck child ignores SIGTERM.
  const r = spawnSync(process.execPath, [script], {
    env, encoding: 'utf8', timeout: PROBE_TIMEOUT_MS + 5000, killSignal: 'SIGKILL',
  });
  const last = (s: string | null): string => (s ?? '').trim().split('\n').pop() ?? '';
  if (r.status === 0) {
    try {
      return JSON.parse(last(r.stdout)) as BlasProbe;
    } catch {
      /* reported below */
    }
  }
  // SIGKILL is the watchdog's or the timeout's: the child was stuck (a crashing core dies by SIGSEGV/SIGILL).
  const how = r.signal === 'SIGKILL'
    ? `did not finish within ${PROBE_TIMEOUT_MS / 1000} s and was killed (OpenBLAS can spin on an allocation that fails under a memory limit such as ulimit -v or -d)`
    : r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `exit status ${r.status}`;
  const why = last(r.stderr);
  return { core: '', blasPath: '', f32Error: NaN, f64Error: NaN, failed: `probe ${how}${why ? `: ${why}` : ''}` };
}

interface CacheEntry {
  key: string;
  blasPath: string;
  blasStamp: string;
  choice: BlasCoreChoice;
}

function cachePath(): string {
  return join(userCacheDir(), 'blas-core.json');
}

function stamp(path: string): string {
  if (!path) return 'none';
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

function readCache(key: string): BlasCoreChoice | undefined {
  try {
    const e = JSON.parse(readFileSync(cachePath(), 'utf8')) as CacheEntry;
    if (e.key === key && stamp(e.blasPath) === e.blasStamp) return e.choice;
  } catch {
    /* no cache yet, or unreadable: probe */
  }
  return undefined;
}

function writeCache(entry: CacheEntry): void {
  try {
    const path = cachePath();
    mkdirSync(dirname(path), { recursive: true });
    writeJsonAtomic(path, entry);
  } catch {
    /* a read-only home only costs the probes again next time */
  }
}

let decided: BlasCoreChoice | undefined;

/** The decision this process made (undefined before the addon was loaded). */
export function blasCoreChoice(): BlasCoreChoice | undefined {
  return decided;
}

/**
 * Sets OPENBLAS_CORETYPE when the library would pick a generic core (see the module comment). Must run
 * before the first load of the libtorch addon: OpenBLAS reads the variable once, when it is loaded.
 */
export function selectBlasCore(): void {
  if (decided || process.env[PROBE_ENV]) return;
  decided = choose();
  if (decided.chosen) process.env.OPENBLAS_CORETYPE = decided.chosen;
}

const LEVEL_NAMES = ['SSE', 'AVX', 'AVX2', 'AVX-512'];

/**
 * What a user's core leaves unused, for `lep info`: a machine's environment can set an older core than the
 * CPU runs (a Zen 5 EPYC whose environment said Haswell ran OpenBLAS's float32 products at about half the
 * rate of the Cooperlake core the library picks there by itself; bench/README.md).
 */
function belowCpu(user: string): string {
  if (process.platform !== 'linux' || process.arch !== 'x64' || !existsSync('/proc/cpuinfo')) return '';
  const best = cpuLevel(parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8')));
  const level = coreLevel(user);
  if (level >= best) return '';
  return ` (its kernels use ${LEVEL_NAMES[level]}, this CPU has ${LEVEL_NAMES[best]}: unset it for faster BLAS products, and lep checks and picks the core)`;
}

function choose(): BlasCoreChoice {
  const user = process.env.OPENBLAS_CORETYPE;
  if (user) return { reason: `OPENBLAS_CORETYPE=${user} is set in the environment; lep leaves it${belowCpu(user)}` };
  if (process.platform !== 'linux' || process.arch !== 'x64' || !existsSync('/proc/cpuinfo'))
    return { reason: 'not x86-64 Linux: the library chooses' };
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const cpu = parseCpuinfo(cpuinfo);
  const flagsLine = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? '';
  const addons = addonCandidatePaths().map((p) => `${p} ${stamp(p)}`).join('\n');
  const key = createHash('sha256').update(`${cpu.model}\n${flagsLine}\n${addons}`).digest('hex').slice(0, 16);
  const cached = readCache(key);
  if (cached) return cached;
  const own = runBlasProbe(undefined);
  const choice = decideBlasCore(cpu, own, (core) => runBlasProbe(core));
  if (!own.failed) writeCache({ key, blasPath: own.blasPath, blasStamp: stamp(own.blasPath), choice });
  return choice;
}
