/**
 * Finds and loads the native addons, in this order (the first that loads wins):
 *   1. LEP_NATIVE (a directory holding lep.node, or the file itself): when set, the only place tried, so
 *      a broken LEP_NATIVE is reported rather than silently replaced by another build;
 *   2. a local source build: build/Release, build/Debug of this package (`npx lep build`, `npm run setup`);
 *   3. the prebuilt platform packages installed with lep (ts/binding/prebuilts.ts), the one whose
 *      libtorch is present on this machine first.
 * On failure one error lists every path tried with what it said, and the one fix that applies: the
 * `apt-get` line of runtime packages when a system library is missing, `npx lep build` when no
 * prebuilt fits this platform or a file is damaged or built against another libtorch.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';

import { LepError } from '../errors.js';
import { checkAddressSpace, mappingsAtLimit } from '../processMemory.js';
import { selectBlasCore } from './blasCore.js';
import { checkElf } from './checkElf.js';
import { noteThreads, threadsFromEnv } from './threadCount.js';
import { removeTrackedTemps } from '../util/tempPaths.js';
import type { NativeAddon, NativeSpmAddon } from './NativeTypes.js';
import { aptRuntimeLine, distroCodename, flavoursForThisMachine, prebuiltPackageName, type PrebuiltFlavour } from './prebuilts.js';
import { selectThreadWaits } from './threadWaits.js';

const require = createRequire(import.meta.url);
/** The package root: dist/ts/binding -> three levels up; ts/binding (sources) -> two. */
export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    dir = dirname(dir);
  }
  return resolve(start, '..', '..', '..');
}

interface Candidate {
  path: string;
  /** The prebuilt flavour this file comes from (undefined: LEP_NATIVE or a local build). */
  flavour?: PrebuiltFlavour;
  /** The file's sha256 as packed (prebuilts only: release:pack records it in the package's package.json). */
  sha256?: string;
}

/** What is wrong with a file before it is handed to dlopen (which can crash on a damaged file). */
function problemWith(c: Candidate): string | undefined {
  const elf = checkElf(c.path);
  if (elf) return elf;
  if (c.sha256 && createHash('sha256').update(readFileSync(c.path)).digest('hex') !== c.sha256)
    return 'its sha256 differs from the one recorded at release (damaged or replaced)';
  return undefined;
}

/** The sha256 release:pack recorded for a prebuilt file. */
function recordedSha256(dir: string, file: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { lep?: { sha256?: Record<string, string> } };
    return pkg.lep?.sha256?.[file];
  } catch {
    return undefined;
  }
}

/** The installed platform package's folder, if npm installed it (it is optional). */
function prebuiltDir(f: PrebuiltFlavour): string | undefined {
  try {
    return dirname(require.resolve(`${prebuiltPackageName(f)}/package.json`));
  } catch {
    return undefined;
  }
}

function candidates(file: string): { list: Candidate[]; prebuiltsHere: PrebuiltFlavour[] } {
  const list: Candidate[] = [];
  const env = process.env.LEP_NATIVE;
  const prebuiltsHere = flavoursForThisMachine();
  if (env) {
    list.push({ path: existsSync(env) && statSync(env).isDirectory() ? join(env, file) : env.replace(/lep(_spm)?\.node$/, file) });
    return { list, prebuiltsHere };
  }
  for (const build of ['Release', 'Debug']) list.push({ path: join(packageRoot, 'build', build, file) });
  for (const flavour of prebuiltsHere) {
    const dir = prebuiltDir(flavour);
    if (dir) list.push({ path: join(dir, file), flavour, sha256: recordedSha256(dir, file) });
  }
  return { list, prebuiltsHere };
}

/** The lep.node files the loader would try, in its order (for caches that depend on which one loads). */
export function addonCandidatePaths(): string[] {
  return candidates('lep.node').list.map((c) => c.path);
}

/**
 * dlopen with RTLD_NOW: every symbol is bound at load, so a .node built against another libtorch fails
 * here with "undefined symbol" instead of killing the process at its first call (Node's require binds
 * lazily).
 */
function dlopenNow(path: string): unknown {
  const module = { exports: {} };
  process.dlopen(module, path, constants.dlopen.RTLD_NOW);
  return module.exports;
}

const MISSING_LIBRARY = /(\S+\.so[^\s:]*): cannot open shared object file/;
// Libraries of CUDA and its kin that a build against a CUDA libtorch needs (cuDNN, cuBLAS, NCCL, libtorch's
// own CUDA parts). No prebuilt links them, and the runtime line does not bring them: installing it beside a
// CUDA libtorch would replace that libtorch (Debian's libtorch2.6 conflicts with libtorch-cuda-2.6).
const CUDA_LIBRARY = /^lib(cudnn|cuda|cudart|cublas|cublasLt|cufft|curand|cusolver|cusparse|cusparseLt|nccl|nvrtc|nvToolsExt|nvJitLink|cupti|torch_cuda|c10_cuda)[._]/;

