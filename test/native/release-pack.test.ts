// release:pack (scripts/release-pack.ts) packs a build only as the libtorch flavour its lep.node links and
// makes no release with a flavour missing. Each case runs the compiled packer in a copy of the package
// (dist/, package.json) whose build folders hold this checkout's real addons; every case stops before
// `npm pack`, so nothing is written.
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { PREBUILT_FLAVOURS, prebuiltPackageName } from '../../ts/binding/prebuilts.js';
import { linkedFlavours } from '../../scripts/linkedFlavour.js';
import { nativeBuildDir, tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const BUILD = nativeBuildDir();
const [FLAVOUR] = linkedFlavours(join(BUILD, 'lep.node'));

/** A package copy with this build's addons in each of `buildDirs` (relative to its root); runs release:pack in it. */
function pack(buildDirs: string[], args: string[] = []) {
  const root = tempDir();
  mkdirSync(join(root, 'dist'));
  for (const d of ['scripts', 'ts']) cpSync(join(ROOT, 'dist', d), join(root, 'dist', d), { recursive: true });
  copyFileSync(join(ROOT, 'package.json'), join(root, 'package.json'));
  for (const dir of buildDirs) {
    mkdirSync(join(root, dir), { recursive: true });
    for (const f of ['lep.node', 'lep_spm.node']) copyFileSync(join(BUILD, f), join(root, dir, f));
  }
  const out = join(root, 'release');
  const r = spawnSync(process.execPath, [join(root, 'dist', 'scripts', 'release-pack.js'), '--out', out, ...args], { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr, wrote: existsSync(out) ? readdirSync(out) : [] };
}

test('a build in another flavour\'s folder is refused: a libtorch build is never packed as another libtorch', (t) => {
  t.truthy(FLAVOUR, `${BUILD}/lep.node links no known flavour`);
  const other = PREBUILT_FLAVOURS.find((f) => f !== FLAVOUR)!;
  const r = pack([`build-${other.id}/Release`]);
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`build-${other.id}/Release/lep.node links ${FLAVOUR!.torchSoname}, not ${other.torchSoname}`), r.out);
  t.deepEqual(r.wrote, []);
});

test('a missing flavour stops the release, naming the build that makes it', (t) => {
  const other = PREBUILT_FLAVOURS.find((f) => f !== FLAVOUR)!;
  const r = pack(['build/Release']);
  t.is(r.status, 1, r.out);
  t.regex(r.out, new RegExp(`no libtorch ${other.torchVersion.replace('.', '\\.')} \\(${other.distro}\\) build .* so ${prebuiltPackageName(other)} cannot be packed: build it with`));
  t.deepEqual(r.wrote, []);
});

test('--native: a build against a CUDA libtorch is refused: no prebuilt flavour is one (it would need CUDA and cuDNN to load)', (t) => {
  const dir = tempDir();
  // libgcc_s.so.1 renamed to a libc10_cuda soname of the same length: what Debian's libtorch-cuda adds beside libtorch_cpu.
  const bytes = readFileSync(join(BUILD, 'lep.node'));
  const at = bytes.indexOf(Buffer.from('\0libgcc_s.so.1\0'));
  t.true(at > 0);
  bytes.write('libc10_cuda.1', at + 1, 'latin1');
  writeFileSync(join(dir, 'lep.node'), bytes);
  copyFileSync(join(BUILD, 'lep_spm.node'), join(dir, 'lep_spm.node'));
  const r = pack([], ['--native', dir]);
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`${join(dir, 'lep.node')} links libc10_cuda.1: it was built against a CUDA libtorch`), r.out);
  t.deepEqual(r.wrote, []);
});

test('--native: a truncated lep.node is refused with the file named, and a folder without addons too', (t) => {
  const dir = tempDir();
  writeFileSync(join(dir, 'lep.node'), readFileSync(join(BUILD, 'lep.node')).subarray(0, 100_000));
  copyFileSync(join(BUILD, 'lep_spm.node'), join(dir, 'lep_spm.node'));
  const r = pack([], ['--native', dir]);
  t.is(r.status, 1, r.out);
  t.regex(r.out, new RegExp(`^release:pack: .*${join(dir, 'lep.node')}`, 'm'));
  const empty = tempDir();
  const e = pack([], ['--native', empty]);
  t.is(e.status, 1, e.out);
  t.true(e.out.includes(`--native ${empty}: ${join(empty, 'lep.node')} is missing`), e.out);
});
