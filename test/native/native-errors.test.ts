/**
 * One C++ exception -> JS error path (cpp/common/JsError.h) for jobs and synchronous calls alike: a
 * libtorch error thrown inside a synchronous call becomes an Error with code LEP_TORCH (node-addon-api's
 * own wrapper catches only Napi::Error: before, such an exception terminated the process), and a core
 * error keeps its code on either path.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import { callNative, LepError } from '../../ts/errors.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { lepInfo } from '../../ts/runtime.js';
import { tempDir, tinyModel, underUlimit } from '../helpers.js';

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
  const run = (threads: number) =>
    spawnSync(...underUlimit(`-u ${threads}`, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', child, INDEX, model]), { encoding: 'utf8', env }).stdout.trim();
  let fewest = 0;
  for (let n = 8; n <= 64 && !fewest; n++) if (run(n) === 'loaded') fewest = n;
  t.true(fewest > 0, 'a model loads with at most 64 threads');
  const failed = JSON.parse(run(fewest - 1)) as { lep: boolean; code: string; message: string };
  t.true(failed.lep);
  t.is(failed.code, 'LEP_OUT_OF_MEMORY');
  t.regex(failed.message, /^cannot start a thread for the job \(Resource temporarily unavailable; a memory limit, or the thread limit `ulimit -u`\)\nHINT: /);
});
