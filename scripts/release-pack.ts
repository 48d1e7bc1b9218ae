#!/usr/bin/env node
/**
 * `npm run release:pack [-- --native DIR]... [--partial] [--out DIR]`: writes into release/ every tarball a
 * user installs.
 *   1. lep-<version>.tgz: the main package (compiled JS with .d.ts, recipes, README, LICENSE and what
 *      `npx lep build` needs: cpp/ and CMakeLists.txt); its "files" list in package.json keeps tests,
 *      benches, fixtures and scripts out. Refused above 3 MB.
 *   2. lep-<os>-<cpu>-<flavour>-<version>.tgz, one per libtorch flavour in ts/binding/prebuilts.ts: the
 *      prebuilt lep.node and lep_spm.node; npm installs them only on a matching os/cpu/libc, and the loader
 *      uses the one whose libtorch is present. Each flavour's build is looked for in the --native DIRs,
 *      then build-<id>/Release (scripts/ci/libtorch26.sh builds the Debian 13 one into
 *      build-libtorch2.6/Release), then build/Release (this machine's build); a build is packed only as the
 *      flavour whose libtorch soname its lep.node links (DT_NEEDED), and one in build-<id>/ that links
 *      another is refused.
 *      A release is complete or not made: the main package names every flavour in optionalDependencies, so
 *      a missing build fails, naming the command that makes it. --partial packs the flavours that were
 *      built and only warns (for trying the packages locally, never for publishing).
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
import { linkedCudaLibraries, linkedFlavours } from './linkedFlavour.js';

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

/** The CI jobs that build a flavour in its distribution's chroot (the others are built by `npm run setup` on their distribution). */
const CHROOT_BUILDS: Record<string, string> = { 'libtorch2.6': 'sudo bash scripts/ci/libtorch26.sh' };

function howToBuild(f: PrebuiltFlavour): string {
  const command = CHROOT_BUILDS[f.id] ?? `npm run setup (on ${f.distro})`;
  return `build it with \`${command}\`, or build it on ${f.distro} and pass --native DIR`;
}

interface Build {
  dir: string;
  flavour: PrebuiltFlavour;
}

/**
 * The flavour a build folder holds, from the libtorch its lep.node links; fails when the folder is meant
 * for another flavour (build-<id>/), links no known or several flavours, or lep_spm.node links a
 * different libtorch.
 */
function flavourOfBuild(dir: string, expected?: PrebuiltFlavour): PrebuiltFlavour {
  const lepNode = join(dir, 'lep.node');
  const linked = (file: string) => {
    try {
      return linkedFlavours(file);
    } catch (e) {
      return fail(`cannot read the libraries ${file} links (readelf: ${(e as Error).message.split('\n')[0]}): rebuild it`);
    }
  };
  // A prebuilt links the distribution's CPU libtorch: a build against a CUDA one (Debian's libtorch-cuda links
  // the same libtorch_cpu soname) would ship as that flavour and fail to load without CUDA and cuDNN.
  const cuda = linkedCudaLibraries(lepNode);
  if (cuda.length > 0) fail(`${lepNode} links ${cuda.join(', ')}: it was built against a CUDA libtorch, which no prebuilt flavour is; build the release against the distribution's CPU libtorch`);
  const found = linked(lepNode);
  const sonames = PREBUILT_FLAVOURS.map((x) => x.torchSoname).join(', ');
  if (found.length !== 1)
    fail(`${lepNode} links ${found.length === 0 ? 'none' : found.map((x) => x.torchSoname).join(' and ')} of the libtorch flavours in ts/binding/prebuilts.ts (${sonames}); add its flavour there`);
  const f = found[0]!;
  if (expected && f !== expected)
    fail(`${lepNode} links ${f.torchSoname}, not ${expected.torchSoname}: it is a libtorch ${f.torchVersion} build in the folder of the libtorch ${expected.torchVersion} flavour; ${howToBuild(expected)}`);
  const spm = linked(join(dir, 'lep_spm.node'));
  if (spm.some((x) => x !== f)) fail(`${join(dir, 'lep_spm.node')} links ${spm.map((x) => x.torchSoname).join(', ')}, but lep.node beside it links ${f.torchSoname}: rebuild ${dir}`);
  return f;
}

