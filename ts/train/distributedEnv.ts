/**
 * Data-parallel rendezvous from the environment, as torchrun (and `lep launch`, Slurm or Kubernetes
 * scripts written for torchrun) sets it: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT.
 * Validated here, once, before any native code runs; the native trainer joins a c10d group with it.
 */
import { LepError } from '../errors.js';

export interface DistributedEnv {
  /** This process's rank, 0 ≤ rank < worldSize; rank 0 writes checkpoints, logs and the model. */
  rank: number;
  /** Number of processes training together. */
  worldSize: number;
  /** Rank within this machine: which GPU a CUDA run uses. */
  localRank: number;
  /** Host of rank 0 (its c10d TCPStore); every rank must reach it. */
  masterAddr: string;
  /** Port of rank 0's TCPStore. */
  masterPort: number;
}

/** How long a rank waits for the others (rendezvous and every collective), in seconds. Defaults to `300`. */
export const DEFAULT_DIST_TIMEOUT_S = 300;
/** How embedding gradients are all-reduced. Defaults to `touched-rows` (see bench/README.md, "Data-parallel training"). */
export const DEFAULT_GRAD_SYNC = 'touched-rows';
export const GRAD_SYNC_MODES = ['dense', 'touched-rows'] as const;
export type GradSync = (typeof GRAD_SYNC_MODES)[number];

function envError(message: string): LepError {
  return new LepError(
    'LEP_DIST_ENV',
    `${message}\nHINT: start every process with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (torchrun does this), or use \`lep launch --nproc N -- lep train ...\`.`,
  );
}

function integer(env: Record<string, string | undefined>, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isInteger(n) || n < min || n > max)
    throw envError(`Expected an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`} for ${name} but received ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`);
  return n;
}

/**
 * The rendezvous this process is part of, or undefined for a single process (WORLD_SIZE unset or 1).
 * Throws LEP_DIST_ENV naming the variable when the set is incomplete or inconsistent.
 */
// `Record` rather than NodeJS.ProcessEnv: public types must not need @types/node.
export function readDistributedEnv(env: Record<string, string | undefined> = process.env): DistributedEnv | undefined {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE.trim() === '') {
    // RANK alone would start N independent single-process runs writing one output directory.
    if (env.RANK !== undefined && env.RANK.trim() !== '') throw envError(`RANK is set (${JSON.stringify(env.RANK)}) but WORLD_SIZE is not`);
    return undefined;
  }
  const worldSize = integer(env, 'WORLD_SIZE', 1);
  if (worldSize === 1) return undefined;
  const rank = integer(env, 'RANK', 0);
  if (rank >= worldSize) throw envError(`RANK ${rank} is not below WORLD_SIZE ${worldSize} (ranks are 0..${worldSize - 1})`);
  const localRank = env.LOCAL_RANK === undefined ? 0 : integer(env, 'LOCAL_RANK', 0);
  const masterAddr = env.MASTER_ADDR?.trim();
  if (!masterAddr) throw envError(`WORLD_SIZE is ${worldSize} but MASTER_ADDR (the host of rank 0) is not set`);
  const masterPort = integer(env, 'MASTER_PORT', 1, 65535);
  return { rank, worldSize, localRank, masterAddr, masterPort };
}
