// `lep launch`'s process group without the addon: the torchrun variables each rank gets, output lines
// prefixed with the rank, and a failing rank stopping the others (which would otherwise sit in a
// collective until their timeout).
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { tempDir } from '../helpers.js';

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
  const lines: string[] = [];
  // The other ranks sleep for ever: were they not stopped, this would not return (ava's timeout).
  const r = await launchProcesses(node('if (process.env.RANK === "1") setTimeout(() => process.exit(3), 200); else setInterval(() => {}, 1000)'), {
    nproc: 3,
    onLine: (line) => lines.push(line),
  });
  t.is(r.code, 3);
  t.deepEqual(r.failed, { rank: 1, code: 3, signal: null });
  t.true(lines.includes('[rank 1] exited with code 3; stopping the other ranks'), lines.join('\n'));
});

test('bad launch options name the flag', async (t) => {
  await t.throwsAsync(launchProcesses(node(''), { nproc: 0 }), { message: /Expected a positive integer for nproc \(--nproc\) but received 0/ });
  await t.throwsAsync(launchProcesses(node(''), { nproc: 1, nnodes: 2, nodeRank: 2 }), { message: /node-rank/ });
  await t.throwsAsync(launchProcesses(node(''), { nproc: 1, nnodes: 2, nodeRank: 1 }), { message: /rank 0’s address and port when nnodes > 1/ });
  await t.throwsAsync(launchProcesses([], { nproc: 1 }), { message: /a command after --/ });
});

const launchJs = new URL('../../ts/train/launchProcesses.js', import.meta.url).href;
const interruptJs = new URL('../../ts/cli/interrupt.js', import.meta.url).href;

/** Runs a launcher (node code using launchProcesses) in a process group of its own, as a shell runs a job. */
function launcher(code: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', `const { launchProcesses } = await import(${JSON.stringify(launchJs)});\n${code}`], { detached: true });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (out += d));
  const done = new Promise<string>((resolve) => child.on('close', () => resolve(out)));
  const waitFor = async (re: RegExp) => {
    while (!re.test(out)) await new Promise((r) => setTimeout(r, 50));
  };
  return { child, done, waitFor, out: () => out };
}

test('Ctrl-C (SIGINT to the launcher\'s whole process group) reaches each rank once; ranks that then stop early make the result interrupted', async (t) => {
  // Each rank counts the SIGINTs it gets for 2 s after the first; rank 0 then exits 130 (stopped early),
  // rank 1 exits 0 (its work was done).
  // Each rank also reports its process group (field 5 of /proc/self/stat): not the launcher's, or the
  // terminal's SIGINT would reach it beside the forwarded one (two SIGINTs sent within microseconds may
  // arrive as one, so the count alone cannot tell).
  const rank = 'let n = 0; process.on("SIGINT", () => { if (n++ === 0) setTimeout(() => { console.log("sigints " + n); process.exit(process.env.RANK === "0" ? 130 : 0); }, 2000); }); console.log("pgid " + require("fs").readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ")[2]); console.log("ready"); setInterval(() => {}, 1000);';
  const l = launcher(`const r = await launchProcesses([process.execPath, '-e', ${JSON.stringify(rank)}], { nproc: 2 }); console.log('result ' + JSON.stringify(r));`);
  await l.waitFor(/\[rank 0\] ready[^]*\[rank 1\] ready|\[rank 1\] ready[^]*\[rank 0\] ready/);
  const groups = [...l.out().matchAll(/\[rank \d\] pgid (\d+)/g)].map((m) => Number(m[1]));
  t.is(groups.length, 2);
  for (const g of groups) t.not(g, l.child.pid, 'a rank runs in its own process group, not the launcher\'s');
  process.kill(-l.child.pid!, 'SIGINT');
  const out = await l.done;
  t.regex(out, /\[rank 0\] sigints 1\n/, out);
  t.regex(out, /\[rank 1\] sigints 1\n/, out);
  t.regex(out, /result \{"code":0,"interrupted":"SIGINT"\}/, out);
});

test('every rank finishing after the signal: the result is not interrupted', async (t) => {
  const rank = 'process.on("SIGINT", () => setTimeout(() => process.exit(0), 300)); console.log("ready"); setInterval(() => {}, 1000);';
  const l = launcher(`const r = await launchProcesses([process.execPath, '-e', ${JSON.stringify(rank)}], { nproc: 2 }); console.log('result ' + JSON.stringify(r));`);
  await l.waitFor(/\[rank 0\] ready[^]*\[rank 1\] ready|\[rank 1\] ready[^]*\[rank 0\] ready/);
  l.child.kill('SIGINT');
  t.regex(await l.done, /result \{"code":0\}/);
});

test('a lep rank whose launcher is killed with SIGKILL stops by itself, as on SIGTERM', async (t) => {
  const dir = tempDir();
  // The rank installs lep's signal handling (as every lep command does) and waits for its stop signal.
  const rank = `const { handleInterrupts, interruptSignal } = await import(${JSON.stringify(interruptJs)});
    const { writeFileSync } = await import('node:fs');
    handleInterrupts('test', true);
    interruptSignal.addEventListener('abort', () => { writeFileSync(${JSON.stringify(dir)} + '/stopped-' + process.env.RANK, String(interruptSignal.reason?.message)); process.exit(143); });
    console.log('ready'); setInterval(() => {}, 1000);`;
  const l = launcher(`await launchProcesses([process.execPath, '--input-type=module', '-e', ${JSON.stringify(rank)}], { nproc: 2 });`);
  await l.waitFor(/\[rank 0\] ready[^]*\[rank 1\] ready|\[rank 1\] ready[^]*\[rank 0\] ready/);
  l.child.kill('SIGKILL');
  await l.done;
  // Without the watch the ranks would run for ever and this would wait until ava's timeout.
  while (!existsSync(join(dir, 'stopped-0')) || !existsSync(join(dir, 'stopped-1'))) await new Promise((r) => setTimeout(r, 100));
  t.regex(readFileSync(join(dir, 'stopped-0'), 'utf8'), /interrupted by SIGTERM/);
});
