/**
 * `lep launch`: starts N processes of one command on this machine with the variables torchrun sets
 * (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), prefixes every output line
 * with its rank, and stops the whole group when one member fails — a rank that died leaves the others
 * blocked in a collective until their timeout, so the launcher ends them at once instead.
 *
 * Signals: the ranks run in their own process group (`detached`), so a terminal's Ctrl-C, which goes to
 * the whole foreground group, reaches the launcher alone, and the launcher passes it on once: a rank that
 * got it twice (once from the terminal, once forwarded) would quit at once instead of stopping at its next
 * safe point. A second Ctrl-C is forwarded again and makes the ranks quit at once, as a second signal does
 * for any lep command. As the ranks then outlive a launcher killed with SIGKILL, each gets
 * LEP_LAUNCHER_PID, and a lep rank stops by itself when that process is gone (ts/cli/interrupt.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';

import { optionError } from '../errors.js';

export interface LaunchOptions {
  /** Processes on this machine. */
  nproc: number;
  /** Machines taking part (each runs `lep launch` with its own nodeRank). Defaults to `1`. */
  nnodes?: number;
  /** This machine's index among nnodes; its ranks are nodeRank × nproc … + nproc − 1. Defaults to `0`. */
  nodeRank?: number;
  /** Rank 0's host. Defaults to `127.0.0.1`. */
  masterAddr?: string;
  /** Rank 0's rendezvous port. Defaults to a free port (single machine); required with nnodes > 1. */
  masterPort?: number;
  /** Environment for the children (the rank variables are added). Defaults to `process.env`. */
  // Plain types in the public signature: NodeJS.* would make consumers need @types/node.
  env?: Record<string, string | undefined>;
  /** Receives each output line, already prefixed with `[rank N] `. Defaults to writing to this process's stdout/stderr. */
  onLine?: (line: string, stream: 'stdout' | 'stderr', rank: number) => void;
  /** Grace period between SIGTERM and SIGKILL when stopping the group, in ms. Defaults to `5000`. */
  killAfterMs?: number;
}

export interface LaunchResult {
  /** 0 when every rank exited with 0; otherwise the first failing rank's code (1 for a signal). */
  code: number;
  /** The first rank that failed, with how. */
  failed?: { rank: number; code: number | null; signal: string | null };
  /**
   * The signal forwarded to the ranks, when some rank then exited other than with 0 (it stopped before
   * its work was done); absent when every rank finished although a signal came.
   */
  interrupted?: 'SIGINT' | 'SIGTERM';
}

/** A TCP port free on this machine now (the children bind it moments later, as torchrun does). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function check(o: LaunchOptions): void {
  if (!Number.isInteger(o.nproc) || o.nproc < 1) throw optionError('nproc', 'a positive integer', o.nproc, '--nproc');
  const nnodes = o.nnodes ?? 1;
  if (!Number.isInteger(nnodes) || nnodes < 1) throw optionError('nnodes', 'a positive integer', o.nnodes, '--nnodes');
  const nodeRank = o.nodeRank ?? 0;
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nnodes) throw optionError('nodeRank', `an integer in 0..${nnodes - 1}`, o.nodeRank, '--node-rank');
  if (o.masterPort !== undefined && (!Number.isInteger(o.masterPort) || o.masterPort < 1 || o.masterPort > 65535))
    throw optionError('masterPort', 'an integer in 1..65535', o.masterPort, '--master-port');
  if (nnodes > 1 && (o.masterPort === undefined || o.masterAddr === undefined))
    throw optionError('masterAddr/masterPort', 'rank 0’s address and port when nnodes > 1 (every machine must use the same)', o.masterAddr, '--master-addr/--master-port');
}

/** Runs `command` (program and arguments) as nproc ranks and resolves when all have exited. */
export async function launchProcesses(command: string[], options: LaunchOptions): Promise<LaunchResult> {
  check(options);
  if (command.length === 0) throw optionError('command', 'a command after --', command, '--');
  const nnodes = options.nnodes ?? 1;
  const nodeRank = options.nodeRank ?? 0;
  const masterAddr = options.masterAddr ?? '127.0.0.1';
  const masterPort = options.masterPort ?? (await freePort(masterAddr));
  const env = options.env ?? process.env;
  const worldSize = nnodes * options.nproc;
  // The machine's cores split between the local ranks (what torchrun does with OMP_NUM_THREADS).
  const threads = env.LEP_THREADS ?? String(Math.max(1, Math.floor(availableParallelism() / options.nproc)));
  const onLine = options.onLine ?? ((line, stream) => (stream === 'stdout' ? process.stdout : process.stderr).write(`${line}\n`));

  const children: ChildProcess[] = [];
  let failed: LaunchResult['failed'];
  let stopping = false;
  let forwarded: 'SIGINT' | 'SIGTERM' | undefined;
  let unfinished = false;
  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    setTimeout(() => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, options.killAfterMs ?? 5000).unref();
  };
  // A signal to the launcher goes to every rank, and their exits are then not failures: each rank stops at
  // its own safe point (training: the next step, with a checkpoint) instead of being terminated mid-write.
  const forward = (signal: 'SIGINT' | 'SIGTERM') => () => {
    stopping = true;
    forwarded ??= signal;
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
  };
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    const exits = Array.from({ length: options.nproc }, (_, localRank) => {
      const rank = nodeRank * options.nproc + localRank;
      const child = spawn(command[0]!, command.slice(1), {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: {
          LEP_LAUNCHER_PID: String(process.pid),
          ...env,
          RANK: String(rank),
          WORLD_SIZE: String(worldSize),
          LOCAL_RANK: String(localRank),
          LOCAL_WORLD_SIZE: String(options.nproc),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(masterPort),
          LEP_THREADS: threads,
        },
      });
      children.push(child);
      for (const stream of ['stdout', 'stderr'] as const)
        createInterface({ input: child[stream]! }).on('line', (line) => onLine(`[rank ${rank}] ${line}`, stream, rank));
      return new Promise<void>((resolve) => {
        child.once('error', (e) => {
          onLine(`[rank ${rank}] cannot start ${command[0]}: ${e.message}`, 'stderr', rank);
          failed ??= { rank, code: 127, signal: null };
          stopAll();
          resolve();
        });
        child.once('close', (code, signal) => {
          if (code !== 0 || signal !== null) unfinished = true;
          if ((code !== 0 || signal !== null) && !stopping) {
            failed ??= { rank, code, signal };
            onLine(`[rank ${rank}] exited with ${signal ?? `code ${code}`}; stopping the other ranks`, 'stderr', rank);
            stopAll();
          }
          resolve();
        });
      });
    });
    await Promise.all(exits);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  const interrupted = forwarded && unfinished ? { interrupted: forwarded } : {};
  if (!failed) return { code: 0, ...interrupted };
  return { code: failed.code !== null && failed.code !== 0 ? failed.code : 1, failed, ...interrupted };
}
