// The shared output helpers (ts/util): the output-over-input check, the output lock, orphaned temporaries,
// directories written aside and renamed, and mkdir -p that fails with a named error.
import { spawn, spawnSync } from 'node:child_process';
import fs, { existsSync, mkdirSync, type PathLike, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';
import { hostname } from 'node:os';
import { join } from 'node:path';

import test from 'ava';

import { LepError } from '../../ts/errors.js';
import { checkOutputPath } from '../../ts/util/checkOutputPath.js';
import { makeDirs } from '../../ts/util/makeDirs.js';
import { LOCK_FILE, lockOutputDir } from '../../ts/util/outputLock.js';
import { prepareFileOutput } from '../../ts/util/prepareFileOutput.js';
import { pidAlive, removeOrphanTemps, removeTrackedTemps, tempPathFor, trackTemp, untrackTemp } from '../../ts/util/tempPaths.js';
import { openDirAtomic, writeDirAtomic, writeDirAtomicSync } from '../../ts/util/writeDirAtomic.js';
import { tempDir } from '../helpers.js';

const deadPid = (): number => spawnSync(process.execPath, ['-e', '']).pid!;
const code = (e: unknown): string | undefined => (e instanceof LepError ? e.code : undefined);

test('checkOutputPath: an output that is, is inside, or contains an input is refused, through links and globs', (t) => {
  const dir = tempDir();
  const model = join(dir, 'model');
  mkdirSync(model);
  writeFileSync(join(model, 'config.json'), '{}');
  symlinkSync(model, join(dir, 'alias'));
  const refused: [string, Record<string, string | string[]>, RegExp][] = [
    [model, { MODEL_DIR: model }, /--out \S+ is the input MODEL_DIR/],
    [join(model, 'config.json'), { MODEL_DIR: model }, /is inside the input MODEL_DIR/],
    [join(dir, 'alias', 'x.gguf'), { MODEL_DIR: model }, /is inside the input MODEL_DIR/],
    [join(model, 'new', 'deeper'), { MODEL_DIR: join(dir, 'alias') }, /is inside the input MODEL_DIR/],
    [dir, { '--data': join(model, 'config.json') }, /contains the input --data/],
    [join(model, 'a.txt'), { CORPUS: [join(dir, 'other.txt'), join(model, '*.txt')] }, /falls under the input CORPUS/],
    [model, { '--corpus': join(model, '*.txt') }, /contains the input --corpus/],
    [dir, { '--corpus': join(model, '**', '*.txt') }, /contains the input --corpus/],
    // A directory output's files are named by the command: a pattern that could reach below it counts.
    [join(model, 'tok'), { '--corpus': join(model, '*', '*.txt') }, /falls under the input --corpus/],
    [join(model, 'a', 'b', 'tok'), { '--corpus': join(model, '**', '*.txt') }, /falls under the input --corpus/],
    [join(model, 'tok.txt'), { '--corpus': join(model, 't?k.*') }, /falls under the input --corpus/],
  ];
  for (const [out, inputs, message] of refused) {
    const e = t.throws(() => checkOutputPath(out, '--out', inputs));
    t.regex(e!.message, message);
    t.regex(e!.message, /\nHINT: /);
    t.is(code(e), 'LEP_OUTPUT_OVER_INPUT');
  }
  t.notThrows(() => checkOutputPath(join(dir, 'model-out'), '--out', { MODEL_DIR: model, CORPUS: [join(dir, 'c', '*.txt')] }));
  // Listing walks linked folders by their link's name: data/latest -> v2 is read as data/latest/*.txt.
  mkdirSync(join(dir, 'data', 'v2'), { recursive: true });
  symlinkSync('v2', join(dir, 'data', 'latest'));
  const linked = t.throws(() => checkOutputPath(join(dir, 'data', 'latest', 'out.txt'), '--out', { '--corpus': join(dir, 'data', 'l*', '*.txt') }));
  t.regex(linked!.message, /falls under the input --corpus/);
  // Below a glob's root, but where the pattern never reads: `--corpus '*.txt' --out tok` is the usual case.
  for (const [out, corpus] of [
    ['tok', '*.txt'],
    [join('a', 'tok'), join('a', '*.txt')],
    [join('tok', 'x.txt'), join('*', 'ru', '*.txt')],
    ['.hidden', join('**', '*.txt')],
    ['tok.json', '*.txt'],
  ] as [string, string][])
    t.notThrows(() => checkOutputPath(join(dir, out), '--out', { '--corpus': join(dir, corpus) }), `${out} under ${corpus}`);
  // Listing yields files only: a folder output one level under `data/*` is never read back (data/tok/x is
  // too deep, and data/tok itself is not a file); a file output there is, and an output of unknown shape
  // is refused as either. A file has nothing below it for a deeper pattern to read.
  const data = join(dir, 'data');
  t.notThrows(() => checkOutputPath(join(data, 'tok'), '--out', { '--corpus': join(data, '*') }, 'folder'));
  t.notThrows(() => checkOutputPath(join(data, 'tok'), '--out', { '--corpus': join(data, '*') }, { ownSubdirs: ['checkpoints'] }));
  for (const shape of ['file', undefined] as const)
    t.is(code(t.throws(() => checkOutputPath(join(data, 'tok'), '--out', { '--corpus': join(data, '*') }, shape))), 'LEP_OUTPUT_OVER_INPUT', String(shape));
  t.notThrows(() => checkOutputPath(join(data, 'x.bin'), '--out', { '--corpus': join(data, '*', '*.txt') }, 'file'));
  t.regex(t.throws(() => checkOutputPath(join(data, 'tok'), '--out', { '--corpus': join(data, '*', '*.txt') }, 'folder'))!.message, /falls under the input --corpus/);
  for (const pattern of [join(data, '**'), join(data, '**', '*')]) {
    t.regex(t.throws(() => checkOutputPath(join(data, 'x.bin'), '--out', { '--corpus': pattern }, 'file'))!.message, /falls under/, pattern);
    t.regex(t.throws(() => checkOutputPath(join(data, 'tok'), '--out', { '--corpus': pattern }, 'folder'))!.message, /falls under/, pattern);
  }
  t.notThrows(() => checkOutputPath(`${model}.gguf`, '--out', { MODEL_DIR: model }));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling'));
  const e = t.throws(() => checkOutputPath(join(dir, 'dangling'), '--out', {}));
  t.regex(e!.message, /--out \S+dangling is a symbolic link to a path that does not exist/);
  // A part of the path is a file: named with the flag (it was "cannot lstat ...: ENOTDIR").
  const underFile = t.throws(() => checkOutputPath(join(model, 'config.json', 'm'), '--out', {}));
  t.is(code(underFile), 'LEP_BAD_OUTPUT');
  t.regex(underFile!.message, /^--out \S+config\.json\/m cannot be made: a part of its path is a file, not a folder\nHINT: /);
});

test('lockOutputDir: a live holder is named and refused; a dead or half-written one is taken over; release removes only ours', async (t) => {
  const dir = tempDir();
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
  t.teardown(() => sleeper.kill());
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: sleeper.pid, host: hostname(), command: 'lep train', since: 'then' }));
  const e = t.throws(() => lockOutputDir(dir, '--out', 'lep train'));
  t.regex(e!.message, new RegExp(`--out ${dir} is in use by lep train \\(pid ${sleeper.pid} on ${hostname()}, since then\\)`));
  t.is(code(e), 'LEP_OUTPUT_LOCKED');
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: sleeper.pid, host: 'another-machine', command: 'lep train', since: 'then' }));
  t.regex(t.throws(() => lockOutputDir(dir, '--out', 'lep train'))!.message, /if it no longer runs, delete \S+lep\.lock/);

  for (const stale of [JSON.stringify({ pid: deadPid(), host: hostname(), command: 'lep train', since: 'then' }), '{"pid": 12']) {
    writeFileSync(join(dir, LOCK_FILE), stale);
    const release = lockOutputDir(dir, '--out', 'lep train');
    t.is(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    release();
    t.false(existsSync(join(dir, LOCK_FILE)));
  }
  const release = lockOutputDir(dir, '--out', 'lep train');
  // A second run in this same process (two trainModel calls on one OUT) is refused: it was let in, since
  // a lock bearing our own pid counted as a dead process's.
  const twice = t.throws(() => lockOutputDir(dir, '--out', 'lep train'));
  t.is(code(twice), 'LEP_OUTPUT_LOCKED');
  t.regex(twice!.message, new RegExp(`is in use by lep train \\(pid ${process.pid} `));
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: sleeper.pid, host: hostname() }));
  release();
  t.true(existsSync(join(dir, LOCK_FILE)), 'a lock another process took is not removed');
  // Our pid on a lock from before this process started: an earlier process that had the same pid (a
  // container restarted), taken over.
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), command: 'lep train', since: new Date(Date.now() - process.uptime() * 1000 - 60_000).toISOString() }));
  lockOutputDir(dir, '--out', 'lep train')();
  t.false(existsSync(join(dir, LOCK_FILE)));
});

