/**
 * BLAS core choice (ts/binding/blasCore.ts): the rule on this machine's real OpenBLAS, through real probe
 * children (no mocks): a generic default (Prescott, forced as Debian 12's OpenBLAS picks it on new Xeons)
 * is replaced by the CPU's best core after that core passes the matmul check; a probe that cannot load is
 * rejected with its reason; the user's OPENBLAS_CORETYPE wins; the cached choice is applied before
 * libtorch loads OpenBLAS; `lep info` reports CPU features, the core and why.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import {
  BLAS_CHECK_TOLERANCE, coreForLevel, coreLevel, cpuLevel, decideBlasCore, describeFeatures, parseCpuinfo, runBlasProbe,
} from '../../ts/binding/blasCore.js';
import { trainingDtypeHint } from '../../ts/runtime.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';

const run = promisify(execFile);
const cpu = parseCpuinfo(readFileSync('/proc/cpuinfo', 'utf8'));
const best = coreForLevel(cpuLevel(cpu));
/** /proc/cpuinfo's text for a made-up CPU with these flags. */
const line = (flags: string): string => `model name\t: Test CPU\nflags\t\t: ${flags}\n`;

test('cpuinfo flags map to instruction-set levels and cores', (t) => {
  const skx = parseCpuinfo(line('fpu sse3 avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl avx512_bf16 amx_tile'));
  t.is(skx.model, 'Test CPU');
  t.is(parseCpuinfo(`processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\nmodel name\t: AMD EPYC\n`).model, 'AMD EPYC (family 26, model 2)', 'the generation beside a name that does not say it');
  t.true(skx.avx512bf16 && skx.amx);
  t.is(describeFeatures(skx), 'AVX, AVX2, FMA, AVX-512, AVX-512 BF16, AMX', 'what lep info prints for it');
  t.is(describeFeatures(parseCpuinfo(line('fpu sse3 avx avx2 fma'))), 'AVX, AVX2, FMA');
  t.is(coreForLevel(cpuLevel(skx)), 'SKYLAKEX');
  t.is(coreForLevel(cpuLevel(parseCpuinfo(line('avx avx2 fma avx512f')))), 'HASWELL', 'AVX-512 F alone is not what SkylakeX kernels need');
  t.is(coreForLevel(cpuLevel(parseCpuinfo(line('sse3 avx')))), 'SANDYBRIDGE');
  t.is(coreForLevel(cpuLevel(parseCpuinfo(line('sse3 ssse3')))), undefined);
  t.is(coreLevel('Prescott'), 0);
  t.is(coreLevel('Zen'), 2);
  t.is(coreLevel('Cooperlake'), 3);
  t.is(coreLevel('SomeFutureCore'), 3, 'an unknown core is never replaced');
});

test('the training dtype hint: bf16 only where the CPU has AMX or AVX-512 BF16, and lep info prints it for this CPU', async (t) => {
  const amx = trainingDtypeHint(parseCpuinfo(line('avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl avx512_bf16 amx_tile')));
  t.is(amx.dtype, 'bf16');
  t.regex(amx.reason, /AMX.*--dtype bf16.*f32 unless told/);
  const bf16Only = trainingDtypeHint(parseCpuinfo(line('avx avx2 fma avx512f avx512cd avx512bw avx512dq avx512vl avx512_bf16')));
  t.is(bf16Only.dtype, 'bf16');
  t.regex(bf16Only.reason, /AVX-512 BF16 \(no AMX\).*--dtype bf16.*f32 unless told/);
  const avx2 = trainingDtypeHint(parseCpuinfo(line('sse3 avx avx2 fma')));
  t.is(avx2.dtype, 'f32');
  t.regex(avx2.reason, /emulated.*not measured/);
  const { stdout } = await run('node', [LEP, 'info']);
  const expected = trainingDtypeHint(cpu);
  t.true(stdout.includes(`train dtype   ${expected.dtype} on this CPU: ${expected.reason}`), stdout);
});

test('a generic library default is replaced by the best core, which the probe loads and checks', (t) => {
  if (!best) return t.pass('this CPU has no AVX: nothing to choose');
  const prescott = runBlasProbe('PRESCOTT');  // what Debian 12's OpenBLAS picks by itself on Sapphire-Rapids-class Xeons
  t.is(prescott.core, 'Prescott', prescott.failed);
  t.true(prescott.f32Error < BLAS_CHECK_TOLERANCE.f32 && prescott.f64Error < BLAS_CHECK_TOLERANCE.f64);
  const tried: string[] = [];
  const choice = decideBlasCore(cpu, prescott, (core) => {
    tried.push(core);
    return runBlasProbe(core);
  });
  t.deepEqual(tried, [best]);
  t.is(choice.chosen, best, choice.reason);
  t.is(choice.libraryDefault, 'Prescott');
  t.regex(choice.reason, new RegExp(`generic Prescott.*OPENBLAS_CORETYPE=${best}.*passed the matmul check`));
});

