/**
 * The memory this process may use: RAM plus swap, or, where its cgroup caps memory below RAM (a
 * container, a Slurm or Kubernetes job), that cap plus swap, or, lower still, what an address-space
 * limit (`ulimit -v`, as some clusters set) leaves. Above the cap the kernel's OOM killer ends a process
 * with SIGKILL and no message, so CPU training's preflight (train/trainMemory.ts) counts against it, and
 * `lep info` shows it. The cap comes from Node's process.constrainedMemory() (libuv reads cgroup v1 and
 * v2 for this process), not from parsing /sys here. A data limit (`ulimit -d`) is left to the allocations
 * that meet it, which fail with LEP_OUT_OF_MEMORY (a mapped model is not charged to it, and what lep's
 * libraries charge to it is hard to foresee).
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

import { computeThreads } from './binding/threadCount.js';
import { LepError } from './errors.js';

export interface ProcessMemory {
  /** What a run may use, swap included. */
  bytes: number;
  /**
   * 'machine': RAM + swap; 'cgroup': this process's cgroup memory limit, lower than RAM, + swap;
   * 'ulimit': what its address-space limit leaves (`addressSpace`), lower than both.
   */
  limit: 'machine' | 'cgroup' | 'ulimit';
  ramBytes: number;
  swapBytes: number;
  /** The address-space limit (`ulimit -v`), where one is set. */
  addressSpace?: AddressSpace;
  /**
   * Anonymous memory this process holds already (RssAnon: Node, libtorch, models it has loaded), which
   * a new run's memory comes on top of; absent for 'ulimit', whose `bytes` already leave out what is mapped.
   */
  heldBytes?: number;
}

/** An address-space limit (`ulimit -v`): it counts every mapping (libraries, mapped weights, stacks, arenas). */
export interface AddressSpace {
  limitBytes: number;
  /** Mapped now (VmSize). */
  usedBytes: number;
}

/**
 * The memory mappings this process holds and the kernel's limit on them (vm.max_map_count), when they
 * are within 5% of it: an mmap then fails with ENOMEM however much memory is free (the C++ side says the
 * same in its hints, core/error.h). Undefined otherwise, or where /proc cannot tell.
 */
export function mappingsAtLimit(): { mappings: number; limit: number } | undefined {
  try {
    const limit = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8'));
    const mappings = readFileSync('/proc/self/maps', 'utf8').split('\n').length - 1;
    return limit > 0 && mappings * 20 >= limit * 19 ? { mappings, limit } : undefined;
  } catch {
    return undefined;
  }
}