test('lockOutputDir: commands taking over stale locks at the same moments: never two holders at once', async (t) => {
  const dir = tempDir();
  const lock = join(dir, LOCK_FILE);
  const dead = deadPid();
  const staleLock = JSON.stringify({ pid: dead, host: hostname(), command: 'lep train', since: 'then' });
  writeFileSync(lock, staleLock);
  const lockJs = new URL('../../ts/util/outputLock.js', import.meta.url).href;
  // Four commands contend for 3 s from the same instant. A winner holds the lock for 2 ms, checks the lock
  // file still names it, then "dies": it turns its lock into a stale one (a dead pid), which the others
  // race to take over. A lock that changed hands while held is counted as stolen.
  const at = Date.now() + 2000;
  const script = `import { readFileSync, renameSync, writeFileSync } from 'node:fs';
    const { lockOutputDir } = await import(${JSON.stringify(lockJs)});
    const lock = ${JSON.stringify(lock)};
    let got = 0, stolen = 0, other = '';
    while (Date.now() < ${at});
    while (Date.now() < ${at + 3000}) {
      try { lockOutputDir(${JSON.stringify(dir)}, '--out', 'lep train'); } catch (e) { if (e.code !== 'LEP_OUTPUT_LOCKED') other = e.message; continue; }
      got++;
      const t0 = Date.now(); while (Date.now() - t0 < 2);
      let holder; try { holder = JSON.parse(readFileSync(lock, 'utf8')).pid; } catch {}
      if (holder !== process.pid) { stolen++; continue; }
      writeFileSync(lock + '.x' + process.pid, ${JSON.stringify(staleLock)}); renameSync(lock + '.x' + process.pid, lock);
    }
    console.log(JSON.stringify({ got, stolen, other }));`;
  const results = await Promise.all(
    Array.from({ length: 4 }, () => new Promise<{ got: number; stolen: number; other: string }>((resolve, reject) => {
      const c = spawn(process.execPath, ['--input-type=module', '-e', script]);
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d));
      c.stderr.on('data', (d: Buffer) => (out += d));
      c.on('close', () => { try { resolve(JSON.parse(out)); } catch { reject(new Error(out)); } });
    })),
  );
  t.log(results.map((r) => `${r.got} taken, ${r.stolen} stolen`).join('; '));
  t.true(results.reduce((n, r) => n + r.got, 0) > 10, 'the commands did contend');
  t.deepEqual(results.map((r) => r.stolen), [0, 0, 0, 0], 'a lock was taken over while its holder ran');
  t.deepEqual(results.map((r) => r.other), ['', '', '', '']);
  t.deepEqual(readdirSync(dir), [LOCK_FILE], 'no temporary or aside file is left');
});

