/** Shared test helpers: temporary directories and small real models with Mistral's real tokenizer. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { ExecutionContext } from 'ava';

import { createModel, forkWhenIdle, LepError, mistralTokenizerDir, type CreateModelOptions } from '../ts/index.js';

/** The lep CLI's entry point in the compiled tree (tests run from dist/test). */
export const LEP_CLI = join(import.meta.dirname, '..', 'ts', 'cli', 'main.js');

const made: string[] = [];
// One exit handler for all of them (a handler per directory trips Node's listener-leak warning).
process.on('exit', () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/**
 * `bash` and its arguments to run `command` under shell resource limits, e.g. `-f 1024` (file size, KiB),
 * `-d N` (data), `-u N` (processes): for spawnSync/execFile as `(...underUlimit(o, cmd), options)`.
 * bash's `ulimit` sets the rlimit, and `exec` makes the command that limited process itself (its pid, exit status and signals).
 */
export function underUlimit(limits: string, command: string[]): [string, string[]] {
  return ['bash', ['-c', `ulimit ${limits} && exec "$0" "$@"`, ...command]];
}

export function tempDir(prefix = 'lep-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A small random model; `embedStd` 1 gives peaked distributions so greedy decoding is stable across implementations. */
export async function tinyModel(options: Partial<CreateModelOptions> = {}): Promise<string> {
  const dir = join(tempDir(), 'model');
  await createModel(dir, {
    tokenizerDir: mistralTokenizerDir(),
    modelType: 'mistral',
    hiddenSize: 64,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    seed: 7,
    embedStd: 1,
    ...options,
  });
  return dir;
}

/** The values of a float32 tensor read from a safetensors file (a copy: its bytes may be unaligned). */
export function float32Values(t: { data: Uint8Array }): Float32Array {
  return new Float32Array(t.data.slice().buffer);
}

/** Largest absolute difference and where it is. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; at: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0;
  let at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) {
      diff = d;
      at = i;
    }
  }
  return { diff, at };
}

/**
 * The folder of the addons under test: LEP_NATIVE's (a folder, or lep.node itself) when set, as
 * scripts/ci/libtorch26.sh sets it to its libtorch 2.6 build, else this checkout's build/Release.
 */
export function nativeBuildDir(): string {
  const env = process.env.LEP_NATIVE;
  return env ? env.replace(/\/lep(_spm)?\.node$/, '') : join(import.meta.dirname, '..', '..', 'build', 'Release');
}

/** The abort rule (ts/binding/runJob.ts): the promise rejects with LEP_ABORTED whose cause is `reason`. */
export async function rejectsAborted(t: ExecutionContext, promise: Promise<unknown>, reason?: unknown): Promise<LepError> {
  const e = await t.throwsAsync(promise, { instanceOf: LepError });
  t.is(e.code, 'LEP_ABORTED', e.message);
  if (reason !== undefined) t.is(e.cause, reason);
  return e;
}

/**
 * A tmpfs of `bytes` mounted on a new temporary directory (root only), or why none can be made. mount and
 * umount start once no lep job runs in this process (forkWhenIdle): a fork during a job's threaded BLAS
 * call hangs that job (docs/architecture.md, "Known hazard"), and a test beside this one may be computing
 * (a CI run hung there: calibrate-answers' generation spinning in OpenBLAS's exec_blas, 2026-12-06).
 */
export async function smallFilesystem(bytes: number): Promise<{ dir: string; remove: () => Promise<void> } | string> {
  const dir = tempDir('lep-fs-');
  const r = await forkWhenIdle(() => spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'lep-test', dir], { encoding: 'utf8' }));
  if (r.status !== 0) return `cannot mount a tmpfs on ${dir}: ${(r.stderr || r.error?.message || '').trim()}`;
  return { dir, remove: async () => void (await forkWhenIdle(() => spawnSync('umount', ['-l', dir]))) };
}

/** A memory cgroup capped at `bytes` (v1's memory controller, or v2 with memory delegated at the root), or why none can be made. */
export function memoryCgroup(bytes: number): { procs: string; remove: () => void } | string {
  const name = `lep-test-${process.pid}`;
  const v2 = existsSync('/sys/fs/cgroup/cgroup.controllers');
  const dir = v2 ? join('/sys/fs/cgroup', name) : join('/sys/fs/cgroup/memory', name);
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'), String(bytes));
    return { procs: join(dir, 'cgroup.procs'), remove: () => rmdirSync(dir) };
  } catch (e) {
    return `cannot make the memory cgroup ${dir}: ${(e as Error).message}`;
  }
}
