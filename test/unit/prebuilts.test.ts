// The prebuilt flavour list (ts/binding/prebuilts.ts) and the published package.json agree: npm installs
// only what optionalDependencies names, and the main package ships no tests, fixtures or scripts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { PREBUILT_FLAVOURS, aptRuntimeLine, prebuiltPackageName, rankFlavours, type PrebuiltFlavour } from '../../ts/binding/prebuilts.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  files: string[];
  optionalDependencies: Record<string, string>;
  exports: Record<string, Record<string, string>>;
};

test('every prebuilt flavour is an optional dependency at the package version, and nothing else is', (t) => {
  const expected = Object.fromEntries(PREBUILT_FLAVOURS.map((f) => [prebuiltPackageName(f), pkg.version]));
  t.deepEqual(pkg.optionalDependencies, expected);
});

test('flavour names are unique and each names its libtorch soname and runtime packages', (t) => {
  t.is(new Set(PREBUILT_FLAVOURS.map(prebuiltPackageName)).size, PREBUILT_FLAVOURS.length);
  for (const f of PREBUILT_FLAVOURS) {
    t.regex(f.torchSoname, /^libtorch_cpu\.so\.\d+\.\d+$/);
    t.true(f.aptPackages.every((p) => !p.endsWith('-dev')), `${f.id}: runtime packages only`);
  }
});

test('flavours are libtorch 1.13 on Debian 12 and libtorch 2.6 on Debian 13, one per distribution', (t) => {
  t.deepEqual(
    PREBUILT_FLAVOURS.map((f) => [prebuiltPackageName(f), f.torchSoname, f.codename, f.aptPackages.join(' ')]),
    [
      ['lep-linux-x64-libtorch1.13', 'libtorch_cpu.so.1.13', 'bookworm', 'libtorch1.13 libopenblas0-pthread libsentencepiece0'],
      ['lep-linux-x64-libtorch2.6', 'libtorch_cpu.so.2.6', 'trixie', 'libtorch2.6 libopenblas0-pthread libsentencepiece0'],
    ],
  );
  t.is(new Set(PREBUILT_FLAVOURS.map((f) => f.codename)).size, PREBUILT_FLAVOURS.length);
});

const ids = (list: PrebuiltFlavour[]) => list.map((f) => f.id);
const machine = (codename: string, present: string[] = []) => ({
  platform: 'linux',
  arch: 'x64',
  codename,
  hasTorch: (f: PrebuiltFlavour) => present.includes(f.torchSoname),
});

test('load order: the flavour whose libtorch is present comes first, whatever the distribution says', (t) => {
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine('trixie', ['libtorch_cpu.so.2.6']))), ['libtorch2.6', 'libtorch1.13']);
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine('bookworm', ['libtorch_cpu.so.1.13']))), ['libtorch1.13', 'libtorch2.6']);
  // libtorch 1.13 on Debian 13 (a backport, LD_LIBRARY_PATH): what is there wins over the codename
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine('trixie', ['libtorch_cpu.so.1.13']))), ['libtorch1.13', 'libtorch2.6']);
});

test('load order with no libtorch: this distribution first (its apt line is the one the error prints), else the list order', (t) => {
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine('trixie'))), ['libtorch2.6', 'libtorch1.13']);
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine('bookworm'))), ['libtorch1.13', 'libtorch2.6']);
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine('noble'))), ids([...PREBUILT_FLAVOURS]));
  t.deepEqual(ids(rankFlavours(PREBUILT_FLAVOURS, machine(''))), ids([...PREBUILT_FLAVOURS]));
});

test('load order: no flavour for another platform or CPU', (t) => {
  t.deepEqual(rankFlavours(PREBUILT_FLAVOURS, { ...machine('trixie', ['libtorch_cpu.so.2.6']), arch: 'arm64' }), []);
  t.deepEqual(rankFlavours(PREBUILT_FLAVOURS, { ...machine('bookworm'), platform: 'darwin' }), []);
});

test('the README names the runtime line of every flavour as one line (the fresh-machine test runs the one the error prints)', (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n');
  for (const f of PREBUILT_FLAVOURS) t.true(readme.includes(aptRuntimeLine(f, false)), `${f.distro}: ${aptRuntimeLine(f, false)}`);
});

test('the apt runtime line is one runnable line, with sudo only when not root', (t) => {
  const f = PREBUILT_FLAVOURS[0]!;
  t.is(aptRuntimeLine(f, true), `apt-get update && apt-get install -y --no-install-recommends ${f.aptPackages.join(' ')}`);
  t.is(aptRuntimeLine(f, false), `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${f.aptPackages.join(' ')}`);
});

test('the published files are the compiled library, recipes and the C++ sources, not tests or scripts', (t) => {
  t.false(pkg.files.some((f) => /^(test|bench|scripts|ts)\b|dist\/(test|bench|scripts)/.test(f)), pkg.files.join(', '));
  t.true(pkg.files.includes('cpp/') && pkg.files.includes('CMakeLists.txt'), 'npx lep build needs the sources');
  // CommonJS require(esm) needs a condition other than "import"
  t.is(pkg.exports['.']!.default, './dist/ts/index.js');
});