test('removeOrphanTemps removes dead processes\' *.tmp-PID only; tracked temporaries go on exit', (t) => {
  const dir = tempDir();
  const dead = deadPid();
  for (const n of [`out.tmp-${dead}`, `out.old.tmp-${dead}`, `out.tmp-${process.pid}`, `other.tmp-${dead}`, 'out', 'out.tmp-x']) mkdirSync(join(dir, n));
  t.deepEqual(removeOrphanTemps(dir, 'out.').sort(), [join(dir, `out.old.tmp-${dead}`), join(dir, `out.tmp-${dead}`)]);
  t.deepEqual(readdirSync(dir).sort(), ['other.tmp-' + dead, 'out', `out.tmp-${process.pid}`, 'out.tmp-x'].sort());
  trackTemp(join(dir, `out.tmp-${process.pid}`));
  removeTrackedTemps();
  t.false(existsSync(join(dir, `out.tmp-${process.pid}`)));
});

// Serial: removeTrackedTemps empties this process's list, which the concurrent tests below fill.
test.serial('a file output\'s temporary is tracked until its writer releases it; a path two writers hold stays tracked until both let go', (t) => {
  const dir = tempDir();
  const out = join(dir, 'blocks.bin');
  const release = prepareFileOutput(out, '--out');
  const held = prepareFileOutput(out, '--out');
  release();
  release();  // a second call of the same release does not let go of the other writer's hold
  t.deepEqual(removeTrackedTemps(), [tempPathFor(out)], 'still held by the second writer');
  held();
  const one = prepareFileOutput(out, '--out');
  trackTemp(tempPathFor(out));  // as writeFileAtomic does for the same name
  untrackTemp(tempPathFor(out));
  t.deepEqual(removeTrackedTemps(), [tempPathFor(out)], 'the file writer\'s own untrack leaves the output\'s hold');
  one();
  const two = prepareFileOutput(out, '--out');
  two();
  t.deepEqual(removeTrackedTemps(), [], 'released: nothing left to remove on exit');
});