function hint(file: string, failures: { candidate: Candidate; message: string }[], prebuiltsHere: PrebuiltFlavour[]): string {
  const build = 'build from source with `npx lep build` (needs a compiler, cmake and libtorch; see docs/install.md, "Other platforms")';
  const prebuiltFailures = failures.filter((f) => f.candidate.flavour);
  // A prebuilt's missing library first: its flavour says which packages bring it.
  const missing = prebuiltFailures.find((f) => MISSING_LIBRARY.test(f.message)) ?? failures.find((f) => MISSING_LIBRARY.test(f.message));
  const flavour = missing?.candidate.flavour ?? prebuiltsHere[0];
  const missingLib = missing ? MISSING_LIBRARY.exec(missing.message)![1]! : undefined;
  if (missingLib !== undefined && CUDA_LIBRARY.test(missingLib))
    return (
      `HINT: the CUDA library ${missingLib} is missing: this lep.node was built against a CUDA libtorch. Install the CUDA ` +
      'runtime libraries that libtorch needs (cuDNN: Debian\'s nvidia-cudnn, or NVIDIA\'s packages), or put the folder that holds ' +
      'them on LD_LIBRARY_PATH (an official libtorch keeps them in its lib/). Not the prebuilt\'s apt line: it would replace a CUDA libtorch.'
    );
  if (missing && flavour) {
    const lib = missingLib!;
    const codename = distroCodename();
    const onOtherDistro = codename !== '' && codename !== flavour.codename;
    return (
      `HINT: the system library ${lib} is missing; install the runtime packages (${flavour.distro}, libtorch ${flavour.torchVersion}):\n` +
      `  ${aptRuntimeLine(flavour)}\n` +
      (onOtherDistro ? `This machine is ${codename}, not ${flavour.codename}: if that line does not apply, ${build}.` : '')
    ).trimEnd();
  }
  if (process.env.LEP_NATIVE && failures.length === 0)
    return 'HINT: LEP_NATIVE names no lep.node: point it at the folder holding lep.node and lep_spm.node (or at lep.node itself), or unset it.';
  if (prebuiltFailures.length > 0)
    return `HINT: the file named above is damaged or was built against another libtorch: reinstall lep (npm install lep), or ${build}.`;
  if (failures.length > 0)
    return `HINT: the file named above is damaged or was built against another libtorch: rebuild it (\`npx lep build\`; in a clone \`npm run setup\`)${process.env.LEP_NATIVE ? ', or unset LEP_NATIVE' : ''}.`;
  if (prebuiltsHere.length > 0)
    return (
      `HINT: the prebuilt package ${prebuiltsHere.map(prebuiltPackageName).join(' or ')} is not installed ` +
      `(npm install skips optional packages with --omit=optional or --no-optional); reinstall lep, or ${build}.`
    );
  return `HINT: lep has no prebuilt ${file} for ${process.platform}-${process.arch}: ${build}. Set LEP_NATIVE to a lep.node built elsewhere.`;
}

/** Where each addon was loaded from (lep info prints it: which prebuilt flavour or build is in use). */
const loadedFrom = new Map<string, string>();

function describe(candidate: Candidate): string {
  return candidate.flavour ? `${candidate.path} (prebuilt for libtorch ${candidate.flavour.torchVersion}, ${candidate.flavour.distro})` : candidate.path;
}

