// Under an address-space limit (ulimit -v, as some clusters set), lep refuses to load its libraries or
// start a job where too little is left, with LEP_OUT_OF_MEMORY naming the limit: there OpenBLAS and oneDNN
// fail in ways that cannot be caught (a toy generation hung in OpenBLAS's buffer allocation, segfaulted
// or aborted, a few MB apart; lower, OpenBLAS's threads failed to start as the library loaded).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { LEP_CLI as LEP, underUlimit } from '../helpers.js';

const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));
const TOY = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'base');
const MIB = 2 ** 20;

// Loads the model, then lowers its own soft limit (prlimit on itself; the hard limit stays, so it can be
// raised back) to what it maps now plus 100 MiB: the next job is refused, not hung. Raised back, it runs.
const CHILD = `
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
const lep = await import(process.argv[1]);
const m = await lep.LepModel.load(process.argv[2]);
const mapped = Number(/^VmSize:\\s+(\\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const setLimit = (bytes) => execFileSync('prlimit', ['--pid', String(process.pid), '--as=' + bytes + ':']);
setLimit(mapped + ${100 * MIB});
const out = {};
out.limited = await m.generate('hi', { maxNewTokens: 4 }).then(() => 'generated', (e) => ({ code: e.code, message: e.message }));
out.info = lep.lepInfo().memory.limit;
setLimit('unlimited');
out.lifted = await m.generate('hi', { maxNewTokens: 4 }).then((r) => typeof r.text);
console.log(JSON.stringify(out));
`;

test('a job that the address-space limit leaves too little for is refused, naming the limit; lifted, it runs', (t) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, INDEX, TOY], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  t.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { limited: { code: string; message: string }; info: string; lifted: string };
  t.is(out.limited.code, 'LEP_OUT_OF_MEMORY');
  t.regex(out.limited.message, /^ulimit -v leaves this process [\d.]+ MiB of its [\d.]+ GiB address space \([\d.]+ GiB is mapped\), and a job on \d+ threads needs at least [\d.]+ [MG]iB more to start .*\nHINT: raise the limit \(ulimit -v unlimited/s);
  t.is(out.info, 'ulimit', 'lep info counts what the limit leaves');
  t.is(out.lifted, 'string');
});

test('lep refuses to load its libraries where the address-space limit leaves too little, instead of crashing in them', (t) => {
  // 1.5 GiB: node starts (about 0.75 GB mapped), lep's libraries (about 0.9 GB) and a job's buffers do not
  // fit. Two threads, so that the limits hold on a machine of any size.
  const env = { ...process.env, LEP_THREADS: '2' };
  const low = spawnSync(...underUlimit(`-v ${1.5 * 1024 * 1024}`, [process.execPath, LEP, 'generate', TOY, '--prompt', 'hi', '--max-new-tokens', '4']), { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL', env });
  t.is(low.signal, null, low.stderr);
  t.is(low.status, 1, low.stderr);
  t.regex(low.stderr, /^lep: ulimit -v leaves this process [\d.]+ MiB of its 1\.5 GiB address space .*loading lep's native libraries .* on 2 threads .*\nHINT: raise the limit .*\n\(code LEP_OUT_OF_MEMORY\)\n$/s);
  // A limit that leaves room runs the same command.
  const ok = spawnSync(...underUlimit(`-v ${8 * 1024 * 1024}`, [process.execPath, LEP, 'generate', TOY, '--prompt', 'hi', '--max-new-tokens', '4']), { encoding: 'utf8', timeout: 120_000, env });
  t.is(ok.status, 0, ok.stderr);
});
