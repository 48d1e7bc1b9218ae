/** Runtime facts and thread settings of the native core. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { blasCoreChoice, describeFeatures, parseCpuinfo, type CpuFeatures } from './binding/blasCore.js';
import { getNative, nativeAddonPath, packageRoot } from './binding/loadNative.js';
import { checkThreadCount, noteThreads } from './binding/threadCount.js';
import { threadWaitChoice } from './binding/threadWaits.js';
import type { NativeRuntimeInfo } from './binding/NativeTypes.js';
import { describeMemory, processMemory, type ProcessMemory } from './processMemory.js';

export interface LepInfo extends NativeRuntimeInfo {
  lepVersion: string;
  nodeVersion: string;
  /** CPU name with its family and model numbers ("AMD EPYC (family 26, model 2)"; the name alone where /proc/cpuinfo has no numbers) and the instruction sets that matter for matmul kernels ("AVX2, FMA, AVX-512, AVX-512 BF16"). */
  cpu: { model: string; features: string };
  /** Why the BLAS core in use (`blasCore`) is the one: chosen by lep, kept, or set by the user. */
  blasCoreReason: string;
  /** The lep.node in use: LEP_NATIVE, a local build, or a prebuilt package with its libtorch flavour. */
  nativeAddon: string;
  /** The training dtype that is fastest on this CPU, and why (`trainingDtypeHint`). */
  trainingDtype: TrainingDtypeHint;
  /** How long idle BLAS and OpenMP workers spin (binding/threadWaits.ts), and what CPU training does about it. */
  threadWaits: string;
  /** The memory this process may use (RAM, or a lower cgroup limit, + swap: processMemory.ts) and the line `lep info` prints. */
  memory: ProcessMemory & { description: string };
}

export interface TrainingDtypeHint {
  dtype: 'f32' | 'bf16';
  reason: string;
}

/**
 * Which training dtype is faster on a CPU with these features. A hint only: lep trains in f32 unless told
 * otherwise, since bf16 (mixed precision) changes the numerics. bf16 is named only where it was measured
 * faster (bench/README.md, "Training step"): with AMX, whose tile kernels (oneDNN) multiply bf16 several
 * times faster than OpenBLAS multiplies float32; and with AVX-512 BF16 alone, whose bf16 dot products
 * oneDNN uses too (a 2-core AMD EPYC, 2026-12-05, back-to-back runs of each dtype).
 */
export function trainingDtypeHint(f: Pick<CpuFeatures, 'amx' | 'avx512bf16'>): TrainingDtypeHint {
  const keep = 'lep uses f32 unless told, since bf16 changes the numerics';
  if (f.amx)
    return {
      dtype: 'bf16',
      reason: `this CPU has AMX: \`--dtype bf16\` (mixed precision, float32 master weights) trained 1.1-1.5x faster than f32 at the bench shapes on a 2-core AMX Xeon (bench/README.md); ${keep}`,
    };
  if (f.avx512bf16)
    return {
      dtype: 'bf16',
      reason: `this CPU has AVX-512 BF16 (no AMX): \`--dtype bf16\` (mixed precision, float32 master weights) trained 1.2-1.5x faster than f32 at the bench shapes on a 2-core AMD EPYC with it (bench/README.md); ${keep}`,
    };
  return { dtype: 'f32', reason: 'no bf16 matmul instructions (AMX, AVX-512 BF16): bf16 products are emulated here, likely slower than f32 (not measured by lep)' };
}

export function lepVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Versions, CPU features, BLAS in use (and why that core), thread settings and CUDA availability. */
export function lepInfo(): LepInfo {
  const native = getNative().info();  // loads the addon first, which makes the BLAS core choice
  let cpu = { model: 'unknown', features: 'unknown (no /proc/cpuinfo)' };
  let trainingDtype: TrainingDtypeHint = { dtype: 'f32', reason: 'the CPU features are unknown (no /proc/cpuinfo)' };
  if (existsSync('/proc/cpuinfo')) {
    const f = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
    cpu = { model: f.model, features: describeFeatures(f) };
    trainingDtype = trainingDtypeHint(f);
  }
  const choice = blasCoreChoice();
  let blasCoreReason = choice?.reason ?? 'the addon was loaded before lep could choose';
  // OpenBLAS ignores a core name it does not know (or cannot run here) and picks by itself, silently: a
  // user who set one learns it here. (OpenBLAS's names are the variable's, capitalised: SKYLAKEX, SkylakeX.)
  const asked = process.env.OPENBLAS_CORETYPE;
  if (asked && native.blasCore && !choice?.chosen && asked.toLowerCase() !== native.blasCore.toLowerCase())
    blasCoreReason += `, but OpenBLAS runs ${native.blasCore}: it does not know "${asked}" or cannot use it on this CPU`;
  const waits = threadWaitChoice()?.reason ?? 'unknown';
  const threadWaits = !native.blasCore
    ? `the BLAS is not OpenBLAS: libtorch's pool has the threads in every job`
    : native.trainingSharesPools
      ? `${waits}: short, so CPU training and float32 prompts in oneDNN give libtorch's pool the threads too`
      : `${waits}: long or unknown, so float32 CPU training and prompts keep libtorch's pool at 1`;
  const m = processMemory();
  const memory = { ...m, description: describeMemory(m) };
  return { lepVersion: lepVersion(), nodeVersion: process.version, cpu, blasCoreReason, nativeAddon: nativeAddonPath(), trainingDtype, threadWaits, memory, ...native };
}

/**
 * Sets the compute threads (0 = one per core). BLAS gets `threads`, libtorch's own pool stays at 1 when
 * OpenBLAS is in use, since both pools at full size oversubscribe the cores (5-9x slower steps measured).
 * Exceptions: a job gives libtorch's pool `threads` too where oneDNN or element-wise work does the most:
 * every job of a bf16/f16 model (its matmuls are oneDNN's, which use that pool), and a float32 model's
 * training and products of several rows (prompts, scoring, batched decoding) where idle workers sleep
 * soon (`lep info`, "thread waits"; cpp/core/compute_threads.h).
 * Defaults to LEP_THREADS, else one per core.
 */
export function setThreads(threads: number): void {
  const n = checkThreadCount(threads, 'threads', '--threads');
  getNative().setThreads(n);
  noteThreads(n);
}
