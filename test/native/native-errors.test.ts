/**
 * One C++ exception -> JS error path (cpp/common/JsError.h) for jobs and synchronous calls alike: a
 * libtorch error thrown inside a synchronous call becomes an Error with code LEP_TORCH (node-addon-api's
 * own wrapper catches only Napi::Error: before, such an exception terminated the process), and a core
 * error keeps its code on either path.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import { callNative, LepError } from '../../ts/errors.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { propagate } from '../../ts/propagate/index.js';
import { lepInfo } from '../../ts/runtime.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { tempDir, tinyModel, underUlimit } from '../helpers.js';

/**
 * `command` in a mount namespace of its own where /proc/sys/vm/max_map_count reads what `fake` holds. The
 * namespace's /proc is made private first (not `unshare --propagation private`, which fails where / is
 * not a mount point, as in CI's chroot), so the bind never reaches the host's /proc.
 */
function withMapLimitFrom(fake: string, command: string[]): [string, string[]] {
  return ['unshare', ['-m', '--propagation', 'unchanged', 'bash', '-c', `mount --make-rprivate /proc && mount --bind "${fake}" /proc/sys/vm/max_map_count && exec "$0" "$@"`, ...command]];
}

test('a libtorch error in a synchronous call is a LEP_TORCH error, and the process lives on', async (t) => {
  const m = await LepModel.load(await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 }));
  // rows x cols matches the 4 tokens, but negative sizes make torch::from_blob throw c10::Error.
  const e = t.throws(() => callNative(() => m.native.lossAndGrads({ tokens: new Int32Array(4), rows: -2, cols: -2, params: 'all' }, null)), { instanceOf: LepError });
  t.is(e.code, 'LEP_TORCH');
  t.notRegex(e.message, /Exception raised from|frame #/, 'no C++ backtrace in the message');
  t.is(m.native.info().loraParameters, 0, 'the model still answers');
  m.dispose();
});

test('a core error keeps its code in a synchronous call and in a job', async (t) => {
  const missing = `${tempDir()}/none.safetensors`;
  const sync = t.throws(() => callNative(() => getNative().inspectSafetensors(missing)), { instanceOf: LepError });
  t.is(sync.code, 'LEP_FILE_NOT_FOUND');
  const job = await t.throwsAsync(LepModel.load(await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 }), { overrides: [missing] }), { instanceOf: LepError });
  t.is(job.code, 'LEP_FILE_NOT_FOUND');
});

test('a job that gets no thread (the thread limit) is a LEP_OUT_OF_MEMORY LepError, not a raw error or a job that never settles', (t) => {
  const model = fileURLToPath(new URL('../../../test/fixtures/toy-family/base', import.meta.url));
  const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));
  const child = `const lep = await import(process.argv[1]);
const r = await lep.LepModel.load(process.argv[2]).then(() => 'loaded', (e) => JSON.stringify({ lep: e instanceof lep.LepError, code: e.code, message: e.message }));
console.log(r);`;
  // The BLAS core this process runs, named: the child then starts no core probe (binding/blasCore.ts), a
  // process of its own that the thread limit stalls until its 2-minute timeout.
  const env = { ...process.env, OPENBLAS_CORETYPE: lepInfo().blasCore ?? '' };
  // RLIMIT_NPROC counts the threads of a user (root is exempt, so the child runs as nobody). The fewest
  // that let a model load are node's, OpenBLAS's and the load job's own: one fewer leaves the job without
  // its thread, whatever this machine's count is.
  const command = (threads: number) => underUlimit(`-u ${threads}`, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', child, INDEX, model]);
  const run = (threads: number) => spawnSync(...command(threads), { encoding: 'utf8', env }).stdout.trim();
  let fewest = 0;
  for (let n = 8; n <= 64 && !fewest; n++) if (run(n) === 'loaded') fewest = n;
  t.true(fewest > 0, 'a model loads with at most 64 threads');
  const failed = JSON.parse(run(fewest - 1)) as { lep: boolean; code: string; message: string };
  t.true(failed.lep);
  t.is(failed.code, 'LEP_OUT_OF_MEMORY');
  t.regex(failed.message, /^cannot start a thread for the job \(Resource temporarily unavailable; a memory limit, or the thread limit `ulimit -u`\)\nHINT: /);
  t.notRegex(failed.message, /max_map_count/);
  // The same failure in a process at the kernel's limit on mappings (a mount namespace where
  // vm.max_map_count reads 100, below what any process holds): the hint names that limit instead.
  const fake = join(tempDir(), 'max_map_count');
  writeFileSync(fake, '100\n');
  const [bash, args] = command(fewest - 1);
  const r = spawnSync(...withMapLimitFrom(fake, [bash, ...args]), { encoding: 'utf8', env });
  t.is(r.status, 0, r.stderr);
  const atLimit = JSON.parse(r.stdout.trim()) as { code: string; message: string };
  t.is(atLimit.code, 'LEP_OUT_OF_MEMORY');
  t.regex(atLimit.message, /\nHINT: this process holds \d+ memory mappings, at the kernel's limit vm\.max_map_count=100, which fails an allocation however much memory is free: raise it/);
});

