// Hostile and inconsistent inputs (issue 15): every case must end in a named LepError that says which
// file, tensor, row or option is wrong, and must not write anything. Each case is one the first probe
// found accepted (exit 0, corrupt output) or crashing.
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import type { NativeTensorData } from '../../ts/binding/NativeTypes.js';
import { checkGgufValues, modelMetadata } from '../../ts/checkpoint/gguf.js';
import { exportGguf, initEmbeddings, LepModel, propagate, Tokenizer } from '../../ts/index.js';
import { readModelDir } from '../../ts/checkpoint/index.js';
import { tempDir, tinyModel } from '../helpers.js';

type Json = Record<string, unknown>;
const code = (e: unknown): string | undefined => (e as { code?: string }).code;

let base: Promise<string> | undefined;
/** One tiny Mistral model (2 layers, hidden 64, intermediate 168) shared by the cases; each copies it. */
function copyOfTiny(): Promise<string> {
  base ??= tinyModel();
  return base.then((dir) => {
    const out = join(tempDir(), 'model');
    cpSync(dir, out, { recursive: true });
    return out;
  });
}

function editConfig(dir: string, edit: (c: Json) => Json): void {
  const p = join(dir, 'config.json');
  writeFileSync(p, JSON.stringify(edit(JSON.parse(readFileSync(p, 'utf8')) as Json)));
}

/** Overwrites element `index` of a float32 tensor in the model's single safetensors file. */
function poison(dir: string, tensor: string, index: number, value: number): void {
  const file = join(dir, 'model.safetensors');
  const tensors = getNative().readSafetensors(file).map((t): NativeTensorData => {
    if (t.name !== tensor) return t;
    const data = t.data.slice();
    new DataView(data.buffer).setFloat32(index * 4, value, true);
    return { ...t, data };
  });
  // Written by hand: lep's own writer refuses non-finite values.
  const header: Json = { __metadata__: { format: 'pt' } };
  let at = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [at, at + t.data.length] };
    at += t.data.length;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(file, Buffer.concat([len, h, ...tensors.map((t) => Buffer.from(t.data))]));
}

test('config.json against the weights: intermediate_size 2^40 is refused before export (was narrowed to 0 in the GGUF)', async (t) => {
  const dir = await copyOfTiny();
  editConfig(dir, (c) => ({ ...c, intermediate_size: 2 ** 40 }));
  const out = join(tempDir(), 'x.gguf');
  const e = await t.throwsAsync(exportGguf(dir, out));
  t.is(code(e), 'LEP_SHAPE_MISMATCH');
  t.regex(e!.message, /tensor 'model\.layers\.0\.mlp\.gate_proj\.weight' has shape \[168, 64\] but config\.json implies \[1099511627776, 64\]: dimension 0 is 168, config\.json intermediate_size gives 1099511627776/);
  t.regex(e!.message, /HINT:/);
  t.false(existsSync(out));
});

test('GGUF values must fit their type: a uint32 key is never narrowed', (t) => {
  const dir = { modelType: 'llama', vocabSize: 10, hiddenSize: 64, intermediateSize: 2 ** 40, numHiddenLayers: 1, numAttentionHeads: 4, numKeyValueHeads: 4, headDim: 16, maxPositionEmbeddings: 64, rmsNormEps: 1e-5, ropeTheta: 1e4, tieWordEmbeddings: false, attentionBias: false } as const;
  const e = t.throws(() => checkGgufValues(modelMetadata(dir, 'f16', 'm')));
  t.is(code(e), 'LEP_GGUF_OUT_OF_RANGE');
  t.regex(e!.message, /llama\.feed_forward_length = 1099511627776 does not fit its type u32/);
  t.notThrows(() => checkGgufValues(modelMetadata({ ...dir, intermediateSize: 2 ** 32 - 1 }, 'f16', 'm')));
  t.throws(() => checkGgufValues([['k', { type: 'array', itemType: 'i32', value: [1, 2 ** 31] }]]), { message: /k\[1\] = 2147483648 does not fit its type i32/ });
});

