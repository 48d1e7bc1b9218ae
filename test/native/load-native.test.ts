// The native loader on broken and prebuilt addons (ts/binding/loadNative.ts): every failure is one
// LEP_NATIVE_NOT_FOUND error naming the file and the fix, never a crash; an installed prebuilt package is
// found and checked. Each case runs `lep info` in a child process on a doctored copy of this build's
// lep.node (bytes edited the way a truncated download, another libtorch, or a damaged file would).
// The build is LEP_NATIVE's when set (scripts/ci/libtorch26.sh runs this file on its libtorch 2.6 build),
// else build/Release; the fake prebuilt package is the flavour that build links.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { PREBUILT_FLAVOURS, prebuiltPackageName, type PrebuiltFlavour } from '../../ts/binding/prebuilts.js';
import { linkedFlavours } from '../../scripts/linkedFlavour.js';
import { lepInfo as runtimeInfo } from '../../ts/runtime.js';
import { LEP_CLI as LEP, nativeBuildDir, tempDir, underUlimit } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const { LEP_NATIVE: _, ...ENV } = process.env;
const BUILD = nativeBuildDir();
const FLAVOUR = ((linked) => {
  if (linked.length !== 1) throw new Error(`${BUILD}/lep.node links ${linked.length} libtorch flavours of ts/binding/prebuilts.ts, not 1`);
  return linked[0]!;
})(linkedFlavours(join(BUILD, 'lep.node')));

/** `lep info` in a child process; LEP_NATIVE only when `env` sets it (the installed-package cases must not see this run's). */
function lepInfo(main: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [main, 'info'], { encoding: 'utf8', env: { ...ENV, ...env } });
  return { status: r.status, signal: r.signal, out: r.stdout + r.stderr };
}

/** A folder with a copy of this build's addons, lep.node passed through `edit`. */
function doctored(edit: (b: Buffer) => Buffer): string {
  const dir = tempDir();
  writeFileSync(join(dir, 'lep.node'), edit(readFileSync(join(BUILD, 'lep.node'))));
  copyFileSync(join(BUILD, 'lep_spm.node'), join(dir, 'lep_spm.node'));
  return dir;
}

/** Replaces the first NUL-terminated occurrence of `from` (a dynamic-string-table entry) with `to`, same length. */
function renameString(b: Buffer, from: string, to: string): Buffer {
  const at = b.indexOf(Buffer.from(`\0${from}\0`));
  if (at < 0 || from.length !== to.length) throw new Error(`${from} not in lep.node`);
  const out = Buffer.from(b);
  out.write(to, at + 1, 'latin1');
  return out;
}

test('a truncated lep.node: an error naming the file, not SIGBUS', (t) => {
  const dir = doctored((b) => b.subarray(0, 100_000));
  const r = lepInfo(LEP, { LEP_NATIVE: dir });
  t.is(r.signal, null, r.out);
  t.is(r.status, 1, r.out);
  t.regex(r.out, /LEP_NATIVE_NOT_FOUND/);
  t.true(r.out.includes(`${join(dir, 'lep.node')}: truncated: 100000 bytes`), r.out);
});

test('a lep.node linking a libtorch that is not here: the missing library and the apt runtime line', (t) => {
  const other = FLAVOUR.torchSoname.replace(/\d+\.\d+$/, (v) => '9'.repeat(v.length - 2) + '.' + '9');
  const dir = doctored((b) => renameString(b, FLAVOUR.torchSoname, other));
  const r = lepInfo(LEP, { LEP_NATIVE: dir });
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`${join(dir, 'lep.node')}: ${other}: cannot open shared object file`), r.out);
  t.regex(r.out, new RegExp(`HINT: the system library ${other.replace(/\./g, '\\.')} is missing`));
  t.true(r.out.includes(`apt-get install -y --no-install-recommends ${FLAVOUR.aptPackages.join(' ')}`), r.out);
});

test('a lep.node missing a CUDA library (a build against a CUDA libtorch): no apt line, which would replace that libtorch', (t) => {
  // libgcc_s.so.1 renamed to libcudnn.so.9 (same length), as libtorch-cuda needs cuDNN at load.
  const dir = doctored((b) => renameString(b, 'libgcc_s.so.1', 'libcudnn.so.9'));
  const r = lepInfo(LEP, { LEP_NATIVE: dir });
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`${join(dir, 'lep.node')}: libcudnn.so.9: cannot open shared object file`), r.out);
  t.regex(r.out, /HINT: the CUDA library libcudnn\.so\.9 is missing: this lep\.node was built against a CUDA libtorch\..*LD_LIBRARY_PATH/s);
  t.false(r.out.includes('apt-get install'), r.out);
});

