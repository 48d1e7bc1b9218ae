/**
 * exitWithParent: a child whose main thread is stuck (here in Atomics.wait, which no timer or signal
 * handler of its own can interrupt, like OpenBLAS spinning in native code) still ends at its deadline and
 * when its parent dies.
 */
import { spawn, spawnSync } from 'node:child_process';

import test from 'ava';

import { pidAlive } from '../../ts/util/tempPaths.js';

const watchdogJs = new URL('../../ts/util/exitWithParent.js', import.meta.url).href;

/** Module code for a child that starts the watchdog and then blocks its main thread (for `block` ms). */
function stuckChild(timeoutMs: number, blockMs = 600_000): string {
  return `const { exitWithParent } = await import(${JSON.stringify(watchdogJs)});
    if (!exitWithParent(process.ppid, ${timeoutMs})) process.exit(3);
    console.log('blocking ' + process.pid);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${blockMs});
    console.log('unblocked');`;
}

test('a stuck child ends at its deadline (SIGKILL)', (t) => {
  const started = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', stuckChild(500)], { encoding: 'utf8', timeout: 120_000 });
  t.is(r.signal, 'SIGKILL', `${r.stdout}${r.stderr}`);
  t.regex(r.stdout, /^blocking \d+\n$/, 'killed while blocked, not after');
  t.true(Date.now() - started < 110_000, 'killed by its watchdog, not by this test\'s timeout');
});

test('a child that finishes exits normally: the watchdog does not keep it alive or kill it', (t) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', stuckChild(60_000, 100)], { encoding: 'utf8', timeout: 30_000 });
  t.is(r.status, 0, `${r.signal} ${r.stdout}${r.stderr}`);
  t.regex(r.stdout, /unblocked/);
});

test('a stuck child ends when its parent is killed with SIGKILL', async (t) => {
  // parent → stuck child (10-minute deadline, so only the parent check can end it within this test).
  const parentCode = `const { spawn } = await import('node:child_process');
    spawn(process.execPath, ['--input-type=module', '-e', ${JSON.stringify(stuckChild(600_000))}], { stdio: ['ignore', 'inherit', 'inherit'] });
    setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['--input-type=module', '-e', parentCode]);
  let out = '';
  parent.stdout.on('data', (d: Buffer) => (out += d));
  parent.stderr.on('data', (d: Buffer) => (out += d));
  while (!/blocking (\d+)/.test(out)) await new Promise((r) => setTimeout(r, 50));
  const childPid = Number(/blocking (\d+)/.exec(out)![1]);
  parent.kill('SIGKILL');
  const killedAt = Date.now();
  while (pidAlive(childPid)) {
    if (Date.now() - killedAt > 60_000) {
      process.kill(childPid, 'SIGKILL');
      t.fail('the child outlived its parent by a minute');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  t.pass();
});
