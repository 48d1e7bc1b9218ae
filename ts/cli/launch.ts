import { join } from 'node:path';

import { LepError } from '../errors.js';
import { launchProcesses } from '../train/launchProcesses.js';
import { intFlag, parse } from './args.js';

export const usage = `lep launch --nproc N [--nnodes M --node-rank K --master-addr HOST --master-port P] -- COMMAND...
  Starts N processes of COMMAND with the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
  MASTER_ADDR, MASTER_PORT); \`lep\` as COMMAND runs this lep. Output lines are prefixed with the rank;
  when one rank fails the others are stopped and lep launch exits 1 (LEP_LAUNCH_FAILED), naming the
  rank and its exit code.
Example: lep launch --nproc 2 -- lep train MODEL --data blocks.safetensors --out run --embeddings-only
  Several machines: run it on each with the same --nnodes, --master-addr, --master-port and its own
  --node-rank (or use torchrun / Slurm / Kubernetes: see docs/guide.md, "Training on several processes").`;

const MAIN = join(import.meta.dirname, 'main.js');

/** The ranks get the signal (launchProcesses forwards it) and stop by themselves. */
export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const dash = argv.indexOf('--');
  const own = dash >= 0 ? argv.slice(0, dash) : argv;
  const command = dash >= 0 ? argv.slice(dash + 1) : [];
  const flags = { nproc: { type: 'string' as const }, nnodes: { type: 'string' as const }, 'node-rank': { type: 'string' as const }, 'master-addr': { type: 'string' as const }, 'master-port': { type: 'string' as const } };
  const { values } = parse(own, flags, usage);
  if (values.help) return void console.log(usage);
  if (values.nproc === undefined) throw new LepError('LEP_BAD_OPTION', `missing --nproc\n\n${usage}`);
  if (command.length === 0) throw new LepError('LEP_BAD_OPTION', `missing the command after --\n\n${usage}`);
  // `lep ...` runs this very lep (same node, same build), whatever is on PATH.
  const argvOf = command[0] === 'lep' ? [process.execPath, MAIN, ...command.slice(1)] : command;
  const r = await launchProcesses(argvOf, {
    nproc: intFlag(values.nproc, '--nproc')!,
    nnodes: intFlag(values.nnodes, '--nnodes'),
    nodeRank: intFlag(values['node-rank'], '--node-rank'),
    masterAddr: values['master-addr'] as string | undefined,
    masterPort: intFlag(values['master-port'], '--master-port'),
  });
  // Ranks that stopped on the forwarded signal: dispatch.ts prints where the work stands and exits 130/143.
  if (r.interrupted) throw new LepError('LEP_INTERRUPTED', `the ranks stopped on ${r.interrupted} before their work was done`);
  if (r.failed) throw new LepError('LEP_LAUNCH_FAILED', `rank ${r.failed.rank} failed (${r.failed.signal ?? `exit code ${r.failed.code}`}); the other ranks were stopped`);
}