test('a lep.node built against another libtorch (a symbol it calls is absent): refused at load, not at the first call', (t) => {
  // maybe_wrap_dim_slow is a function lep.node imports from libc10 and `lep info` never calls: Node's own
  // require binds it lazily and would load this file; the loader binds every symbol up front (RTLD_NOW).
  // Its mangled name: a plain function in 1.13, a template instance (<long>) in 2.x.
  const bytes = readFileSync(join(BUILD, 'lep.node'));
  const symbol = ['_ZN3c106detail19maybe_wrap_dim_slowEllb', '_ZN3c106detail19maybe_wrap_dim_slowIlEET_S2_S2_b'].find((s) => bytes.includes(`\0${s}\0`));
  if (!symbol) return t.fail(`${BUILD}/lep.node imports no maybe_wrap_dim_slow`);
  const dir = doctored((b) => renameString(b, symbol, `${symbol.slice(0, -1)}X`));
  const r = lepInfo(LEP, { LEP_NATIVE: dir });
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`undefined symbol: ${symbol.slice(0, -1)}X`), r.out);
  t.regex(r.out, /built against another libtorch/);
});

/**
 * A project where lep is installed from the compiled dist with prebuilt packages beside it (no build/):
 * one per flavour in `flavours`, each holding this build's addons (lep.node through `edit`) and the
 * manifest release:pack writes.
 */
function installedLep(edit: (b: Buffer) => Buffer = (b) => b, flavours: readonly PrebuiltFlavour[] = [FLAVOUR]): { main: string; prebuilt: string } {
  const modules = join(tempDir(), 'node_modules');
  mkdirSync(modules, { recursive: true });
  // lep's own dependencies from this checkout
  for (const name of readdirSync(join(ROOT, 'node_modules'))) if (!name.startsWith('.')) symlinkSync(join(ROOT, 'node_modules', name), join(modules, name));
  const lep = join(modules, 'lep');
  cpSync(join(ROOT, 'dist', 'ts'), join(lep, 'dist', 'ts'), { recursive: true });
  for (const f of ['package.json', 'CMakeLists.txt']) copyFileSync(join(ROOT, f), join(lep, f));
  for (const flavour of flavours) {
    const prebuilt = join(modules, prebuiltPackageName(flavour));
    mkdirSync(prebuilt);
    const sha256: Record<string, string> = {};
    for (const f of ['lep.node', 'lep_spm.node']) {
      const bytes = readFileSync(join(BUILD, f));
      sha256[f] = createHash('sha256').update(bytes).digest('hex');
      writeFileSync(join(prebuilt, f), f === 'lep.node' ? edit(bytes) : bytes);
    }
    // what release:pack writes (scripts/release-pack.ts)
    writeFileSync(join(prebuilt, 'package.json'), JSON.stringify({ name: prebuiltPackageName(flavour), version: '0.0.0', lep: { sha256 } }));
  }
  return { main: join(lep, 'dist', 'ts', 'cli', 'main.js'), prebuilt: join(modules, prebuiltPackageName(FLAVOUR)) };
}

test('an installed lep without a build loads the prebuilt package of the libtorch present', (t) => {
  const { main, prebuilt } = installedLep();
  const r = lepInfo(main);
  t.is(r.status, 0, r.out);
  t.regex(r.out, new RegExp(`libtorch +${FLAVOUR.torchVersion.replace('.', '\\.')}`));
  t.true(r.out.includes(`addon         ${join(prebuilt, 'lep.node')} (prebuilt for libtorch ${FLAVOUR.torchVersion}, ${FLAVOUR.distro})`), r.out);
});

test('with every flavour installed (as npm install lep does), the one whose libtorch is present is used, whatever its place in the list', (t) => {
  // Every package holds this build, so any of them would load: only the loader's choice decides which one
  // lep info names. On libtorch 2.6 (scripts/ci/libtorch26.sh) the right one is not the first listed.
  t.true(PREBUILT_FLAVOURS.length > 1);
  const { main, prebuilt } = installedLep(undefined, PREBUILT_FLAVOURS);
  const r = lepInfo(main);
  t.is(r.status, 0, r.out);
  t.true(r.out.includes(`addon         ${join(prebuilt, 'lep.node')} (prebuilt for libtorch ${FLAVOUR.torchVersion}, ${FLAVOUR.distro})`), r.out);
});