function load<T>(file: string): T {
  const { list, prebuiltsHere } = candidates(file);
  const tried: string[] = [];
  const failures: { candidate: Candidate; message: string }[] = [];
  for (const candidate of list) {
    const label = describe(candidate);
    if (!existsSync(candidate.path)) {
      tried.push(`  ${label}: not found`);
      continue;
    }
    const problem = problemWith(candidate);
    if (problem) {
      tried.push(`  ${label}: ${problem}`);
      failures.push({ candidate, message: problem });
      continue;
    }
    try {
      const exports = dlopenNow(candidate.path) as T;
      loadedFrom.set(file, label);
      return exports;
    } catch (e) {
      const message = (e as Error).message.split('\n')[0]!;
      // The loader could not map the library's segments or allocate for it: memory, not a bad file
      // (a data or address-space ulimit, a cgroup limit); rebuilding would not help.
      if (/failed to map segment|cannot map zero-fill pages|cannot allocate memory/i.test(message)) {
        const maps = mappingsAtLimit();
        throw new LepError(
          'LEP_OUT_OF_MEMORY',
          `cannot load the native addon ${label}: ${message}\nHINT: ${
            maps
              ? `this process holds ${maps.mappings} memory mappings, at the kernel's limit vm.max_map_count=${maps.limit}, which fails a mapping however much memory is free: raise it (sysctl -w vm.max_map_count=262144, as root).`
              : "the process is out of memory or at a limit (ulimit -v or -d, a cgroup or job's memory limit): free memory or raise the limit."
          }`,
        );
      }
      tried.push(`  ${label}: ${message}`);
      failures.push({ candidate, message });
    }
  }
  throw new LepError('LEP_NATIVE_NOT_FOUND', `cannot load the native addon ${file}. Tried:\n${tried.join('\n')}\n${hint(file, failures, prebuiltsHere)}`);
}

let native: NativeAddon | undefined;
let spm: NativeSpmAddon | undefined;

/**
 * Debian 13's libtorch links OpenMPI and with it UCX, whose memory hooks patch mmap and malloc in every
 * process that loads libucs; on a fresh Debian 13 lep.node crashed in V8's heap allocator while it
 * registered (SIGSEGV, UCX's handler printing the backtrace), in about one run of three. lep uses Gloo,
 * never UCX, so the hooks are switched off before the first load (UCX reads these when it loads), unless
 * the user has set them.
 */
export function disableUcxMemoryHooks(): void {
  process.env.UCX_MEM_MMAP_HOOK_MODE ??= 'none';
  process.env.UCX_MEM_MALLOC_HOOKS ??= 'no';
}

/** How long process exit waits for running jobs to stop at their next progress report. */
const EXIT_WAIT_MS = 2000;
let exitingNow = false;

/** For the CLI's exitProcess, which ends the process with exitNow whatever runs: no wait at its 'exit'. */
export function markExitingNow(): void {
  exitingNow = true;
}

/**
 * process.exit() or an uncaught throw while a job computes: exit() would run libtorch's and oneDNN's
 * static destructors under the job's thread (a segfault, exit 139, instead of the script's code). lep's
 * 'exit' listener stops the jobs first (each at its next progress report) and waits for their threads;
 * one still computing after EXIT_WAIT_MS makes it end the process at once with the same code, after
 * removing lep's temporary outputs. Main thread only: a worker's jobs are stopped by its environment's
 * cleanup (cpp/common/NodeJob.h).
 */
function stopJobsAtExit(addon: Pick<NativeAddon, 'stopJobs' | 'exitNow'>): void {
  if (!isMainThread) return;
  process.on('exit', (code) => {
    if (exitingNow || addon.stopJobs(EXIT_WAIT_MS)) return;
    exitingNow = true;
    removeTrackedTemps();
    addon.exitNow(code);
  });
}

/** The libtorch addon, loaded on first use. */
export function getNative(): NativeAddon {
  if (!native) {
    checkAddressSpace('load');  // OpenBLAS's threads fail to start, uncaught, where the address space is short
    disableUcxMemoryHooks();  // first: the BLAS probes' children inherit it
    selectThreadWaits();  // OpenBLAS and libgomp read their idle-spin settings when they load (threadWaits.ts)
    selectBlasCore();  // sets OPENBLAS_CORETYPE before libtorch loads OpenBLAS (blasCore.ts)
    const loaded = load<NativeAddon>('lep.node');
    // LEP_THREADS is the default for library callers too (lep launch sets it for each rank; the CLI's
    // --threads sets it before the load); setThreads() comes after and wins. The main thread's load
    // only: a worker loading lep would reset what setThreads chose, process-wide.
    const threads = isMainThread ? threadsFromEnv() : undefined;
    if (threads !== undefined) {
      loaded.setThreads(threads);
      noteThreads(threads);
    }
    stopJobsAtExit(loaded);
    native = loaded;
  }
  return native;
}

/** The file lep.node was loaded from, with its prebuilt flavour ("" before it is loaded). */
export function nativeAddonPath(): string {
  return loadedFrom.get('lep.node') ?? '';
}

/** The libtorch addon if something loaded it already, without loading it. */
export function loadedNative(): NativeAddon | undefined {
  return native;
}

/** The SentencePiece addon, loaded on first use (a separate .node: protobuf symbol clash). */
export function getSpmNative(): NativeSpmAddon {
  if (!spm) {
    spm = load<NativeSpmAddon>('lep_spm.node');
    stopJobsAtExit(spm);
  }
  return spm;
}
