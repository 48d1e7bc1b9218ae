import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { parameterCounts, type ModelConfig } from '../../ts/checkpoint/config.js';
import { PROVENANCE_FILE } from '../../ts/init/provenance.js';
import { checkTrainMemory, trainMemoryBytes } from '../../ts/train/trainMemory.js';
import { tempDir } from '../helpers.js';

const GIB = 2 ** 30;
const shape = (vocabSize: number, hiddenSize: number, intermediateSize: number, numHiddenLayers: number, heads: number, kv: number): ModelConfig => ({
  modelType: 'llama', vocabSize, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads: heads, numKeyValueHeads: kv,
  headDim: hiddenSize / heads, maxPositionEmbeddings: 8192, rmsNormEps: 1e-5, ropeTheta: 500000, tieWordEmbeddings: false, attentionBias: false,
});
const llama3_8b = shape(128256, 4096, 14336, 32, 32, 8);
const tinyLlama = shape(32000, 2048, 5632, 22, 32, 4);

test('parameter counts are the published ones (Meta-Llama-3-8B, TinyLlama-1.1B)', (t) => {
  t.is(parameterCounts(llama3_8b).all, 8_030_261_248);
  t.is(parameterCounts(tinyLlama).all, 1_100_048_384);
  t.is(parameterCounts(llama3_8b).embeddings, 2 * 128256 * 4096);
});

