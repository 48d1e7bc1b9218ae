// lep ends through lep.node's exitNow (no C++ static destructors: ts/cli/interrupt.ts), which skipped
// Node's own restoring of stdio flags at exit: the stdout and stderr pipes lep shared with its parent
// stayed non-blocking, and the parent's writes after lep failed with EAGAIN (GNU time's report cut
// short and exit 1, found benchmarking 2026-12-06). Now they are blocking again, as they started.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { LEP_CLI as LEP, tempDir } from '../helpers.js';


test("after lep exits, the pipes it shared with its parent are blocking again (a shell's next write does not fail with EAGAIN)", (t) => {
  const file = join(tempDir(), 'fdinfo');
  // lep info writes to the stdout pipe, then to the stderr pipe; the shell then reads the flags of both
  // (the same open files as lep's), as its own fds 1 and 2.
  const r = spawnSync('bash', ['-c', '"$0" "$1" info > /dev/null 2>&1; "$0" "$1" info && "$0" "$1" info 1>&2; cat /proc/$$/fdinfo/1 /proc/$$/fdinfo/2 > "$2"', process.execPath, LEP, file],
    { encoding: 'utf8', timeout: 120_000 });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^allocator /m, 'lep info ran, printing to the pipe');
  const flags = [...readFileSync(file, 'utf8').matchAll(/^flags:\s+([0-7]+)$/gm)].map((m) => parseInt(m[1]!, 8));
  t.is(flags.length, 2);
  for (const [i, f] of flags.entries()) t.is(f & 0o4000, 0, `${i ? 'stderr' : 'stdout'} is O_NONBLOCK after lep exited`);
});