test('config.json against the weights: a hidden_size the weights do not have is refused by load and export', async (t) => {
  const dir = await copyOfTiny();
  editConfig(dir, (c) => ({ ...c, hidden_size: 128 }));
  for (const run of [() => LepModel.load(dir), () => exportGguf(dir, join(tempDir(), 'x.gguf'))]) {
    const e = await t.throwsAsync(run());
    t.is(code(e), 'LEP_SHAPE_MISMATCH');
    t.regex(e!.message, /tensor 'model\.embed_tokens\.weight' has shape \[32000, 64\] but config\.json implies \[32000, 128\]: dimension 1 is 64, config\.json hidden_size gives 128/);
  }
});

test('num_hidden_layers 1e9 is refused from the headers, before anything is allocated', async (t) => {
  const dir = await copyOfTiny();
  editConfig(dir, (c) => ({ ...c, num_hidden_layers: 1e9 }));
  const e = await t.throwsAsync(LepModel.load(dir));
  t.is(code(e), 'LEP_MISSING_TENSOR');
  t.regex(e!.message, /lacks tensor 'model\.layers\.2\.input_layernorm\.weight', which config\.json implies \(1000000000 layers\)/);
  // The native loader checks too, for callers that skip readModelDir (it allocated the model first).
  const cfg = { ...readModelDirConfig(await copyOfTiny()), numHiddenLayers: 1e9 };
  const job = getNative().loadModel({ config: cfg, files: [join(dir, 'model.safetensors')], device: 'cpu', dtype: 'f32' }, () => true);
  const ne = await t.throwsAsync(job.promise);
  t.is(code(ne), 'LEP_MISSING_TENSOR');
});

test('the native loader takes its options resolved: a random init without seed or std, or a load without device, is a bug in lep (LEP_INTERNAL), not a silent default', async (t) => {
  const config = readModelDirConfig(await copyOfTiny());
  const random = { config, files: [], device: 'cpu', dtype: 'f32' as const, seed: 1, initStd: 0.02, embedStd: 0.02 };
  for (const key of ['seed', 'initStd', 'embedStd', 'device'] as const) {
    const { [key]: _dropped, ...rest } = random;
    const e = t.throws(() => getNative().loadModel(rest as never, () => true));
    t.is(code(e), 'LEP_INTERNAL', key);
    t.regex(e!.message, new RegExp(`the native options lack "${key}"`));
  }
  // Loading weights needs no init options.
  const m = await getNative().loadModel({ config, files: [join(await copyOfTiny(), 'model.safetensors')], device: 'cpu', dtype: 'f32' }, () => true).promise;
  m.dispose();
});

function readModelDirConfig(dir: string) {
  return readModelDir(dir).config;
}

test('an extra layer in the weights that config.json does not name is refused', async (t) => {
  const dir = await copyOfTiny();
  editConfig(dir, (c) => ({ ...c, num_hidden_layers: 1 }));
  const e = t.throws(() => readModelDir(dir));
  t.is(code(e), 'LEP_UNEXPECTED_TENSOR');
  t.regex(e!.message, /has tensor 'model\.layers\.1\.[a-z_.]+', which a mistral model with this config\.json \(1 layers\) does not use/);
});

test('a sharded index entry naming a path outside the model directory is refused', async (t) => {
  const dir = await copyOfTiny();
  const names = getNative().inspectSafetensors(join(dir, 'model.safetensors')).tensors.map((x) => x.name);
  for (const bad of ['../model/model.safetensors', '/etc/passwd', 'sub/model.safetensors', '..']) {
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: Object.fromEntries(names.map((n) => [n, bad])) }));
    const e = t.throws(() => readModelDir(dir));
    t.is(code(e), 'LEP_BAD_CHECKPOINT');
    t.true(e!.message.includes(`weight_map names ${JSON.stringify(bad)}, which is not a file name in`), e!.message);
  }
});

