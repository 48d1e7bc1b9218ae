// The native side gets fully resolved options and has no defaults of its own (option specs hold them):
// a missing option is an internal error naming the key, never a silent default; and the TS check of the
// spec runs before anything native.
import { join } from 'node:path';

import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import type { NativeDonorPlan, NativeInitOptions, NativeTrainOptions } from '../../ts/binding/NativeTypes.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { propagate } from '../../ts/propagate/propagate.js';
import { tempDir, tinyModel } from '../helpers.js';

test('native train refuses options with a key left out (LEP_INTERNAL, naming it)', async (t) => {
  const model = await LepModel.load(await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 }));
  try {
    const full: NativeTrainOptions = {
      params: 'embeddings', data: join(tempDir(), 'none.safetensors'), batchSize: 1, gradAccum: 1, steps: 1, lr: 1e-4, embeddingLr: 1e-4, minLrRatio: 0, warmupSteps: 0,
      beta1: 0.9, beta2: 0.95, eps: 1e-5, weightDecay: 0.1, clip: 1, seed: 0, evalEvery: 0, evalBatches: 0, checkpointEvery: 0, keepCheckpoints: 2,
      reportEvery: 1, activationCheckpointing: false,
    };
    for (const key of ['lr', 'steps', 'warmupSteps', 'activationCheckpointing'] as const) {
      const { [key]: _left, ...partial } = full;
      const e = t.throws(() => model.native.train(partial as NativeTrainOptions, () => true), undefined, key);
      t.is((e as { code?: string }).code, 'LEP_INTERNAL', key);
      t.true(e!.message.includes(`"${key}"`), e!.message);
    }
  } finally {
    model.dispose();
  }
});

test('native propagate refuses options without solver, chunkRows, maxShardBytes or device', (t) => {
  const spec = { method: 'swap', solver: 'normal', baseFiles: [], donorFiles: [], instructFiles: [], outRows: 1, outDir: tempDir(), maxShardBytes: 0, chunkRows: 4096, device: 'cpu' } as const;
  for (const key of ['solver', 'chunkRows', 'maxShardBytes', 'device'] as const) {
    const { [key]: _left, ...partial } = spec;
    const e = t.throws(() => getNative().propagate(partial as never, null), undefined, key);
    t.is((e as { code?: string }).code, 'LEP_INTERNAL', key);
  }
});

test('native propagate refuses a target without outRows or outDir, single or one of several', (t) => {
  const shared = { method: 'swap', solver: 'normal', baseFiles: [], donorFiles: [], maxShardBytes: 0, chunkRows: 4096, device: 'cpu' } as const;
  const target = { instructFiles: [], outRows: 1, outDir: tempDir() };
  for (const key of ['outRows', 'outDir'] as const) {
    const { [key]: _left, ...partial } = target;
    for (const options of [{ ...shared, ...partial }, { ...shared, targets: [target, partial] }]) {
      const e = t.throws(() => getNative().propagate(options as never, null), undefined, key);
      t.is((e as { code?: string }).code, 'LEP_INTERNAL', key);
      t.true(e!.message.includes(`"${key}"`), e!.message);
    }
  }
});

test('native init refuses options or a donor plan with a key left out (LEP_INTERNAL, naming it)', (t) => {
  const full: NativeInitOptions = {
    files: [], outFiles: [], tied: true, oldTokens: 1, newTokens: 1, newRows: 1, offsets: Int32Array.of(0, 1), ids: Int32Array.of(0), kinds: Uint8Array.of(1),
    outputFirst: false, seed: 0,
  };
  const donor: NativeDonorPlan = { files: [], tied: true, method: 'omp', k: 64, dtype: 'float32', device: 'cpu', sharedOld: Int32Array.of(0), sharedDonor: Int32Array.of(0), rowDonor: Int32Array.of(-1) };
  const refuses = (options: unknown, key: string) => {
    const e = t.throws(() => getNative().initEmbeddings(options as NativeInitOptions, () => true), undefined, key);
    t.is((e as { code?: string }).code, 'LEP_INTERNAL', key);
    t.true(e!.message.includes(`"${key}"`), e!.message);
  };
  for (const key of ['tied', 'newRows', 'outputFirst', 'seed'] as const) {
    const { [key]: _left, ...partial } = full;
    refuses(partial, key);
  }
  for (const key of ['method', 'k', 'dtype', 'device'] as const) {
    const { [key]: _left, ...partial } = donor;
    refuses({ ...full, donor: partial }, key);
  }
});

test('propagate checks its spec before reading any model: chunkRows 0, minCorrelation 2, a typo', async (t) => {
  const base = { base: '/nonexistent/base', donor: '/nonexistent/donor', instruct: '/nonexistent/instruct', out: join(tempDir(), 'o') };
  await t.throwsAsync(propagate({ ...base, chunkRows: 0 }), { code: 'LEP_BAD_OPTION', message: /Expected a positive integer for chunkRows \(--chunk-rows\) but received 0\nHINT: .*Defaults to 4096/ });
  await t.throwsAsync(propagate({ ...base, minCorrelation: 2 }), { code: 'LEP_BAD_OPTION', message: /a number in \[-1, 1\] for minCorrelation/ });
  await t.throwsAsync(propagate({ ...base, chunkrows: 10 } as never), { code: 'LEP_BAD_OPTION', message: /unknown option chunkrows/ });
});
