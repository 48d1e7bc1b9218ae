// An install missing a dependency or one of lep's own files: the `lep` command says so, with the way to
// fix it and a code, not Node's ERR_MODULE_NOT_FOUND stack trace (ts/cli/main.ts). A copy of the built
// package without node_modules stands in for the one, the same copy less a module for the other.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

function copyOfPackage(): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'dist'));
  cpSync(join(ROOT, 'dist', 'ts'), join(dir, 'dist', 'ts'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  return dir;
}

const HINT = "HINT: lep's installation is incomplete: install it again (`npm install lep`; in a checkout, `npm ci && npm run build`).";

test('a missing dependency or a missing file of lep is named, with a hint and a code, not a stack trace', (t) => {
  const dir = copyOfPackage();
  const main = join(dir, 'dist', 'ts', 'cli', 'main.js');
  const noDeps = spawnSync(process.execPath, [main, 'info'], { encoding: 'utf8', cwd: dir });
  t.is(noDeps.status, 1, noDeps.stderr);
  t.regex(noDeps.stderr, /^lep: cannot load lep's modules: Cannot find package '[^']+' imported from \S+\n/);
  t.true(noDeps.stderr.endsWith(`${HINT}\n(code LEP_MISSING_PACKAGE)\n`), noDeps.stderr);
  t.is(noDeps.stdout, '');
  // One of lep's own files, one the entry point's error path would need too; its dependencies present,
  // so the missing file is the only thing the loader can report.
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  rmSync(join(dir, 'dist', 'ts', 'util', 'ioError.js'));
  const noFile = spawnSync(process.execPath, [main, 'info'], { encoding: 'utf8', cwd: dir });
  t.is(noFile.status, 1, noFile.stderr);
  t.regex(noFile.stderr, /^lep: cannot load lep's modules: Cannot find module '\S+ioError\.js' imported from \S+\n/);
  t.true(noFile.stderr.endsWith(`${HINT}\n(code LEP_MISSING_PACKAGE)\n`), noFile.stderr);
  for (const r of [noDeps, noFile]) t.notRegex(r.stderr, /^\s+at |Node\.js v\d|node:internal/m, 'no stack trace');
});