/** This process's address-space limit and use, if a limit is set (none where /proc cannot tell: not Linux). */
function addressSpace(): AddressSpace | undefined {
  try {
    const soft = /^Max address space\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
    if (soft === undefined || soft === 'unlimited') return undefined;
    const used = Number(/^VmSize:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
    return { limitBytes: Number(soft), usedBytes: used };
  } catch {
    return undefined;
  }
}

const left = (a: AddressSpace): number => Math.max(0, a.limitBytes - a.usedBytes);

/**
 * The address space a job needs free to start: OpenBLAS maps a 128 MiB buffer for each thread that runs
 * a product, and more comes besides (oneDNN's scratch, malloc's per-thread arenas). Measured here: a toy
 * model's 4-token generation on 2 threads took VmSize from 1.89 to 2.31 GB.
 */
function jobHeadroomBytes(threads: number): number {
  return (256 + 128 * threads) * 2 ** 20;
}

/** What loading lep.node maps (libtorch, oneDNN, OpenBLAS and its threads): VmSize went from 0.73 to 1.62 GB here. */
const LOAD_BYTES = 2 ** 30;

/** Whether libtorch is mapped in this process already (another thread loaded lep.node). */
function librariesMapped(): boolean {
  try {
    return readFileSync('/proc/self/maps', 'utf8').includes('libtorch_cpu');
  } catch {
    return false;
  }
}

/**
 * Refuses to load lep's native libraries (`load`) or start a native job (`job`) where the address-space
 * limit leaves less than that needs: there the BLAS and oneDNN fail in ways that cannot be caught. Under
 * `ulimit -v` a toy generation hung with OpenBLAS retrying its buffer, segfaulted, or aborted in a oneDNN
 * thread, a few MB apart; lower, OpenBLAS's threads failed to start as the library loaded (an abort).
 * Checked when a job starts, so a job's own allocations (a KV cache, activations) come on top; and
 * conservative: it may refuse a run that would have fitted by a few hundred MB.
 */
export function checkAddressSpace(what: 'load' | 'job'): void {
  const a = addressSpace();
  if (!a) return;
  const loading = what === 'load' && !librariesMapped();
  const threads = computeThreads();
  const need = jobHeadroomBytes(threads) + (loading ? LOAD_BYTES : 0);
  if (left(a) >= need) return;
  const needs = loading
    ? `loading lep's native libraries (libtorch, oneDNN, OpenBLAS: about ${gib(LOAD_BYTES)}) and starting a job on ${threads} threads need at least ${gib(need)}`
    : `a job on ${threads} threads needs at least ${gib(need)} more to start (its BLAS maps 128 MiB a thread)`;
  throw new LepError(
    'LEP_OUT_OF_MEMORY',
    `ulimit -v leaves this process ${gib(left(a))} of its ${gib(a.limitBytes)} address space (${gib(a.usedBytes)} is mapped), and ${needs}; ` +
      `short of that the BLAS and oneDNN fail in ways that cannot be caught (a hang, a crash)` +
      `\nHINT: raise the limit (ulimit -v unlimited, or ask the job scheduler for more virtual memory)${threads > 2 ? ', or use fewer threads (--threads N, LEP_THREADS)' : ''}; the model's own memory comes on top.`,
  );
}

export function processMemory(): ProcessMemory {
  let swapBytes = 0;
  try {
    swapBytes = Number(/SwapTotal:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    // Not Linux: RAM only.
  }
  const ramBytes = totalmem();
  // 0 (older Node) or a huge value when unconstrained.
  const cap = process.constrainedMemory?.() ?? 0;
  const physical: ProcessMemory = cap > 0 && cap < ramBytes
    ? { bytes: cap + swapBytes, limit: 'cgroup', ramBytes, swapBytes }
    : { bytes: ramBytes + swapBytes, limit: 'machine', ramBytes, swapBytes };
  const a = addressSpace();
  if (a && left(a) < physical.bytes) return { ...physical, bytes: left(a), limit: 'ulimit', addressSpace: a };
  return { ...physical, heldBytes: heldNow() };
}

/** RssAnon, or 0 where /proc cannot tell. */
function heldNow(): number {
  try {
    return Number(/^RssAnon:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** What a new run may still use: `bytes` less what this process holds already. */
export function spareBytes(m: Pick<ProcessMemory, 'bytes' | 'heldBytes'>): number {
  return m.bytes - (m.heldBytes ?? 0);
}

/** Bytes as "1.5 GiB", as the memory refusals print them. */
export const gib = (b: number): string => (b < 2 ** 30 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 2 ** 30).toFixed(1)} GiB`);

/** One line for `lep info` ("memory"). */
export function describeMemory(m: ProcessMemory): string {
  if (m.limit === 'ulimit' && m.addressSpace)
    return `${gib(m.bytes)} of address space left under ulimit -v (${gib(m.addressSpace.limitBytes)}, ${gib(m.addressSpace.usedBytes)} mapped now), below the machine's ${gib(m.ramBytes)} RAM + ${gib(m.swapBytes)} swap. CPU training's memory check counts against it`;
  return m.limit === 'cgroup'
    ? `${gib(m.bytes - m.swapBytes)}: this process's cgroup memory limit (a container's or job's), below the machine's ${gib(m.ramBytes)} RAM; + ${gib(m.swapBytes)} swap. CPU training's memory check counts against it`
    : `${gib(m.ramBytes)} RAM + ${gib(m.swapBytes)} swap, no lower cgroup limit`;
}

/** "this machine has 23.5 GiB (RAM + swap)", or the cgroup's limit: how refusals name what there is. */
export function memoryClause(m: Pick<ProcessMemory, 'bytes' | 'limit' | 'heldBytes'>): string {
  if (m.limit === 'ulimit') return `this process may map ${gib(m.bytes)} more (what its address-space limit, ulimit -v, leaves)`;
  const held = m.heldBytes ? `, ${gib(m.heldBytes)} of it held by this process already` : '';
  return m.limit === 'cgroup'
    ? `this process may use ${gib(m.bytes)} (its cgroup's memory limit + swap: a container's or job's, below the machine's RAM)${held}`
    : `this machine has ${gib(m.bytes)} (RAM + swap)${held}`;
}
