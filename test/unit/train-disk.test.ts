import test from 'ava';

import type { ModelConfig } from '../../ts/checkpoint/config.js';
import { checkpointBytes, checkpointsWritten, checkTrainDisk, diskBytesNeeded } from '../../ts/train/trainDisk.js';

const GIB = 2 ** 30;
// LLaMa-3-8B with an Extended vocabulary (the cost ladder's).
const extended8b: ModelConfig = {
  modelType: 'llama', vocabSize: 133_500, hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32, numAttentionHeads: 32, numKeyValueHeads: 8,
  headDim: 128, maxPositionEmbeddings: 8192, rmsNormEps: 1e-5, ropeTheta: 500000, tieWordEmbeddings: false, attentionBias: false,
};

test('checkpoints written: every N steps and at the end, from the resumed step', (t) => {
  t.is(checkpointsWritten(0, 100, 10), 10);
  t.is(checkpointsWritten(0, 105, 10), 11);  // and one at step 105
  t.is(checkpointsWritten(30, 100, 10), 7);
  t.is(checkpointsWritten(35, 100, 10), 7);  // 40 .. 100
  t.is(checkpointsWritten(0, 100, 0), 1);  // only at the end
  t.is(checkpointsWritten(100, 100, 10), 0);  // nothing left to train
});

test('the peak: keep + 1 checkpoints while one is written, the final model beside the kept ones; resumed checkpoints already count', (t) => {
  const c = 10, m = 25;
  t.is(diskBytesNeeded({ checkpoint: c, model: m, existing: 0, written: 10, keep: 2 }), Math.max(3 * c, 2 * c + m));
  t.is(diskBytesNeeded({ checkpoint: c, model: m, existing: 0, written: 10, keep: 0 }), 10 * c + m);  // 0 keeps all
  t.is(diskBytesNeeded({ checkpoint: c, model: m, existing: 0, written: 1, keep: 2 }), c + m);
  t.is(diskBytesNeeded({ checkpoint: c, model: m, existing: 2, written: 5, keep: 2 }), 2 * c + m - 2 * c);
  t.is(diskBytesNeeded({ checkpoint: c, model: m, existing: 1, written: 0, keep: 2 }), m);
  t.is(diskBytesNeeded({ checkpoint: 0, model: m, existing: 0, written: 3, keep: 2 }), m);  // LoRA
});

test('8B embeddings-only: 12.2 GiB per checkpoint (f32 matrices and moments), 2.5 GiB with the new rows only in bf16', (t) => {
  t.is(checkpointBytes(extended8b, 'embeddings', 'bf16'), 2 * 133_500 * 4096 * 12);
  t.is(checkpointBytes(extended8b, 'embeddings', 'bf16', 5244), 2 * 133_500 * 4096 * 2 + 2 * 5244 * 4096 * 12 + 5244 * 8);
  t.is((checkpointBytes(extended8b, 'embeddings', 'bf16', 5244) / GIB).toFixed(1), '2.5');
  t.is(checkpointBytes(extended8b, 'lora', 'bf16'), 0);
  const plan = { checkpoint: checkpointBytes(extended8b, 'embeddings', 'bf16'), model: 16 * GIB, existing: 0, written: 10, keep: 2 };
  const e = t.throws(() => checkTrainDisk('/runs/8b', plan, 40 * GIB));
  t.is((e as { code?: string }).code, 'LEP_NO_SPACE');
  t.is(e!.message, 'training into /runs/8b needs at least 40.4 GiB more disk space, and its filesystem has 40.0 GiB free: the final model (16.0 GiB) and up to 3 checkpoints at a time of 12.2 GiB each (the trained tensors in f32 and AdamW\'s two moments; a new one is written before the oldest beyond --keep-checkpoints 2 is removed)' +
    '\nHINT: free space there or write --out to a disk with room, or keep fewer checkpoints (--keep-checkpoints 1, in a recipe train.keepCheckpoints: 1, needs at least 28.2 GiB).');
  t.notThrows(() => checkTrainDisk('/runs/8b', plan, 41 * GIB));
  // --no-resume removes the old checkpoints: their bytes count as free.
  t.notThrows(() => checkTrainDisk('/runs/8b', plan, 40 * GIB, 30 * GIB));
});