test('an 8B embeddings-only run in bf16 cannot fit in 24 GiB: refused with the numbers and what it needs', (t) => {
  // LLaMa-3-8B with an Extended vocabulary (the cost ladder's: 128256 + ~5k Russian tokens).
  const extended = { ...llama3_8b, vocabSize: 133_500 };
  const e = t.throws(() => checkTrainMemory(extended, 'embeddings', 'bf16', 'init', 24 * GIB));
  t.is((e as { code?: string }).code, 'LEP_OUT_OF_MEMORY');
  t.regex(e!.message, /training init \(8\.07 B parameters\) with --embeddings-only --dtype bf16 needs at least 33\.\d GiB: 15\.0 GiB of weights in bf16 \+ 1\.09 B trainable parameters x 18 bytes/);
  t.regex(e!.message, /this machine has 24\.0 GiB \(RAM \+ swap\)\nHINT: the smallest run, --embeddings-only --dtype bf16, needs at least 33\.\d GiB: train on a machine with that much memory/);
  t.regex(e!.message, /or train only the new tokens' rows \(--rows FILE; recipe train\.newRowsOnly: at least 17\.\d GiB plus 16 bytes per trained row element\)\.$/);
});

test('a model lep init wrote: the refusal counts its new rows and names --rows new with what that run needs', (t) => {
  const extended = { ...llama3_8b, vocabSize: 133_500 };
  const dir = tempDir();
  const tokens = Array.from({ length: 133_500 }, (_, id) => ({ id, source: id < 128_256 ? 'copy' : 'mean' }));
  writeFileSync(join(dir, PROVENANCE_FILE), JSON.stringify({ tokens }));
  const e = t.throws(() => checkTrainMemory(extended, 'embeddings', 'bf16', dir, 24 * GIB));
  const need = trainMemoryBytes(extended, 'embeddings', 'bf16', 133_500 - 128_256);
  t.true(need < 24 * GIB);
  t.true(e!.message.endsWith(`or train only the new tokens' rows (--embeddings-only --dtype bf16 --rows new, its 5244 rows; recipe train.newRowsOnly: at least ${(need / GIB).toFixed(1)} GiB).`), e!.message);
});

test('a run that does not fit names the runs that do: f32 full training of 8B on 64 GiB', (t) => {
  const e = t.throws(() => checkTrainMemory(llama3_8b, 'all', 'f32', 'base', 64 * GIB));
  t.regex(e!.message, /HINT: --embeddings-only --dtype f32 \(at least 41\.\d GiB\), or --embeddings-only --dtype bf16 \(at least 32\.\d GiB\) fits; add --activation-checkpointing/);
  // Full training in bf16 holds more than in f32 (an f32 master copy besides the bf16 weights).
  t.true(trainMemoryBytes(llama3_8b, 'all', 'bf16') > trainMemoryBytes(llama3_8b, 'all', 'f32'));
});

test('runs that fit pass: TinyLlama embeddings-only in bf16 or f32 on 24 GiB; LoRA counts the weights', (t) => {
  t.notThrows(() => checkTrainMemory(tinyLlama, 'embeddings', 'bf16', 'm', 24 * GIB));
  t.notThrows(() => checkTrainMemory(tinyLlama, 'all', 'f32', 'm', 24 * GIB));
  t.is(trainMemoryBytes(llama3_8b, 'lora', 'bf16'), 2 * 8_030_261_248);
});

test('a row set keeps the master copy, its gradient and the moments for its rows only: 8B rows-only in bf16 passes the 24 GiB bound', (t) => {
  const extended = { ...llama3_8b, vocabSize: 133_500 };  // the cost ladder's Extended LLaMa-3-8B
  const rows = 5244;
  const all = trainMemoryBytes(extended, 'embeddings', 'bf16');
  const some = trainMemoryBytes(extended, 'embeddings', 'bf16', rows);
  t.is(all - some, 16 * 2 * (133_500 - rows) * 4096);
  t.throws(() => checkTrainMemory(extended, 'embeddings', 'bf16', 'init', 24 * GIB));
  t.notThrows(() => checkTrainMemory(extended, 'embeddings', 'bf16', 'init', 24 * GIB, rows));
  const e = t.throws(() => checkTrainMemory(extended, 'embeddings', 'bf16', 'init', 16 * GIB, rows));
  t.regex(e!.message, /1\.09 B parameters of the trained matrices x 2 bytes \(gradient\) \+ 655\.5 MiB for the 5244 trained rows \(f32 master, gradient, AdamW's two moments\)/);
});

test('the layers\' inputs of one batch count: a batch of 1e9 blocks is refused with the batch size that fits (it filled memory for minutes)', (t) => {
  const small = shape(32000, 32, 64, 1, 4, 4);
  const batch = { batchSize: 1e9, positions: 15 };
  t.is(trainMemoryBytes(small, 'embeddings', 'f32', undefined, batch) - trainMemoryBytes(small, 'embeddings', 'f32'), 1 * 1e9 * 15 * 32 * 4);
  const e = t.throws(() => checkTrainMemory(small, 'embeddings', 'f32', 'm', 24 * GIB, undefined, batch));
  t.is((e as { code?: string }).code, 'LEP_OUT_OF_MEMORY');
  t.regex(e!.message, /^training m with --batch-size 1000000000 needs at least 1788\.\d GiB, 1788\.1 GiB of it for the layers' inputs of one batch \(1 layers x 1000000000 blocks x 15 positions x 32 in f32\)/);
  t.regex(e!.message, /\nHINT: lower --batch-size and raise --grad-accum to keep the global batch \(6710886 blocks per batch at most here\)\.$/);
  t.notThrows(() => checkTrainMemory(small, 'embeddings', 'f32', 'm', 24 * GIB, undefined, { batchSize: 64, positions: 2047 }));
});

test('where the embeddings are most of the model, the smallest run named is the smallest, not embeddings-only in bf16', (t) => {
  const toy = shape(256_000, 64, 128, 2, 4, 2);  // a toy shape with a Gemma-sized vocabulary
  const f32 = trainMemoryBytes(toy, 'embeddings', 'f32');
  t.true(trainMemoryBytes(toy, 'embeddings', 'bf16') > f32);
  for (const dtype of ['f32', 'bf16'] as const) {
    const e = t.throws(() => checkTrainMemory(toy, 'embeddings', dtype, 'toy', f32 - 1));
    t.regex(e!.message, new RegExp(`\\nHINT: the smallest run, --embeddings-only --dtype f32, needs at least ${(f32 / 2 ** 20).toFixed(1)} MiB: train on a machine`), dtype);
  }
});

test('what this process holds already counts: a run that fits the cgroup alone is refused beside it, naming what is held', (t) => {
  const need = trainMemoryBytes(tinyLlama, 'embeddings', 'bf16');
  const memory = { bytes: need + 0.1 * GIB, limit: 'cgroup' as const, ramBytes: 64 * GIB, swapBytes: 0 };
  t.notThrows(() => checkTrainMemory(tinyLlama, 'embeddings', 'bf16', 'm', memory));
  const e = t.throws(() => checkTrainMemory(tinyLlama, 'embeddings', 'bf16', 'm', { ...memory, heldBytes: 0.3 * GIB }));
  t.is((e as { code?: string }).code, 'LEP_OUT_OF_MEMORY');
  t.regex(e!.message, /this process may use \d+\.\d GiB \(its cgroup's memory limit \+ swap: a container's or job's, below the machine's RAM\), 307\.2 MiB of it held by this process already/);
});

test('processMemory counts what this process holds (RssAnon) where a limit is RAM or a cgroup', async (t) => {
  const { processMemory } = await import('../../ts/processMemory.js');
  const m = processMemory();
  if (m.limit === 'ulimit') return t.is(m.heldBytes, undefined);
  t.true(m.heldBytes! > 10 * 2 ** 20, `a Node process holds more than 10 MiB (${m.heldBytes})`);
  t.true(m.heldBytes! < m.bytes);
});