test('a CUDA device this libtorch or machine lacks is LEP_NO_CUDA with a hint, before any work (a model, propagation)', async (t) => {
  const info = lepInfo();
  const toy = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family');
  // Past the last GPU where there are some (libtorch's "invalid device ordinal" mid-job before); any CUDA device where there are none.
  const device = info.cudaAvailable ? `cuda:${info.cudaDevices}` : 'cuda:1';
  const load = await t.throwsAsync(LepModel.load(join(toy, 'base'), { device }), { instanceOf: LepError });
  t.is(load!.code, 'LEP_NO_CUDA', load!.message);
  t.regex(load!.message, info.cudaAvailable ? /this process sees \d+ CUDA device\(s\)[\s\S]*\nHINT: / : /this libtorch has no CUDA device\nHINT: /);
  const out = join(tempDir(), 'propagated');
  const prop = await t.throwsAsync(propagate({ base: join(toy, 'base'), donor: join(toy, 'base'), instruct: join(toy, 'instruct'), out, method: 'conversion', device }), { instanceOf: LepError });
  t.is(prop!.code, 'LEP_NO_CUDA', prop!.message);
  t.regex(prop!.message, /\nHINT: /);
  t.false(existsSync(out), 'nothing written');
  // Training checks the device before it makes --out (an empty one was left behind).
  const { blocks } = await packDocuments([['Привет, мир. '.repeat(50)]], Tokenizer.fromDir(join(toy, 'base')), { seqLen: 16 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const run = join(tempDir(), 'run');
  const train = await t.throwsAsync(trainModel(join(toy, 'base'), run, { data, steps: 1, device }), { instanceOf: LepError });
  t.is(train!.code, 'LEP_NO_CUDA', train!.message);
  t.false(existsSync(run), 'no --out made');
});

test('mappingsAtLimit (the addon loader\'s hint) tells a process at vm.max_map_count from one far below it', (t) => {
  const code = "const { mappingsAtLimit } = await import(process.argv[1]); console.log(JSON.stringify(mappingsAtLimit() ?? null))";
  const module = fileURLToPath(new URL('../../ts/processMemory.js', import.meta.url));
  const node = [process.execPath, '--input-type=module', '-e', code, module];
  t.is(spawnSync(node[0]!, node.slice(1), { encoding: 'utf8' }).stdout.trim(), 'null', 'the default limit (65530 here) is far away');
  const fake = join(tempDir(), 'max_map_count');
  writeFileSync(fake, '100\n');
  const r = spawnSync(...withMapLimitFrom(fake, node), { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const at = JSON.parse(r.stdout.trim()) as { mappings: number; limit: number };
  t.is(at.limit, 100);
  t.true(at.mappings > 95, `a node process holds more than 95 mappings (${at.mappings})`);
});
