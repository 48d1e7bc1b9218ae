// The prebuilt flavour list (ts/binding/prebuilts.ts) and the published package.json agree: npm installs
// only what optionalDependencies names, and the main package ships no tests, fixtures or scripts.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { PREBUILT_FLAVOURS, aptRuntimeLine, prebuiltPackageName } from '../../ts/binding/prebuilts.js';

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
