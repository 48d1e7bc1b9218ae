/**
 * `lep build`: builds lep.node and lep_spm.node from the C++ sources shipped in the package, for machines
 * no prebuilt fits (another distribution, another libtorch, CUDA). cmake-js drives CMake because libtorch
 * is consumed through its CMake package (find_package(Torch)); node-gyp would fight its compiler flags.
 * The result lands in <lep>/build/Release, which the loader prefers to any prebuilt.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';

import { packageRoot } from '../binding/loadNative.js';
import { LepError } from '../errors.js';
import { parse } from './args.js';

/** What a source build needs on Debian 12 / 13 (the compiler, CMake, libtorch's headers, SentencePiece, JSON). */
export const BUILD_APT_PACKAGES = ['cmake', 'g++', 'make', 'libtorch-dev', 'libdnnl-dev', 'libopenblas0-pthread', 'libgloo-dev', 'libsentencepiece-dev', 'nlohmann-json3-dev'];

export const usage = `lep build [--libtorch DIR] [--without-onednn] [--debug]   build the native addons from source (where no prebuilt fits)
  Runs cmake-js on lep's C++ sources; writes <lep>/build/Release (or Debug), loaded before any prebuilt.
  --libtorch DIR  an unpacked libtorch (official 2.x, CUDA); default: $LIBTORCH, else the system's
  --without-onednn  build without oneDNN (libdnnl-dev), which float32 CPU training calls for its products
                  (faster than OpenBLAS on AVX2 and AVX-512 CPUs); the BLAS then runs them. Implied by --libtorch
  Needs on Debian: apt-get install -y --no-install-recommends ${BUILD_APT_PACKAGES.join(' ')}
Example: lep build --libtorch /opt/libtorch`;

function hasTool(tool: string): boolean {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function run(argv: string[]): void {
  const { values } = parse(argv, { libtorch: { type: 'string' }, 'without-onednn': { type: 'boolean' }, debug: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const libtorch = values.libtorch === undefined ? process.env.LIBTORCH : resolve(values.libtorch as string);
  if (libtorch !== undefined && !existsSync(join(libtorch, 'share', 'cmake', 'Torch')))
    throw new LepError('LEP_BUILD_LIBTORCH', `${libtorch} (--libtorch or LIBTORCH) is not an unpacked libtorch: it has no share/cmake/Torch.\nHINT: point it at the folder that holds lib/ and share/cmake/Torch.`);
  const missing = ['cmake', 'c++'].filter((t) => !hasTool(t));
  if (missing.length > 0)
    throw new LepError(
      'LEP_BUILD_TOOLS',
      `lep build needs ${missing.join(' and ')}, not found on PATH.\nHINT: apt-get install -y --no-install-recommends ${BUILD_APT_PACKAGES.join(' ')}`,
    );
  const cmakeJs = createRequire(import.meta.url).resolve('cmake-js/bin/cmake-js');
  const common = ['--out', 'build', ...(values.debug ? ['--debug'] : [])];
  // Configured every time, with the oneDNN choice stated: cmake-js's `compile` configures only a fresh
  // build folder, so a flag given to a second build would be ignored (and CMake caches option defaults).
  const onednn = values['without-onednn'] || libtorch !== undefined ? 'OFF' : 'ON';
  console.log(`lep build: cmake-js in ${packageRoot}${libtorch ? ` against ${libtorch}` : ''}, oneDNN ${onednn} (a few minutes)`);
  for (const step of [['configure', ...common, `--CDLEP_ONEDNN=${onednn}`], ['build', ...common]]) {
    const r = spawnSync(process.execPath, [cmakeJs, ...step], {
      cwd: packageRoot,
      stdio: 'inherit',
      env: { ...process.env, ...(libtorch ? { LIBTORCH: libtorch } : {}), CMAKE_BUILD_PARALLEL_LEVEL: process.env.CMAKE_BUILD_PARALLEL_LEVEL ?? String(availableParallelism()) },
    });
    if (r.status !== 0)
      throw new LepError(
        'LEP_BUILD_FAILED',
        `the native build failed (cmake-js ${step[0]} exit ${r.status ?? r.signal}); its output is above.\nHINT: "Could not find a package configuration file provided by Torch" means no libtorch: install libtorch-dev or pass --libtorch DIR; "oneDNN's headers were not found": apt-get install libdnnl-dev or pass --without-onednn; missing headers: apt-get install -y --no-install-recommends ${BUILD_APT_PACKAGES.join(' ')}`,
      );
  }
  console.log(`lep build: done, ${join(packageRoot, 'build', values.debug ? 'Debug' : 'Release')} (lep.node, lep_spm.node)`);
}
