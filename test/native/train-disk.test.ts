/**
 * Training's disk check (ts/train/trainDisk.ts): its per-checkpoint and final-model bounds against what
 * real runs write, and a run refused on a real small filesystem that then fits with fewer checkpoints.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { LepError, readTexts, Tokenizer } from '../../ts/index.js';
import { parameterCounts } from '../../ts/checkpoint/config.js';
import { readModelDir } from '../../ts/checkpoint/modelDir.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { checkpointBytes, diskBytesNeeded, existingCheckpoints } from '../../ts/train/trainDisk.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { corpora } from '../corpora.js';
import { smallFilesystem, tempDir, tinyModel } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
/** Headers, state.json: what a checkpoint or model file holds beyond its tensors' bytes, at most. */
const SMALL_FILES = 64 * 1024;

async function packed(): Promise<string> {
  const docs: string[][] = [];
  for await (const d of readTexts((await corpora())['en.txt']!, { mode: 'document', maxChars: 20_000 })) docs.push(d.split('\n'));
  const { blocks, result } = await packDocuments(docs, Tokenizer.fromDir(LLAMA3_8K), { seqLen: 32, maxBlocks: 8 });
  const path = join(tempDir(), 'blocks.safetensors');
  writeBlocks(path, blocks, undefined, result.targetChars);
  return path;
}

const model = (tie = false) =>
  tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 64, seed: 3, tieWordEmbeddings: tie });

test('a checkpoint holds what the bound counts (all, embeddings, a row set; f32 and bf16; tied), and the final model its parameters', async (t) => {
  const data = await packed();
  const runs = [
    { params: 'all', dtype: 'f32' }, { params: 'embeddings', dtype: 'f32' }, { params: 'embeddings', dtype: 'bf16' },
    { params: 'embeddings', dtype: 'f32', rows: [5, 9, 9, 700] }, { params: 'embeddings', dtype: 'bf16', rows: [5, 9, 700] },
    { params: 'embeddings', dtype: 'f32', rows: [5, 9], tie: true },
  ] as const;
  for (const r of runs) {
    const dir = await model('tie' in r);
    const out = join(tempDir(), 'run');
    await trainModel(dir, out, { data, steps: 1, batchSize: 2, warmupSteps: 0, params: r.params, dtype: r.dtype, ...('rows' in r ? { rows: [...r.rows] } : {}) });
    const config = readModelDir(dir).config;
    const bound = checkpointBytes(config, r.params, r.dtype, 'rows' in r ? new Set(r.rows).size : undefined);
    const { count, bytes } = existingCheckpoints(out);
    const name = JSON.stringify(r);
    t.is(count, 1, name);
    t.true(bound <= bytes && bytes <= bound + SMALL_FILES, `${name}: checkpoint ${bytes} bytes, bound ${bound}`);
    const modelBytes = statSync(join(out, 'model.safetensors')).size;
    const modelBound = parameterCounts(config).all * 4;  // tinyModel stores f32
    t.true(modelBound <= modelBytes && modelBytes <= modelBound + SMALL_FILES, `${name}: model ${modelBytes} bytes, bound ${modelBound}`);
  }
});

test('a run whose checkpoints cannot fit on --out\'s filesystem is refused before it writes; with fewer kept it fits and finishes', async (t) => {
  const dir = await model();
  const config = readModelDir(dir).config;
  const plan = { checkpoint: checkpointBytes(config, 'all', 'f32'), model: parameterCounts(config).all * 4, existing: 0, written: 4 };
  const needKeep2 = diskBytesNeeded({ ...plan, keep: 2 });
  const needKeep1 = diskBytesNeeded({ ...plan, keep: 1 });
  t.true(needKeep1 < needKeep2);
  // Between the two: room for one checkpoint being written beside one kept and the model, not for three.
  const size = Math.round((needKeep1 + needKeep2) / 2);
  const fs = await smallFilesystem(size);
  // The suite runs as root (CI's chroots need it), where a tmpfs can be mounted; say so plainly where not.
  if (typeof fs === 'string') return t.fail(fs);
  t.teardown(fs.remove);
  const data = await packed();
  const out = join(fs.dir, 'run');
  const opts = { data, steps: 4, checkpointEvery: 1, batchSize: 2, warmupSteps: 0 };
  const e = await t.throwsAsync(trainModel(dir, out, { ...opts, keepCheckpoints: 2 }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_NO_SPACE', e!.message);
  t.regex(e!.message, new RegExp(`^training into ${out} needs at least [\\d.]+ [GM]iB more disk space, and its filesystem has [\\d.]+ [GM]iB free: the final model \\([\\d.]+ [GM]iB\\) and up to 3 checkpoints at a time`));
  t.regex(e!.message, /\nHINT: free space there or write --out to a disk with room, or keep fewer checkpoints \(--keep-checkpoints 1, in a recipe train.keepCheckpoints: 1, needs at least/);
  t.false(existsSync(out), 'nothing written');
  const r = await trainModel(dir, out, { ...opts, keepCheckpoints: 1 });
  t.is(r.stepsDone, 4);
  t.deepEqual(readdirSync(join(out, 'checkpoints')), ['step-00000004']);
});
