/**
 * One C++ exception -> JS error path (cpp/common/JsError.h) for jobs and synchronous calls alike: a
 * libtorch error thrown inside a synchronous call becomes an Error with code LEP_TORCH (node-addon-api's
 * own wrapper catches only Napi::Error: before, such an exception terminated the process), and a core
 * error keeps its code on either path.
 */
import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import { callNative, LepError } from '../../ts/errors.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { tempDir, tinyModel } from '../helpers.js';

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