test('a prebuilt whose bytes changed after release: refused by its recorded sha256, naming the file', (t) => {
  // A flipped byte deep inside the file keeps the ELF layout valid; only the digest can tell.
  const { main, prebuilt } = installedLep((b) => {
    const out = Buffer.from(b);
    out[out.length - 100] = out[out.length - 100]! ^ 0xff;
    return out;
  });
  const r = lepInfo(main);
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`${join(prebuilt, 'lep.node')} (prebuilt for libtorch ${FLAVOUR.torchVersion}, ${FLAVOUR.distro}): its sha256 differs`), r.out);
  t.regex(r.out, /HINT: .*reinstall lep/);
});

test('LEP_NATIVE naming nothing: only that path is tried, and the hint says so (no silent fallback to another build)', (t) => {
  const missing = join(tempDir(), 'nowhere');
  const r = lepInfo(LEP, { LEP_NATIVE: missing });
  t.is(r.status, 1, r.out);
  t.true(r.out.includes(`Tried:\n  ${missing}: not found\nHINT: LEP_NATIVE names no lep.node`), r.out);
});

test('UCX memory hooks are off in a process that loaded lep.node, unless the user set them', (t) => {
  // Debian 13's libtorch pulls in UCX, whose hooks crashed V8 while lep.node registered (loadNative.ts).
  const code = "const { getNative } = await import(process.argv[1]); getNative().info(); console.log(process.env.UCX_MEM_MMAP_HOOK_MODE + ' ' + process.env.UCX_MEM_MALLOC_HOOKS)";
  const loader = new URL('../../ts/binding/loadNative.js', import.meta.url).href;
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', code, loader], { encoding: 'utf8', env: { ...process.env, ...env } });
  const { UCX_MEM_MMAP_HOOK_MODE: _a, UCX_MEM_MALLOC_HOOKS: _b, ...clean } = process.env;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code, loader], { encoding: 'utf8', env: clean });
  t.is(r.stdout.trim(), 'none no', r.stderr);
  t.is(run({ UCX_MEM_MMAP_HOOK_MODE: 'reloc', UCX_MEM_MALLOC_HOOKS: 'yes' }).stdout.trim(), 'reloc yes');
});

test('an addon the loader cannot map for want of memory is LEP_OUT_OF_MEMORY, never "damaged or built against another libtorch"', (t) => {
  // Data limits from where node barely starts to where lep.node loads (libtorch 1.13): the loader runs out
  // while mapping libtorch and its dependencies somewhere in between (on this machine 120-160 MiB).
  const seen = { loaded: 0, outOfMemory: 0, other: 0 };
  // The BLAS core named, so that no core probe starts (binding/blasCore.ts): a probe under the same limit
  // spins in OpenBLAS too, and would outlive a child killed for its timeout.
  const probeless = { ...process.env, OPENBLAS_CORETYPE: process.env.OPENBLAS_CORETYPE || (runtimeInfo().blasCore ?? '') };
  // Steps of 5 MiB: the window where the loader itself fails is 30-40 MiB wide and moves with the environment.
  for (let kib = 100_000; kib <= 300_000; kib += 5_000) {
    // process.env, LEP_NATIVE kept: the addon this suite tests (the libtorch 2.6 one in CI's chroot).
    // A timeout: at some limits OpenBLAS's start-up retries a failed allocation forever (seen with libtorch
    // 2.6's build in CI's chroot), a library's hang under the limit like the aborts below.
    // 10 s, not 5: on a loaded 2-core machine a start that loads was killed as a hang (CI, 2026-12-06).
    const r = spawnSync(...underUlimit(`-d ${kib}`, [process.execPath, LEP, 'info']), { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL', env: probeless });
    t.notRegex(r.stderr, /LEP_NATIVE_NOT_FOUND|is damaged or was built against another libtorch/, `at ${kib} KiB`);
    if (r.status === 0) seen.loaded++;
    else if (/^lep: cannot load the native addon .*: .*(failed to map segment|cannot map zero-fill pages|cannot allocate memory)\nHINT: the process is out of memory or at a limit/m.test(r.stderr) && /\(code LEP_OUT_OF_MEMORY\)/.test(r.stderr)) seen.outOfMemory++;
    // Else a library's own abort or hang under the limit before lep has a say (std::bad_alloc in libtorch's
    // static initialisers, node failing to start, OpenBLAS spinning): not lep's message to fix.
    else seen.other++;
  }
  t.log(seen);
  // (Whether lep loads under the larger ones depends on the libtorch: 1.13's here from about 210 MiB, 2.6's
  // in CI's chroot not within 300 MiB, where OpenBLAS spins instead.)
  t.true(seen.outOfMemory > 0, 'some limit met the loader');
});
