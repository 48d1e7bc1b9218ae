/**
 * Which libtorch flavour (ts/binding/prebuilts.ts) a built addon links, read from its dynamic section
 * (DT_NEEDED) with binutils' readelf, which every machine that builds lep has (g++ depends on it).
 * release:pack packs a build only as the flavour it links, so a libtorch 1.13 build can never ship as
 * the 2.6 package; the loader test builds its fake prebuilt packages for the flavour of the build it has.
 */
import { execFileSync } from 'node:child_process';

import { PREBUILT_FLAVOURS, type PrebuiltFlavour } from '../ts/binding/prebuilts.js';

/** The shared libraries an ELF file names as DT_NEEDED. */
export function neededLibraries(file: string): string[] {
  const out = execFileSync('readelf', ['--dynamic', '--wide', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]!);
}

/** The CUDA parts of libtorch that `file` links (a build against a CUDA libtorch), if any. */
export function linkedCudaLibraries(file: string): string[] {
  return neededLibraries(file).filter((n) => /^lib(torch_cuda|c10_cuda)[._]/.test(n));
}

/**
 * The flavours whose libtorch soname `file` links: [] for an addon that links no libtorch (lep_spm.node)
 * or one no flavour describes (another libtorch), more than one only for a broken build.
 */
export function linkedFlavours(file: string, flavours: readonly PrebuiltFlavour[] = PREBUILT_FLAVOURS): PrebuiltFlavour[] {
  const needed = new Set(neededLibraries(file));
  return flavours.filter((f) => needed.has(f.torchSoname));
}
