// A signal while a finished command waits for a slow reader to take its output (ts/cli/dispatch.ts,
// exitWhenFlushed): there is no safe point left to stop at, so even a command that stops by itself on the
// first signal (adapt, train, ...) quits at once, saying its work is complete.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import test from 'ava';

const INTERRUPT = pathToFileURL(join(import.meta.dirname, '..', '..', 'ts', 'cli', 'interrupt.js')).href;

function run(finished: boolean): Promise<{ code: number | null; stderr: string }> {
  const script = `import { handleInterrupts, markFinished } from ${JSON.stringify(INTERRUPT)};
handleInterrupts('adapt', true);
${finished ? 'markFinished();' : ''}
setTimeout(() => process.exit(0), 4000);
process.stdout.write('ready\\n');`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script]);
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.on('data', () => child.kill('SIGINT'));
  // Exit code 130 can only come from the signal handler: the script's own timer exits with 0.
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

test('a signal after the work is done quits at once; before, a stopping command waits for its safe point', async (t) => {
  const done = await run(true);
  t.is(done.code, 130, done.stderr);
  t.regex(done.stderr, /lep adapt: SIGINT came while its output was being printed; its work and files are complete/);
  // The same command still working: the first SIGINT only asks it to stop at its next safe point (here
  // there is none, so the script's own timer ends it with 0).
  const working = await run(false);
  t.is(working.code, 0, working.stderr);
  t.regex(working.stderr, /SIGINT received, stopping at the next safe point/);
});
