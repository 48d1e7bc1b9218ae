#!/usr/bin/env node
/**
 * `npm run release:pack [-- --native DIR] [--out DIR]`: writes into release/ every tarball a user installs.
 *   1. lep-<version>.tgz: the main package (compiled JS with .d.ts, recipes, README, LICENSE and what
 *      `npx lep build` needs: cpp/ and CMakeLists.txt); its "files" list in package.json keeps tests,
 *      benches, fixtures and scripts out. Refused above 3 MB.
 *   2. lep-<os>-<cpu>-<flavour>-<version>.tgz: the prebuilt lep.node and lep_spm.node from DIR (default
 *      build/Release), for the libtorch flavour they link (ts/binding/prebuilts.ts); npm installs it
 *      only on a matching os/cpu/libc. A flavour built elsewhere (another distribution's chroot) is
 *      packed with --native pointing at that build.
 *   3. lep-toy-family-<version>.tgz: the toy base/instruct family `lep demo` runs on (27 MB), kept out of
 *      the main package.
 * Run after the build (`npm run setup`); prints each tarball's packed and unpacked size.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { PREBUILT_FLAVOURS, aptRuntimeLine, prebuiltPackageName, type PrebuiltFlavour } from '../ts/binding/prebuilts.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
/** The main package's packed-size limit (issue 12). */
const MAX_MAIN_BYTES = 3 * 1024 * 1024;
const ADDONS = ['lep.node', 'lep_spm.node'] as const;
const TOY_FAMILY = join(ROOT, 'test', 'fixtures', 'toy-family');
const TOY_FAMILY_LLAMA3 = join(ROOT, 'test', 'fixtures', 'toy-family-llama3');
export const TOY_FAMILY_PACKAGE = 'lep-toy-family';

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
}

function fail(message: string): never {
  console.error(`release:pack: ${message}`);
  process.exit(1);
}

/** `npm pack DIR` into `out`; npm's own JSON report gives the sizes. */
function npmPack(dir: string, out: string): Packed {
  const json = execFileSync('npm', ['pack', dir, '--json', '--pack-destination', out], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [r] = JSON.parse(json) as Packed[];
  return r!;
}

/** The flavour whose libtorch soname the built lep.node names (its DT_NEEDED string). */
function flavourOf(lepNode: string): PrebuiltFlavour {
  const bytes = readFileSync(lepNode);
  const f = PREBUILT_FLAVOURS.find((x) => x.os === process.platform && x.cpu === process.arch && bytes.includes(`${x.torchSoname}\0`));
  if (!f) fail(`${lepNode} links none of the libtorch flavours in ts/binding/prebuilts.ts (${PREBUILT_FLAVOURS.map((x) => x.torchSoname).join(', ')}); add its flavour there`);
  return f;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function platformPackage(f: PrebuiltFlavour, nativeDir: string, version: string, stage: string): string {
  const dir = join(stage, prebuiltPackageName(f));
  mkdirSync(dir, { recursive: true });
  for (const a of ADDONS) copyFileSync(join(nativeDir, a), join(dir, a));
  copyFileSync(join(ROOT, 'LICENSE'), join(dir, 'LICENSE'));
  const manifest = {
    name: prebuiltPackageName(f),
    version,
    description: `lep's prebuilt native addons for ${f.os}-${f.cpu} (${f.libc}), linking libtorch ${f.torchVersion} of ${f.distro}`,
    license: 'MIT',
    os: [f.os],
    cpu: [f.cpu],
    libc: [f.libc],
    files: [...ADDONS, 'LICENSE', 'README.md'],
    // The loader checks these before dlopen: a damaged file would otherwise crash the process.
    lep: { torchSoname: f.torchSoname, distro: f.distro, aptPackages: f.aptPackages, sha256: Object.fromEntries(ADDONS.map((a) => [a, sha256(join(dir, a))])) },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(
    join(dir, 'README.md'),
    `# ${manifest.name}\n\n${manifest.description}. Installed by \`npm install lep\` as an optional dependency; not used directly.\n\n` +
      `Runtime libraries (no compiler, no -dev package):\n\n\`\`\`sh\n${aptRuntimeLine(f, false)}\n\`\`\`\n`,
  );
  return dir;
}

function toyFamilyPackage(version: string, stage: string): string {
  const dir = join(stage, TOY_FAMILY_PACKAGE);
  mkdirSync(dir, { recursive: true });
  for (const entry of ['base', 'instruct', 'README.md', 'provenance.json']) cpSync(join(TOY_FAMILY, entry), join(dir, entry), { recursive: true });
  // The LLaMa-3-tokenizer family (lep demo's Optimized rows) under llama3/, once it has been generated.
  const llama3 = existsSync(join(TOY_FAMILY_LLAMA3, 'base', 'config.json'));
  if (llama3) for (const entry of ['base', 'instruct', 'README.md', 'provenance.json']) if (existsSync(join(TOY_FAMILY_LLAMA3, entry))) cpSync(join(TOY_FAMILY_LLAMA3, entry), join(dir, 'llama3', entry), { recursive: true });
  copyFileSync(join(ROOT, 'LICENSE'), join(dir, 'LICENSE'));
  const manifest = {
    name: TOY_FAMILY_PACKAGE,
    version,
    description: "lep's toy model family (a 6.8 M-parameter base and instruct model trained by lep) that `lep demo` adapts to Russian",
    license: 'MIT',
    files: ['base', 'instruct', 'README.md', 'provenance.json', 'LICENSE', ...(llama3 ? ['llama3'] : [])],
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return dir;
}

function main(): void {
  const { values } = parseArgs({ options: { native: { type: 'string' }, out: { type: 'string' } } });
  const nativeDir = resolve(values.native ?? join(ROOT, 'build', 'Release'));
  const out = resolve(values.out ?? join(ROOT, 'release'));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; optionalDependencies?: Record<string, string> };
  if (!existsSync(join(ROOT, 'dist', 'ts', 'index.js'))) fail('dist/ts/index.js is missing: build first (npm run setup)');
  for (const a of ADDONS) if (!existsSync(join(nativeDir, a))) fail(`${join(nativeDir, a)} is missing: build first (npm run setup), or pass --native DIR`);
  const flavour = flavourOf(join(nativeDir, 'lep.node'));
  const name = prebuiltPackageName(flavour);
  if (pkg.optionalDependencies?.[name] !== pkg.version)
    fail(`package.json's optionalDependencies must list "${name}": "${pkg.version}" or npm will never install the prebuilt`);

  mkdirSync(out, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), 'lep-release-'));
  try {
    const results: [string, Packed][] = [['main', npmPack(ROOT, out)]];
    if (results[0]![1].size > MAX_MAIN_BYTES) fail(`${results[0]![1].filename} is ${results[0]![1].size} bytes packed, over the ${MAX_MAIN_BYTES}-byte limit: check "files" in package.json`);
    results.push([`prebuilt (libtorch ${flavour.torchVersion})`, npmPack(platformPackage(flavour, nativeDir, pkg.version, stage), out)]);
    results.push(['toy family (lep demo)', npmPack(toyFamilyPackage(pkg.version, stage), out)]);
    const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
    for (const [what, r] of results) console.log(`${join(out, r.filename)}  ${mb(r.size)} packed, ${mb(r.unpackedSize)} unpacked, ${r.entryCount} files  (${what})`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

main();
