/**
 * Files appear whole or not at all when a write stops partway: a file-size limit (`ulimit -f`, which
 * Node meets as EFBIG: it ignores SIGXFSZ) stands in for a disk that fills up mid-write. writeFileAtomic
 * (46 callers: config.json, tokenizer.json, reports, stage records) once published a truncated file and
 * exited 0, since one writeSync call may write less than it is given.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { mistralTokenizerDir } from '../../ts/index.js';
import { corpora } from '../corpora.js';
import { LEP_CLI as LEP, tempDir, underUlimit } from '../helpers.js';

const ATOMIC = fileURLToPath(new URL('../../ts/util/atomicWrite.js', import.meta.url));

/** Runs node with `args` under a file-size limit of `kib` KiB. */
function limited(kib: number, args: string[]) {
  return spawnSync(...underUlimit(`-f ${kib}`, [process.execPath, ...args]), { encoding: 'utf8' });
}

test('writeFileAtomic writes every byte or throws naming the file, and leaves nothing behind', (t) => {
  const dir = tempDir();
  const target = join(dir, 'big.json');
  const child = `const { writeFileAtomic } = await import(process.argv[1]);
try { writeFileAtomic(process.argv[2], 'x'.repeat(3 * 2 ** 20)); console.log('written'); }
catch (e) { console.log(JSON.stringify({ code: e.code, path: e.path })); }`;
  const r = limited(1024, ['--input-type=module', '-e', child, ATOMIC, target]);
  t.is(r.status, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), { code: 'EFBIG', path: target });
  t.deepEqual(readdirSync(dir), [], 'no file, no temporary');
  // Under no limit the same write succeeds (the child is not failing for another reason).
  const ok = spawnSync(process.execPath, ['--input-type=module', '-e', child, ATOMIC, target], { encoding: 'utf8' });
  t.is(ok.stdout.trim(), 'written', ok.stderr);
});

test('a command whose output outgrows the limit fails naming the output, with a hint, and publishes nothing', (t) => {
  const out = join(tempDir(), 'model');
  // A tied bf16 model of hidden size 8 (0.5 MiB of weights) under 1 MiB: its tokenizer.json (1.8 MB) fails.
  const r = limited(1024, [LEP, 'model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', out, '--hidden-size', '8', '--heads', '2', '--layers', '1', '--tie', '--dtype', 'bf16']);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^lep: cannot copyfile .*tokenizer\.json to .*tokenizer\.json: EFBIG\nHINT: the file would be larger than this process may write \(ulimit -f\)/m);
  t.regex(r.stderr, /\(code LEP_IO_EFBIG\)/);
  t.false(existsSync(out), 'no half-made model');
});

test('tokenizer train: a working copy of the corpus that outgrows the limit names itself and --tmp-dir, and is removed', async (t) => {
  const tmp = tempDir();
  const out = join(tempDir(), 'tok');
  const r = limited(100, [LEP, 'tokenizer', 'train', '--corpus', (await corpora())['en.txt']!, '--vocab-size', '2000', '--out', out, '--tmp-dir', tmp]);
  t.is(r.status, 1, r.stderr);
  t.regex(r.stderr, /^lep: cannot write the working copy of the corpus, .*corpus\.txt: EFBIG\nHINT: .*point --tmp-dir at a disk with room for it, or raise the file-size limit \(ulimit -f\)/m);
  t.regex(r.stderr, /\(code LEP_IO\)/);
  t.deepEqual(readdirSync(tmp), [], 'the working copy is gone');
  t.false(existsSync(out));
});

test('under an open-file limit too low to load lep, the command says so with a hint, not a stack trace', (t) => {
  // Node 20's module loader opens many of lep's files at once: it failed with EMFILE below about 175 here.
  // A Node that loads them one by one may run the command instead; never a stack trace either way.
  const low = spawnSync(...underUlimit('-n 64', [process.execPath, LEP, 'info']), { encoding: 'utf8' });
  if (low.status === 0) t.log(`lep info ran under ulimit -n 64 on Node ${process.version}`);
  else {
    t.is(low.status, 1, low.stderr);
    t.regex(low.stderr, /^lep: cannot load lep's modules: cannot open \S+: EMFILE\nHINT: this process may open too few files: raise `ulimit -n`\.\n\(code LEP_IO_EMFILE\)\n$/);
    t.is(low.stdout, '');
  }
  t.notRegex(low.stderr, /^\s+at |Node\.js v\d/m, 'no stack trace');
  // The same command under a common limit runs (the child failed for the limit, not another reason).
  const ok = spawnSync(...underUlimit('-n 1024', [process.execPath, LEP, 'info']), { encoding: 'utf8' });
  t.is(ok.status, 0, ok.stderr);
});