test('writeDirAtomic: the output appears whole and replaces the old one; a failed build leaves the old one and no temporary', async (t) => {
  const dir = tempDir();
  const out = join(dir, 'out');
  mkdirSync(out);
  writeFileSync(join(out, 'tokenizer.json'), 'old'); // an earlier lep output
  writeFileSync(join(out, 'old.txt'), 'old');
  await t.throwsAsync(
    writeDirAtomic(out, '--out', async (tmp) => {
      writeFileSync(join(tmp, 'config.json'), '{}');
      t.false(existsSync(join(out, 'config.json')), 'nothing is visible while the directory is built');
      throw new Error('killed half-way');
    }),
    { message: 'killed half-way' },
  );
  t.deepEqual(readdirSync(dir), ['out']);
  t.deepEqual(readdirSync(out).sort(), ['old.txt', 'tokenizer.json']);
  const r = writeDirAtomicSync(out, '--out', (tmp) => {
    writeFileSync(join(tmp, 'config.json'), '{}');
    return 7;
  });
  t.is(r, 7);
  t.deepEqual(readdirSync(out), ['config.json']);
  t.deepEqual(readdirSync(dir), ['out']);
});

test('writeDirAtomic never replaces what no lep run wrote, and puts back an output a killed run had moved aside', (t) => {
  const dir = tempDir();
  const build = (tmp: string) => writeFileSync(join(tmp, 'config.json'), '{}');
  // A folder of other files (a home, a project) is refused and left as it was.
  const mine = join(dir, 'mine');
  mkdirSync(mine);
  writeFileSync(join(mine, 'notes.txt'), 'keep me');
  const e1 = t.throws(() => writeDirAtomicSync(mine, '--out', build));
  t.is(code(e1), 'LEP_OUTPUT_NOT_EMPTY');
  t.regex(e1!.message, /--out \S+mine holds files that no lep run wrote \(notes\.txt\)[^]*\nHINT: /);
  t.deepEqual(readdirSync(mine), ['notes.txt']);
  // A file is not replaced by a directory.
  writeFileSync(join(dir, 'file'), 'x');
  t.is(code(t.throws(() => writeDirAtomicSync(join(dir, 'file'), '--out', build))), 'LEP_OUTPUT_NOT_DIR');
  t.is(readFileSync(join(dir, 'file'), 'utf8'), 'x');
  // The current directory is never replaced, even when it looks like an output.
  t.is(code(t.throws(() => writeDirAtomicSync(process.cwd(), '--out', build))), 'LEP_OUTPUT_NOT_EMPTY');
  // Killed between the two renames: OUT is gone and OUT.old.tmp-DEADPID holds the previous output. The next
  // run restores it before removing orphans, and a failing build then leaves it in place.
  const out = join(dir, 'out');
  const aside = join(dir, `out.old.tmp-${deadPid()}`);
  mkdirSync(aside);
  writeFileSync(join(aside, 'config.json'), 'previous');
  t.throws(() => writeDirAtomicSync(out, '--out', () => { throw new Error('fails'); }), { message: 'fails' });
  t.is(readFileSync(join(out, 'config.json'), 'utf8'), 'previous');
  t.false(existsSync(aside));
});

