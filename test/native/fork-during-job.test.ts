// A child process started while a lep job computes: OpenBLAS's pre-fork handler can leave the job waiting
// forever (docs/architecture.md, "Known hazard"), so lep.node says so, once, when it happens. The job
// here runs with one BLAS thread, where OpenBLAS's pool is not used and the fork cannot hang it.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));
const TOY = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct');

const CHILD = `
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
spawnSync('true');
console.log(forks);
`;

test('a fork while a job computes is named once on stderr, with the way around; a fork with no job running says nothing', (t) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, INDEX, TOY], { encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' });
  t.is(r.status, 0, r.stderr);
  t.true(Number(r.stdout.trim()) >= 2, `forks during the job: ${r.stdout}`);
  const warning = /lep: a child process is starting while a lep job computes in this process: OpenBLAS's pre-fork handler can leave that job waiting forever\. Start children with forkWhenIdle\(\(\) => spawn\(\.\.\.\)\) from lep, or from another process \(docs\/architecture\.md, "Known hazard"\)\. Said once\.\n/g;
  t.is(r.stderr.match(warning)?.length, 1, r.stderr);
  const at = r.stderr.search(warning);
  t.true(r.stderr.indexOf('idle fork done') < at && at < r.stderr.indexOf('job done'), r.stderr);
});
