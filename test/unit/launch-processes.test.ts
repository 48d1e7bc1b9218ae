// `lep launch`'s process group without the addon: the torchrun variables each rank gets, output lines
// prefixed with the rank, and a failing rank stopping the others (which would otherwise sit in a
// collective until their timeout).
import test from 'ava';

import { launchProcesses } from '../../ts/train/launchProcesses.js';

const node = (code: string) => [process.execPath, '-e', code];

test('each rank gets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and a free MASTER_PORT; lines carry the rank', async (t) => {
  const lines: string[] = [];
  const r = await launchProcesses(node('const e = process.env; console.log([e.RANK, e.WORLD_SIZE, e.LOCAL_RANK, e.LOCAL_WORLD_SIZE, e.MASTER_ADDR, e.MASTER_PORT].join(" "))'), {
    nproc: 3,
    onLine: (line) => lines.push(line),
  });
  t.deepEqual(r, { code: 0 });
  t.is(lines.length, 3);
  const port = lines[0]!.split(' ').pop();
  t.true(Number(port) > 0);
  for (const rank of [0, 1, 2]) t.true(lines.includes(`[rank ${rank}] ${rank} 3 ${rank} 3 127.0.0.1 ${port}`), lines.join('\n'));
});

test('several machines: ranks are numbered from node-rank x nproc', async (t) => {
  const lines: string[] = [];
  await launchProcesses(node('console.log(process.env.RANK, process.env.WORLD_SIZE, process.env.LOCAL_RANK)'), {
    nproc: 2, nnodes: 3, nodeRank: 2, masterAddr: '10.0.0.1', masterPort: 29500, onLine: (line) => lines.push(line),
  });
  t.deepEqual(lines.sort(), ['[rank 4] 4 6 0', '[rank 5] 5 6 1']);
});

test('a rank that fails stops the others and its exit code is the result', async (t) => {
  const t0 = Date.now();
  const lines: string[] = [];
  const r = await launchProcesses(node('if (process.env.RANK === "1") setTimeout(() => process.exit(3), 200); else setInterval(() => {}, 1000)'), {
    nproc: 3,
    onLine: (line) => lines.push(line),
  });
  t.is(r.code, 3);
  t.deepEqual(r.failed, { rank: 1, code: 3, signal: null });
  t.true(lines.includes('[rank 1] exited with code 3; stopping the other ranks'), lines.join('\n'));
  t.true(Date.now() - t0 < 4000, 'the sleeping ranks were stopped, not waited for');
});

test('bad launch options name the flag', async (t) => {
  await t.throwsAsync(launchProcesses(node(''), { nproc: 0 }), { message: /Expected a positive integer for nproc \(--nproc\) but received 0/ });
  await t.throwsAsync(launchProcesses(node(''), { nproc: 1, nnodes: 2, nodeRank: 2 }), { message: /node-rank/ });
  await t.throwsAsync(launchProcesses(node(''), { nproc: 1, nnodes: 2, nodeRank: 1 }), { message: /rank 0’s address and port when nnodes > 1/ });
  await t.throwsAsync(launchProcesses([], { nproc: 1 }), { message: /a command after --/ });
});
