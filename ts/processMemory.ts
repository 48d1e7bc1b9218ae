/**
 * The memory this process may use: RAM plus swap, or, where its cgroup caps memory below RAM (a
 * container, a Slurm or Kubernetes job), that cap plus swap. Above the cap the kernel's OOM killer ends a
 * process with SIGKILL and no message, so CPU training's preflight (train/trainMemory.ts) counts against
 * it, and `lep info` shows it. The cap comes from Node's process.constrainedMemory() (libuv reads cgroup
 * v1 and v2 for this process), not from parsing /sys here.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';

export interface ProcessMemory {
  /** What a run may use, swap included. */
  bytes: number;
  /** 'machine': RAM + swap; 'cgroup': this process's cgroup memory limit, lower than RAM, + swap. */
  limit: 'machine' | 'cgroup';
  ramBytes: number;
  swapBytes: number;
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
  return cap > 0 && cap < ramBytes
    ? { bytes: cap + swapBytes, limit: 'cgroup', ramBytes, swapBytes }
    : { bytes: ramBytes + swapBytes, limit: 'machine', ramBytes, swapBytes };
}

/** Bytes as "1.5 GiB", as the memory refusals print them. */
export const gib = (b: number): string => (b < 2 ** 30 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 2 ** 30).toFixed(1)} GiB`);

/** One line for `lep info` ("memory"). */
export function describeMemory(m: ProcessMemory): string {
  return m.limit === 'cgroup'
    ? `${gib(m.bytes - m.swapBytes)}: this process's cgroup memory limit (a container's or job's), below the machine's ${gib(m.ramBytes)} RAM; + ${gib(m.swapBytes)} swap. CPU training's memory check counts against it`
    : `${gib(m.ramBytes)} RAM + ${gib(m.swapBytes)} swap, no lower cgroup limit`;
}

/** "this machine has 23.5 GiB (RAM + swap)", or the cgroup's limit: how refusals name what there is. */
export function memoryClause(m: Pick<ProcessMemory, 'bytes' | 'limit'>): string {
  return m.limit === 'cgroup'
    ? `this process may use ${gib(m.bytes)} (its cgroup's memory limit + swap: a container's or job's, below the machine's RAM)`
    : `this machine has ${gib(m.bytes)} (RAM + swap)`;
}