test('writeDirAtomic: when neither the new output nor the previous one can be renamed into place, the error says where the previous one is', (t) => {
  const dir = tempDir();
  const out = join(dir, 'out');
  mkdirSync(out);
  writeFileSync(join(out, 'config.json'), 'previous');
  const pending = openDirAtomic(out, '--out');
  const old = `${out}.old.tmp-${process.pid}`;
  let e: Error | undefined;
  try {
    writeFileSync(join(pending.dir, 'config.json'), 'new');
    // A failing disk cannot be had on demand: every rename onto OUT fails as one would (EIO). The window is
    // synchronous, so no other test sees the patched fs.
    const rename = fs.renameSync;
    fs.renameSync = (from: PathLike, to: PathLike): void => {
      if (to === out) throw Object.assign(new Error(`EIO: i/o error, rename '${String(from)}' -> '${out}'`), { code: 'EIO' });
      rename(from, to);
    };
    syncBuiltinESMExports();
    try {
      e = t.throws(() => pending.commit());
    } finally {
      fs.renameSync = rename;
      syncBuiltinESMExports();
    }
  } finally {
    pending.abandon();
  }
  t.is(code(e), 'LEP_IO');
  t.is(e!.message, `cannot put the new ${out} in place (EIO), nor the previous one back: it is at ${old}\nHINT: check the disk (dmesg); the next lep run writing ${out} moves it back, or rename it yourself.`);
  t.is(readFileSync(join(old, 'config.json'), 'utf8'), 'previous');
  t.false(existsSync(out));
  // The next write of OUT puts it back first, from this process too (its move aside is over), so a
  // failing build leaves the previous output where it was.
  t.throws(() => writeDirAtomicSync(out, '--out', () => { throw new Error('fails'); }), { message: 'fails' });
  t.is(readFileSync(join(out, 'config.json'), 'utf8'), 'previous');
  t.false(existsSync(old));
});

test('checkOutputPath: a name starting with two dots inside an input is inside it', (t) => {
  const dir = tempDir();
  const e = t.throws(() => checkOutputPath(join(dir, 'in', '..cache'), '--out', { MODEL_DIR: join(dir, 'in') }));
  t.is(code(e), 'LEP_OUTPUT_OVER_INPUT');
  t.notThrows(() => checkOutputPath(join(dir, 'in-out'), '--out', { MODEL_DIR: join(dir, 'in') }));
});

test('makeDirs fails with a named error where Node\'s recursive mkdir would spin (/proc) or a file is in the way', (t) => {
  const e = t.throws(() => makeDirs('/proc/lep-unit/a/b', '--out'));
  t.is(e!.message.split('\n')[0], 'cannot create --out /proc/lep-unit/a/b: mkdir /proc/lep-unit failed with ENOENT');
  t.is(code(e), 'LEP_BAD_OUTPUT');
  const dir = tempDir();
  writeFileSync(join(dir, 'file'), '');
  t.regex(t.throws(() => makeDirs(join(dir, 'file', 'sub'), '--out'))!.message, /\S+file exists and is not a directory/);
  makeDirs(join(dir, 'a', 'b', 'c'), '--out');
  t.true(existsSync(join(dir, 'a', 'b', 'c')));
});

test('a zombie (exited, not yet reaped) holds no lock: a new run takes its lock over', async (t) => {
  // `sleep 1` exits after its parent has exec'd into `sleep 60`, which never reaps it: a zombie until the
  // teardown kills the parent, as a process killed in a container whose init reaps slowly (a
  // resource-limit hunt met this). (`sleep 0` could exit before the exec, and bash reaped it; `sleep 3`
  // as the parent ended before the loop below saw the zombie on a loaded machine.)
  const child = spawn('bash', ['-c', 'sleep 1 & echo $!; exec sleep 60']);
  const pid = await new Promise<number>((done) => child.stdout.once('data', (d: Buffer) => done(Number(d.toString().trim()))));
  t.teardown(() => child.kill());
  let state = '';
  for (let i = 0; i < 1000 && state !== 'Z'; i++) {
    spawnSync('sleep', ['0.01']);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  }
  t.is(state, 'Z', 'the zombie is there');
  t.false(pidAlive(pid));
  t.true(pidAlive(child.pid!), 'a live process still counts');
  const dir = tempDir();
  writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, host: hostname(), command: 'lep train', since: new Date().toISOString() }));
  const release = lockOutputDir(dir, '--out', 'lep train');
  t.is(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
  release();
  t.false(existsSync(join(dir, LOCK_FILE)));
});
