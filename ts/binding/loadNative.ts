/**
 * Finds and loads the native addons. Looks at LEP_NATIVE (a directory holding lep.node, or the file
 * itself), then the cmake-js build folders of this package. On failure one error lists every path
 * tried, what each said, and what to install.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { LepError } from '../errors.js';
import type { NativeAddon, NativeSpmAddon } from './NativeTypes.js';

const require = createRequire(import.meta.url);
/** The package root: dist/ts/binding -> three levels up; ts/binding (sources) -> two. */
export const packageRoot = findPackageRoot(dirname(fileURLToPath(import.meta.url)));

function findPackageRoot(start: string): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'CMakeLists.txt'))) return dir;
    dir = dirname(dir);
  }
  return resolve(start, '..', '..', '..');
}

function candidates(file: string): string[] {
  const out: string[] = [];
  const env = process.env.LEP_NATIVE;
  if (env) out.push(existsSync(env) && statSync(env).isDirectory() ? join(env, file) : env.replace(/lep(_spm)?\.node$/, file));
  for (const build of ['Release', 'Debug']) out.push(join(packageRoot, 'build', build, file));
  return out;
}

function load<T>(file: string): T {
  const tried: string[] = [];
  for (const path of candidates(file)) {
    if (!existsSync(path)) {
      tried.push(`  ${path}: not found`);
      continue;
    }
    try {
      return require(path) as T;
    } catch (e) {
      tried.push(`  ${path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new LepError(
    'LEP_NATIVE_NOT_FOUND',
    `cannot load the native addon ${file}. Tried:\n${tried.join('\n')}\n` +
      'HINT: run `npm run setup` (installs libtorch-dev, OpenBLAS, SentencePiece from Debian and builds with cmake-js). ' +
      '"libtorch*.so: cannot open shared object" means libtorch is missing: `apt-get install libtorch-dev` or set ' +
      'LD_LIBRARY_PATH to your libtorch/lib; "undefined symbol" means the addon was built against another libtorch: ' +
      'rebuild with `npm run build:native`. Set LEP_NATIVE to point at a lep.node built elsewhere.',
  );
}

let native: NativeAddon | undefined;
let spm: NativeSpmAddon | undefined;

/** The libtorch addon, loaded on first use. */
export function getNative(): NativeAddon {
  native ??= load<NativeAddon>('lep.node');
  return native;
}

/** The libtorch addon if something loaded it already, without loading it. */
export function loadedNative(): NativeAddon | undefined {
  return native;
}

/** The SentencePiece addon, loaded on first use (a separate .node: protobuf symbol clash). */
export function getSpmNative(): NativeSpmAddon {
  spm ??= load<NativeSpmAddon>('lep_spm.node');
  return spm;
}
