/**
 * The prebuilt native addons lep publishes: one platform package per libtorch flavour, selected at
 * install by npm (optionalDependencies with os/cpu/libc, as sharp and node-llama-cpp do) and at load
 * time by the libtorch present (ts/binding/loadNative.ts). Adding a flavour is adding an entry here
 * and the matching line in package.json's optionalDependencies (a unit test checks they agree);
 * `npm run release:pack` packs every flavour, each from a build that links that flavour's libtorch
 * (build-<id>/Release, build/Release or --native DIR).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PrebuiltFlavour {
  /** Name suffix: the package is `lep-<os>-<cpu>-<id>`. */
  id: string;
  /** `process.platform` the binaries run on. */
  os: 'linux';
  /** `process.arch` the binaries run on. */
  cpu: 'x64';
  /** The C library (npm's `libc` field). */
  libc: 'glibc';
  /** The libtorch library lep.node links, by soname: tells which flavour fits this machine. */
  torchSoname: string;
  /** The libtorch version, for messages. */
  torchVersion: string;
  /** The distribution the binaries are built on, for messages. */
  distro: string;
  /** Its release codename (`VERSION_CODENAME` in /etc/os-release). */
  codename: string;
  /**
   * Runtime packages (no `-dev`, no compiler) that make lep.node and lep_spm.node load: libtorch's
   * runtime, OpenBLAS (without it libtorch falls back to the ~20x slower reference BLAS) and
   * SentencePiece's shared libraries (Debian ships no static SentencePiece library).
   */
  aptPackages: readonly string[];
}

export const PREBUILT_FLAVOURS: readonly PrebuiltFlavour[] = [
  {
    id: 'libtorch1.13',
    os: 'linux',
    cpu: 'x64',
    libc: 'glibc',
    torchSoname: 'libtorch_cpu.so.1.13',
    torchVersion: '1.13',
    distro: 'Debian 12',
    codename: 'bookworm',
    aptPackages: ['libtorch1.13', 'libopenblas0-pthread', 'libsentencepiece0'],
  },
  {
    // Built in a Debian 13 chroot by scripts/ci/libtorch26.sh (into build-libtorch2.6/Release). Debian 13's
    // glibc is newer than 12's, so this build loads on Debian 13 (and later) only.
    id: 'libtorch2.6',
    os: 'linux',
    cpu: 'x64',
    libc: 'glibc',
    torchSoname: 'libtorch_cpu.so.2.6',
    torchVersion: '2.6',
    distro: 'Debian 13',
    codename: 'trixie',
    aptPackages: ['libtorch2.6', 'libopenblas0-pthread', 'libsentencepiece0'],
  },
];

/** The npm package holding a flavour's `lep.node` and `lep_spm.node`. */
export function prebuiltPackageName(f: PrebuiltFlavour): string {
  return `lep-${f.os}-${f.cpu}-${f.id}`;
}

/** The one line that installs a flavour's runtime libraries (with sudo unless running as root). */
export function aptRuntimeLine(f: PrebuiltFlavour, root = process.getuid?.() === 0): string {
  const sudo = root ? '' : 'sudo ';
  return `${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${f.aptPackages.join(' ')}`;
}

/** Where the dynamic loader looks for shared libraries here (enough to tell which libtorch is present). */
function libraryDirs(): string[] {
  const fromEnv = (process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean);
  const triplet = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  return [...fromEnv, `/usr/lib/${triplet}`, `/lib/${triplet}`, '/usr/local/lib', '/usr/lib', '/lib'];
}

/** The directory holding a flavour's libtorch on this machine, if any. */
export function findTorchLibrary(f: PrebuiltFlavour): string | undefined {
  return libraryDirs().find((d) => existsSync(join(d, f.torchSoname)));
}

/** This machine's distribution codename (empty when /etc/os-release is absent). */
export function distroCodename(): string {
  try {
    return /^VERSION_CODENAME=(.*)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]?.replace(/"/g, '') ?? '';
  } catch {
    return '';
  }
}

/** What decides which flavours fit a machine (flavoursForThisMachine reads them from this one). */
export interface MachineFacts {
  platform: string;
  arch: string;
  /** VERSION_CODENAME of /etc/os-release ('' when unknown). */
  codename: string;
  /** Whether the dynamic loader finds this flavour's libtorch. */
  hasTorch: (f: PrebuiltFlavour) => boolean;
}

/**
 * The flavours for a platform in the order the loader tries them: those whose libtorch is present first,
 * then the one built for this distribution (its apt line is the one to print when nothing loads), then
 * the rest in PREBUILT_FLAVOURS order.
 */
export function rankFlavours(flavours: readonly PrebuiltFlavour[], m: MachineFacts): PrebuiltFlavour[] {
  const here = flavours.filter((f) => f.os === m.platform && f.cpu === m.arch);
  const rank = (f: PrebuiltFlavour) => (m.hasTorch(f) ? 0 : f.codename === m.codename ? 1 : 2);
  return [...here].sort((a, b) => rank(a) - rank(b));
}

/** The flavours for this platform, those whose libtorch is present first, then this distribution's. */
export function flavoursForThisMachine(): PrebuiltFlavour[] {
  return rankFlavours(PREBUILT_FLAVOURS, {
    platform: process.platform,
    arch: process.arch,
    codename: distroCodename(),
    hasTorch: (f) => findTorchLibrary(f) !== undefined,
  });
}
