// Child processes started while a lep job computes (Node forks for every spawn): OpenBLAS's pre-fork
// handler tears its thread pool down, and a job inside a threaded BLAS call then waited forever. lep's
// fork gate (cpp/core/fork_gate.h) makes a fork wait for a safe point. Before it, the first test's child
// hung within its first seconds (one token generated, then its job thread spinning in OpenBLAS's
// exec_blas_async_wait).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));
const TOY = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct');

// Generates in a loop on two BLAS threads while the main thread spawns `true` as often as it can; a
// stall of 20 s (no token; a generation of 32 tokens takes well under a second) counts as the hang.
const LOOP = `
import { spawnSync } from 'node:child_process';
const lep = await import(process.argv[1]);
lep.setThreads(2);
const m = await lep.LepModel.load(process.argv[2]);
let tokens = 0, forks = 0, last = Date.now(), running = true;
const loop = (async () => { while (running) await m.generate('Hello there', { maxNewTokens: 32, onText: () => { tokens++; last = Date.now(); } }); })();
const t0 = Date.now();
while (Date.now() - t0 < 8000) {
  await new Promise((r) => setTimeout(r, 1));
  spawnSync('true');
  forks++;
  if (Date.now() - last > 20000) { console.log(JSON.stringify({ hung: true, tokens, forks })); process.exit(3); }
}
running = false;
await loop;
console.log(JSON.stringify({ hung: false, tokens, forks }));
`;

test('spawning beside a generation on two BLAS threads does not hang it: each fork waits for a safe point', (t) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', LOOP, INDEX, TOY], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  t.is(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { hung: boolean; tokens: number; forks: number };
  t.log(out);
  t.false(out.hung);
  t.true(out.forks >= 20 && out.tokens >= 32, JSON.stringify(out));
  t.notRegex(r.stderr, /lep: a child process started/, 'no fork had to go without waiting');
});

// LEP_FORK_WAIT_MS=0: a fork does not wait, and lep says so once. One BLAS thread here, where OpenBLAS's
// pool is not used and the fork cannot hang the job.
const NO_WAIT = `
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
const lep = await import(process.argv[1]);
lep.setThreads(1);
const m = await lep.LepModel.load(process.argv[2]);
spawnSync('true');
writeSync(2, 'idle fork done\\n');
let forks = 0;
await m.generate('Hello', { maxNewTokens: 8, onText: () => { if (forks++ < 2) spawnSync('true'); } });
writeSync(2, 'job done\\n');
console.log(forks);
`;

test('a fork that may not wait (LEP_FORK_WAIT_MS=0) while a job computes is named once on stderr; one with no job running says nothing', (t) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', NO_WAIT, INDEX, TOY], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL', env: { ...process.env, LEP_FORK_WAIT_MS: '0' } });
  t.is(r.status, 0, r.stderr);
  t.true(Number(r.stdout.trim()) >= 2, `forks during the job: ${r.stdout}`);
  const warning = /lep: a child process started while a lep job had been computing without a safe point for the whole wait: OpenBLAS's pre-fork handler can leave that job waiting forever\. Start children with forkWhenIdle\(\(\) => spawn\(\.\.\.\)\) from lep, or from another process \(docs\/architecture\.md, "Known hazard"\)\. Said once\.\n/g;
  t.is(r.stderr.match(warning)?.length, 1, r.stderr);
  const at = r.stderr.search(warning);
  t.true(r.stderr.indexOf('idle fork done') < at && at < r.stderr.indexOf('job done'), r.stderr);
});