test('export refuses NaN weights and f16 overflow, naming tensor and row; bf16 keeps the large value', async (t) => {
  const dir = await copyOfTiny();
  poison(dir, 'model.layers.1.mlp.up_proj.weight', 5 * 64 + 3, Number.NaN);
  const out = join(tempDir(), 'nan.gguf');
  const e = await t.throwsAsync(exportGguf(dir, out, { outType: 'f32' }));
  t.is(code(e), 'LEP_NON_FINITE');
  t.regex(e!.message, /nan\.gguf: tensor 'blk\.1\.ffn_up\.weight' holds a NaN or infinite value at row 5 \(element 3; 1 non-finite values in all\)/);
  t.false(existsSync(out));

  const big = await copyOfTiny();
  poison(big, 'model.layers.0.mlp.down_proj.weight', 0, 1e5);  // finite in f32 and bf16, infinite in f16
  const e16 = await t.throwsAsync(exportGguf(big, join(tempDir(), 'big.gguf'), { outType: 'f16' }));
  t.is(code(e16), 'LEP_NON_FINITE');
  t.regex(e16!.message, /tensor 'blk\.0\.ffn_down\.weight' holds a NaN or infinite value at row 0 .*\nHINT: .*exceed f16's range \(65504\).*--outtype bf16/);
  await t.notThrowsAsync(exportGguf(big, join(tempDir(), 'big.gguf'), { outType: 'bf16' }));
});

test('saving a model whose weights are not finite (the end of a diverged training run) fails and names the tensor', async (t) => {
  const dir = await copyOfTiny();
  poison(dir, 'lm_head.weight', 7 * 64, Number.POSITIVE_INFINITY);
  const m = await LepModel.load(dir);
  const out = join(tempDir(), 'saved');
  const e = await t.throwsAsync(m.native.save({ dir: out, dtype: 'f32' }, () => true).promise);
  m.dispose();
  t.is(code(e), 'LEP_NON_FINITE');
  t.regex(e!.message, /model\.safetensors: tensor 'lm_head\.weight' holds a NaN or infinite value at row 7 \(element 0/);
  t.false(existsSync(join(out, 'model.safetensors')));
});

test('init refuses to write a model from NaN weights', async (t) => {
  const dir = await copyOfTiny();
  poison(dir, 'model.layers.0.self_attn.q_proj.weight', 64 * 2 + 1, Number.NaN);
  const out = join(tempDir(), 'init');
  const e = await t.throwsAsync(initEmbeddings(dir, dir, out));
  t.is(code(e), 'LEP_NON_FINITE');
  t.regex(e!.message, /tensor 'model\.layers\.0\.self_attn\.q_proj\.weight' holds a NaN or infinite value at row 2 \(element 1/);
});

test('propagate from a NaN donor (a diverged run) fails instead of writing a NaN model', async (t) => {
  const baseDir = await copyOfTiny();
  const instruct = await copyOfTiny();
  const donor = await copyOfTiny();
  poison(donor, 'model.embed_tokens.weight', 300 * 64 + 9, Number.NaN);
  const out = join(tempDir(), 'prop');
  const e = await t.throwsAsync(propagate({ base: baseDir, donor, instruct, out, method: 'swap' }));
  t.is(code(e), 'LEP_NON_FINITE');
  t.regex(e!.message, /tensor 'model\.embed_tokens\.weight' holds a NaN or infinite value at row 300 \(element 9/);
});

test('score and generate refuse token ids that are not integers in the vocabulary, and sequences past the context', async (t) => {
  const m = await LepModel.load(await copyOfTiny());
  for (const [seq, why] of [[[1, 1.5], /sequences\[0\]\[1\]: token id 1\.5 is not an integer/], [[Number.NaN], /token id NaN is not an integer/], [[1, -1], /token id -1 is outside the vocabulary \(size 32000/]] as const) {
    const e = await t.throwsAsync(m.score([seq as unknown as number[]]));
    t.is(code(e), 'LEP_BAD_TOKEN');
    t.regex(e!.message, why);
  }
  const long = Array.from({ length: 513 }, (_, i) => 1 + (i % 100));
  const e = await t.throwsAsync(m.score([[1, 2], long]));
  t.is(code(e), 'LEP_SEQUENCE_TOO_LONG');
  t.regex(e!.message, /sequences\[1\] has 513 tokens, more than the 512 the model's context allows/);
  // The native layer refuses them as well (no truncation of 1.5 to 1, no scoring past the context).
  const native = t.throws(() => m.native.score([[1, 1.5]], {}, () => true));
  t.is(code(native), 'LEP_BAD_TOKEN');
  const nlong = await t.throwsAsync(m.native.score([long], {}, () => true).promise);
  t.is(code(nlong), 'LEP_SEQUENCE_TOO_LONG');
  const g = await t.throwsAsync(m.generateTokens([[1, Number.NaN]], { maxNewTokens: 1 }));
  t.is(code(g), 'LEP_BAD_TOKEN');
  m.dispose();
});

test('generate refuses sampling values out of range, naming the CLI flag', async (t) => {
  const m = await LepModel.load(await copyOfTiny());
  const cases: [Json, RegExp][] = [
    [{ topP: 2 }, /Expected a number in \(0, 1\] for topP \(--top-p\) but received 2\nHINT: topP \(--top-p\): Nucleus sampling.* Defaults to 1\./],
    [{ topP: 0 }, /for topP \(--top-p\) but received 0/],
    [{ temperature: -1 }, /Expected a non-negative number for temperature \(--temperature\) but received -1/],
    [{ temperature: Number.POSITIVE_INFINITY }, /for temperature \(--temperature\)/],
    [{ topK: -3 }, /for topK \(--top-k\) but received -3/],
    [{ repetitionPenalty: 0 }, /for repetitionPenalty \(--repetition-penalty\) but received 0/],
  ];
  for (const [o, why] of cases) {
    const e = await t.throwsAsync(m.generateTokens([[1]], { maxNewTokens: 1, ...o }));
    t.is(code(e), 'LEP_BAD_OPTION');
    t.regex(e!.message, why);
  }
  // And natively, for callers of the native model (which get every option resolved: one missing is a bug in lep).
  const resolved = { maxNewTokens: 1, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, stopTokens: [], seed: 0 };
  const ne = await t.throwsAsync(m.native.generate([[1]], { ...resolved, topP: 2 }, () => true).promise);
  t.is(code(ne), 'LEP_BAD_OPTION');
  t.regex(ne!.message, /topP must be in \(0, 1\], got 2/);
  const { temperature: _t, ...noTemperature } = resolved;
  // (Thrown as the call reads its options, before a job starts.)
  const missing = t.throws(() => m.native.generate([[1]], noTemperature as never, () => true));
  t.is(code(missing), 'LEP_INTERNAL');
  t.regex(missing!.message, /the native options lack "temperature"/);
  m.dispose();
});

test('a tokenizer whose added token id is 1e9, or whose vocabulary is empty, is refused', async (t) => {
  const dir = await copyOfTiny();
  const json = JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as Json;
  const added = [...(json.added_tokens as Json[]), { id: 1e9, content: '<huge>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify({ ...json, added_tokens: added }));
  const e = t.throws(() => Tokenizer.fromDir(dir));
  t.is(code(e), 'LEP_BAD_TOKENIZER');
  t.regex(e!.message, /added token "<huge>" has id 1000000000, but the tokenizer gives it id 32000/);
  const init = await t.throwsAsync(initEmbeddings(await copyOfTiny(), dir, join(tempDir(), 'init')));
  t.is(code(init), 'LEP_BAD_TOKENIZER');

  const model = json.model as Json;
  const empty = Tokenizer.fromJson.bind(Tokenizer, JSON.stringify({ ...json, added_tokens: [], model: { ...model, vocab: {}, merges: [] } }));
  const ee = t.throws(empty);
  t.is(code(ee), 'LEP_BAD_TOKENIZER');
  t.regex(ee!.message, /has an empty vocabulary/);
});
