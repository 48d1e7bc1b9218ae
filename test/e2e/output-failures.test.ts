// Outputs that cannot be written (helper hunt, 2026-12-06). `lep eval --out FILE`: the output is checked
// before the evaluation (its folder made or refused, a read-only one named), the results are printed
// before they are written, and a rerun whose write fails leaves no record of the previous run beside the
// new results. A full disk under a directory output: the error names the output, not its temporary.
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { corpora } from '../corpora.js';
import { LEP_CLI as LEP, smallFilesystem, tempDir, tinyModel, underUlimit } from '../helpers.js';


async function lep(args: string[], limits?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const [cmd, argv] = limits ? underUlimit(limits, [process.execPath, LEP, ...args]) : [process.execPath, [LEP, ...args]];
  try {
    const { stdout, stderr } = await promisify(execFile)(cmd, argv, { env: { ...process.env, LEP_THREADS: '1' } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

test('eval --out: its folder is made, a failed write still prints the results and leaves no stale record, a read-only folder is refused first', async (t) => {
  const model = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 });
  const corporaDir = tempDir();
  mkdirSync(join(corporaDir, 'heldout'));
  writeFileSync(join(corporaDir, 'heldout', 'ru.txt'), readFileSync((await corpora())['heldout/ru.txt']!, 'utf8').slice(0, 20_000));
  const args = (out: string, chars: number) => [
    'eval', model, '--tasks', 'text:ru', '--corpora', corporaDir, '--text-max-chars', String(chars), '--json', '--out', out,
  ];
  const out = join(tempDir(), 'new', 'folder', 'ev.json');
  const first = await lep(args(out, 2000));
  t.is(first.code, 0, first.stderr);
  const record = `${out}.lep-stage`;
  t.is(JSON.parse(readFileSync(record, 'utf8')).resolved.textMaxChars, 2000);

  // Files of at most 1 KiB: the results or their record cannot be written. The evaluation is printed, the
  // command fails, and the first run's record no longer sits beside whatever results are there.
  const limited = await lep(args(out, 4000), '-f 1');
  t.is(limited.code, 1, limited.stderr);
  t.regex(limited.stderr, /EFBIG/);
  t.deepEqual(Object.keys(JSON.parse(limited.stdout)).sort(), Object.keys(JSON.parse(first.stdout)).sort());
  t.true(!existsSync(record) || JSON.parse(readFileSync(record, 'utf8')).resolved.textMaxChars === 4000, 'no record of the 2000-character run');

  const fs = await smallFilesystem(1 << 20);
  if (typeof fs === 'string') return t.fail(fs);
  t.teardown(fs.remove);
  t.is(spawnSync('mount', ['-o', 'remount,ro', fs.dir]).status, 0);
  const blocks = join(tempDir(), 'd.safetensors');
  t.is((await lep(['data', 'pack', '--tokenizer', model, '--seq-len', '16', '--out', blocks, join(corporaDir, 'heldout', 'ru.txt')])).code, 0);
  for (const run of [
    args(join(fs.dir, 'ev.json'), 2000),
    ['data', 'pack', '--tokenizer', model, '--seq-len', '16', '--out', join(fs.dir, 'd.safetensors'), join(corporaDir, 'heldout', 'ru.txt')],
    // Training named no space (its free-space check ran first), not the read-only disk.
    ['train', model, '--data', blocks, '--steps', '1', '--out', join(fs.dir, 'run')],
  ]) {
    const r = await lep(run);
    t.is(r.code, 1, run[0]);
    t.regex(r.stderr, /^lep: --out \S+: its folder \S+ cannot be written \(EROFS\)\nHINT: it is on a read-only file system/, run[0]);
    t.is(r.stdout, '', `${run[0]}: refused before the work`);
  }
});

test('a full disk under a directory output: the error names the file in the output asked for, with a hint; the previous output stays', async (t) => {
  const fs = await smallFilesystem(1 << 20);
  if (typeof fs === 'string') return t.fail(fs);
  t.teardown(fs.remove);
  const out = join(fs.dir, 'm');
  const create = (hidden: string) => lep(['model', 'create', '--tokenizer', join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k'), '--out', out, '--arch', 'llama', '--hidden-size', hidden, '--layers', '1', '--heads', '2']);
  t.is((await create('4')).code, 0);  // two 8000 x 4 matrices in f32, 250 KiB: fits; 8000 x 64 (4 MiB) does not
  const before = readFileSync(join(out, 'model.safetensors'));
  const r = await create('64');
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, new RegExp(`^lep: cannot (write|flush|create) ${out}/model\\.safetensors.*: No space left on device\nHINT: the disk is full`, 'm'));
  t.notRegex(r.stderr, /\.tmp-\d+\//, 'no temporary directory named');
  t.true(readFileSync(join(out, 'model.safetensors')).equals(before), 'the previous output stays');
});

test('SentencePiece saving into a full --tmp-dir: the error says the disk is full and names --tmp-dir', async (t) => {
  // The corpus's working copy fits (200 kB in 256 KiB), SentencePiece's model and vocabulary then do not.
  const fs = await smallFilesystem(256 * 1024);
  if (typeof fs === 'string') return t.fail(fs);
  t.teardown(fs.remove);
  const corpus = join(tempDir(), 'c.txt');
  const text = readFileSync((await corpora())['ru.txt']!, 'utf8').slice(0, 120_000);  // ~200 kB of Cyrillic
  writeFileSync(corpus, text.slice(0, text.lastIndexOf('\n') + 1));
  const r = await lep(['tokenizer', 'train', '--corpus', corpus, '--vocab-size', '4000', '--tmp-dir', fs.dir, '--out', join(tempDir(), 'tok')]);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /^lep: SentencePiece could not write its model into \S+: .*\nHINT: the disk holding it is full: point --tmp-dir at a disk with room/);
});