test('a core that fails to load, loads as another core or computes wrongly is rejected and the default kept', (t) => {
  if (!best) return t.pass('this CPU has no AVX: nothing to choose');
  const prescott = runBlasProbe('PRESCOTT');
  // A child that dies before reporting (as one hit by SIGILL would): preloading a missing module.
  const missing = join(tempDir(), 'missing.cjs');
  const broken = runBlasProbe(best, { NODE_OPTIONS: `--require ${missing}` });
  t.regex(broken.failed ?? '', /^probe exit status 1/);
  const crashed = decideBlasCore(cpu, prescott, () => broken);
  t.is(crashed.chosen, undefined);
  t.regex(crashed.reason, new RegExp(`${best} was tried and rejected: probe exit status 1.*kept Prescott`));
  const wrong = decideBlasCore(cpu, prescott, (core) => ({ ...runBlasProbe(core), f32Error: 0.3 }));
  t.is(wrong.chosen, undefined);
  t.regex(wrong.reason, /matmul check failed \(relative error f32 3\.0e-1/);
  const other = decideBlasCore(cpu, prescott, () => runBlasProbe('NEHALEM'));
  t.is(other.chosen, undefined);
  t.regex(other.reason, /loaded Nehalem for it/);
});

test('the library default is kept when it already uses the best instruction set', (t) => {
  const own = runBlasProbe(undefined);
  t.falsy(own.failed);
  const choice = decideBlasCore(cpu, { ...own, core: 'SkylakeX' }, () => t.fail('no second probe') as never);
  t.is(choice.chosen, undefined);
  t.regex(choice.reason, /already uses this CPU's best instruction set; kept/);
});

test('lep info: the cached choice is applied before OpenBLAS loads; the user setting wins; a fresh cache, another addon or a rebuilt one probes', async (t) => {
  const cache = tempDir();
  mkdirSync(join(cache, 'lep'));
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: cache };
  delete env.OPENBLAS_CORETYPE;
  type Info = { blasCore: string; blasCoreReason: string; blasPath: string; cpu: { features: string } };
  const info = async (extra: Record<string, string> = {}): Promise<Info> =>
    JSON.parse((await run('node', [LEP, 'info', '--json'], { env: { ...env, ...extra } })).stdout) as Info;

  const fresh = await info();  // no cache: probes, writes the cache, keeps or chooses by the rule
  const written = JSON.parse(readFileSync(join(cache, 'lep', 'blas-core.json'), 'utf8')) as { key: string; blasPath: string; blasStamp: string };
  t.is(written.blasPath, fresh.blasPath);
  t.truthy(fresh.blasCore);
  t.regex(fresh.blasCoreReason, /OpenBLAS/);
  t.is(fresh.cpu.features, describeFeatures(cpu), "lep info's CPU features are /proc/cpuinfo's");

  // A cached decision for a machine whose OpenBLAS picked Prescott: lep sets the core before loading.
  writeFileSync(join(cache, 'lep', 'blas-core.json'), JSON.stringify({
    ...written, choice: { chosen: 'NEHALEM', libraryDefault: 'Prescott', reason: 'chosen for this test' },
  }));
  const chosen = await info();
  t.is(chosen.blasCore, 'Nehalem');
  t.is(chosen.blasCoreReason, 'chosen for this test');

  // Another addon (a copy of the one in use, through LEP_NATIVE) is another key: probed afresh.
  const { addonCandidatePaths } = await import('../../ts/binding/loadNative.js');
  const copy = join(cache, 'addon');
  mkdirSync(copy);
  copyFileSync(addonCandidatePaths().find((p) => existsSync(p))!, join(copy, 'lep.node'));
  const other = await info({ LEP_NATIVE: copy });
  t.not(other.blasCoreReason, 'chosen for this test');
  t.is(other.blasPath, fresh.blasPath);
  // ... and the same addon rebuilt (its size or time changes) probes again instead of using the cache.
  const forCopy = JSON.parse(readFileSync(join(cache, 'lep', 'blas-core.json'), 'utf8')) as typeof written;
  writeFileSync(join(cache, 'lep', 'blas-core.json'), JSON.stringify({ ...forCopy, choice: { reason: 'cached for the copy' } }));
  t.is((await info({ LEP_NATIVE: copy })).blasCoreReason, 'cached for the copy');
  utimesSync(join(copy, 'lep.node'), new Date(2020, 0, 1), new Date(2020, 0, 1));
  t.not((await info({ LEP_NATIVE: copy })).blasCoreReason, 'cached for the copy');

  const user = await info({ OPENBLAS_CORETYPE: 'SANDYBRIDGE' });
  t.is(user.blasCore, 'Sandybridge');
  // ... and says what it leaves unused where the CPU has more than AVX (Sandybridge's kernels).
  const more = cpuLevel(cpu) > 1 ? ` \\(its kernels use AVX, this CPU has ${cpuLevel(cpu) === 3 ? 'AVX-512' : 'AVX2'}: unset it for faster BLAS products, and lep checks and picks the core\\)` : '';
  t.regex(user.blasCoreReason, new RegExp(`OPENBLAS_CORETYPE=SANDYBRIDGE is set in the environment; lep leaves it${more}$`));
  // A name OpenBLAS does not know: it picks by itself, silently; lep info says so.
  const unknown = await info({ OPENBLAS_CORETYPE: 'NOSUCHCORE' });
  t.not(unknown.blasCore.toLowerCase(), 'nosuchcore');
  t.regex(unknown.blasCoreReason, new RegExp(`but OpenBLAS runs ${unknown.blasCore}: it does not know "NOSUCHCORE"`));
});