/** The build to pack for each flavour: the first of --native DIRs, build-<id>/Release, build/Release. */
function findBuilds(natives: string[]): Map<PrebuiltFlavour, Build> {
  const hasAddons = (dir: string) => ADDONS.every((a) => existsSync(join(dir, a)));
  const builds = new Map<PrebuiltFlavour, Build>();
  const take = (dir: string, flavour: PrebuiltFlavour) => {
    const first = builds.get(flavour);
    if (first) console.log(`release:pack: ${dir} is also a libtorch ${flavour.torchVersion} build; packing ${first.dir}`);
    else builds.set(flavour, { dir, flavour });
  };
  for (const dir of natives) {
    for (const a of ADDONS) if (!existsSync(join(dir, a))) fail(`--native ${dir}: ${join(dir, a)} is missing`);
    take(dir, flavourOfBuild(dir));
  }
  for (const f of PREBUILT_FLAVOURS) {
    const dir = join(ROOT, `build-${f.id}`, 'Release');
    if (hasAddons(dir)) take(dir, flavourOfBuild(dir, f));
  }
  const local = join(ROOT, 'build', 'Release');
  if (hasAddons(local)) take(local, flavourOfBuild(local));
  return builds;
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
  const { values } = parseArgs({ options: { native: { type: 'string', multiple: true }, partial: { type: 'boolean' }, out: { type: 'string' } } });
  const out = resolve(values.out ?? join(ROOT, 'release'));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; optionalDependencies?: Record<string, string> };
  if (!existsSync(join(ROOT, 'dist', 'ts', 'index.js'))) fail('dist/ts/index.js is missing: build first (npm run setup)');
  for (const f of PREBUILT_FLAVOURS)
    if (pkg.optionalDependencies?.[prebuiltPackageName(f)] !== pkg.version)
      fail(`package.json's optionalDependencies must list "${prebuiltPackageName(f)}": "${pkg.version}" or npm will never install the prebuilt`);
  const builds = findBuilds((values.native ?? []).map((d) => resolve(d)));
  for (const f of PREBUILT_FLAVOURS.filter((x) => !builds.has(x))) {
    const message =
      `no libtorch ${f.torchVersion} (${f.distro}) build of lep.node and lep_spm.node in ${join('build-' + f.id, 'Release')} or build/Release, ` +
      `so ${prebuiltPackageName(f)} cannot be packed: ${howToBuild(f)}`;
    if (!values.partial) fail(`${message}. (--partial packs the other flavours; such a release is incomplete: lep's package.json names every flavour.)`);
    console.warn(`release:pack: WARNING: ${message}. Packing without it (--partial).`);
  }

  mkdirSync(out, { recursive: true });
  // A flavour not packed this time must not leave an older tarball behind that would be installed with this release.
  for (const f of PREBUILT_FLAVOURS) if (!builds.has(f)) rmSync(join(out, `${prebuiltPackageName(f)}-${pkg.version}.tgz`), { force: true });
  const stage = mkdtempSync(join(tmpdir(), 'lep-release-'));
  try {
    const results: [string, Packed][] = [['main', npmPack(ROOT, out)]];
    if (results[0]![1].size > MAX_MAIN_BYTES) fail(`${results[0]![1].filename} is ${results[0]![1].size} bytes packed, over the ${MAX_MAIN_BYTES}-byte limit: check "files" in package.json`);
    for (const flavour of PREBUILT_FLAVOURS.filter((f) => builds.has(f))) {
      const { dir } = builds.get(flavour)!;
      results.push([`prebuilt (libtorch ${flavour.torchVersion}, ${flavour.distro}) from ${dir}`, npmPack(platformPackage(flavour, dir, pkg.version, stage), out)]);
    }
    results.push(['toy family (lep demo)', npmPack(toyFamilyPackage(pkg.version, stage), out)]);
    const mb = (n: number) => `${(n / 1e6).toFixed(2)} MB`;
    for (const [what, r] of results) console.log(`${join(out, r.filename)}  ${mb(r.size)} packed, ${mb(r.unpackedSize)} unpacked, ${r.entryCount} files  (${what})`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

main();
