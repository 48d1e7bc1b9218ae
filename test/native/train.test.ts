import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { LepError, LepModel, readTexts, Tokenizer } from '../../ts/index.js';
import { readSafetensors, writeSafetensors } from '../../ts/checkpoint/index.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel, type TrainOptions } from '../../ts/train/trainModel.js';
import { beginStage, readStageRecord, STAGE_RECORD_FILE, stageInput, writeStageRecord } from '../../ts/stage/stageRecord.js';
import { corpora } from '../corpora.js';
import { tempDir, tinyModel, rejectsAborted } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
/** Real English text from Debian (man pages, LibreOffice help): the first documents, paragraphs by line. */
async function documents(maxChars = 60_000): Promise<string[][]> {
  const docs: string[][] = [];
  for await (const d of readTexts((await corpora())['en.txt']!, { mode: 'document', maxChars })) docs.push(d.split('\n'));
  return docs;
}

async function smallModel(extra: Record<string, unknown> = {}): Promise<string> {
  return tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 128, seed: 3, embedStd: 0.02, ...extra });
}

async function packed(seqLen = 64, maxBlocks = 0): Promise<{ path: string; blocks: number[][] }> {
  const tok = Tokenizer.fromDir(LLAMA3_8K);
  const { blocks, result } = await packDocuments(await documents(), tok, { seqLen, maxBlocks });
  const path = join(tempDir(), `blocks-${seqLen}.safetensors`);
  writeBlocks(path, blocks, undefined, result.targetChars);
  return { path, blocks };
}

function weights(dir: string): Map<string, Buffer> {
  return new Map(readSafetensors(join(dir, 'model.safetensors')).map((t) => [t.name, Buffer.from(t.data)]));
}

test('packing: blocks have the exact length and start at a document or paragraph boundary', async (t) => {
  const tok = Tokenizer.fromDir(LLAMA3_8K);
  const docs = await documents();
  const { blocks, result } = await packDocuments(docs, tok, { seqLen: 48 });
  t.true(blocks.length > 20);
  t.true(blocks.every((b) => b.length === 48));
  // every block begins with BOS or with the first token of some paragraph
  const starts = new Set<number>();
  for (const d of docs) for (const [i, p] of d.entries()) starts.add((await tok.encode(i < d.length - 1 ? `${p}\n` : p))[0]!);
  const bos = tok.specialId('bos')!;
  t.true(blocks.every((b) => b[0] === bos || starts.has(b[0]!)));
  t.is(result.tokens - result.droppedTokens, blocks.length * 48);
  t.is(result.documents, docs.length);
});

test('packing in batches: a maxBlocks run is the prefix of the full run and counts only the documents it used', async (t) => {
  // packDocuments tokenises 512 paragraphs per call, two calls in flight, reading ahead of maxBlocks:
  // what it reports must still be exactly the documents cut, one at a time, in order.
  const tok = Tokenizer.fromDir(LLAMA3_8K);
  const docs = await documents(200_000);
  t.true(docs.reduce((n, d) => n + d.length, 0) > 3 * 512, 'several tokenizer batches');
  const all = await packDocuments(docs, tok, { seqLen: 48 });
  const perDoc: number[] = [];
  for (const d of docs) {
    const texts = d.filter((p) => p.length > 0);
    if (texts.length === 0) continue;
    let n = 2; // BOS and EOS
    for (const [i, p] of texts.entries()) n += (await tok.encode(i < texts.length - 1 ? `${p}\n` : p)).length;
    perDoc.push(n);
  }
  t.is(all.result.documents, perDoc.length);
  t.is(all.result.tokens, perDoc.reduce((a, b) => a + b, 0));
  for (const k of [1, 7, all.blocks.length - 3]) {
    const some = await packDocuments(docs, tok, { seqLen: 48, maxBlocks: k });
    t.deepEqual(some.blocks, all.blocks.slice(0, k), `maxBlocks ${k}`);
    t.is(some.result.tokens, perDoc.slice(0, some.result.documents).reduce((a, b) => a + b, 0), `maxBlocks ${k}: tokens of the documents counted`);
    // The last document counted is the one that completed block k: without it there were fewer blocks.
    const fewer = await packDocuments(docs.filter((d) => d.some((p) => p.length > 0)).slice(0, some.result.documents - 1), tok, { seqLen: 48 });
    t.true(fewer.blocks.length < k, `maxBlocks ${k}`);
  }
});

test('loss falls on real text; training log, config and model are written', async (t) => {
  const model = await smallModel();
  const data = await packed(64);
  const out = join(tempDir(), 'trained');
  const r = await trainModel(model, out, { data: data.path, evalData: data.path, evalBatches: 2, steps: 40, batchSize: 4, lr: 3e-3, warmupSteps: 4 });
  const log = readFileSync(join(out, 'train.log'), 'utf8');
  t.regex(log, /^step 1 \| loss \d+\.\d+ \| lr .* \| grad_norm .* \| \d+ tok\/s/m);
  const losses = [...log.matchAll(/^step \d+ \| loss (\S+)/gm)].map((m) => Number(m[1]));
  const evals = [...log.matchAll(/eval_loss (\S+)/g)].map((m) => Number(m[1]));
  t.is(losses.length, 40);
  t.true(losses[39]! < losses[0]! - 1, `loss ${losses[0]} -> ${losses[39]}`);
  t.true(evals[evals.length - 1]! < evals[0]!);
  t.true(existsSync(join(out, 'model.safetensors')) && existsSync(join(out, 'config.json')) && existsSync(join(out, 'tokenizer.json')));
  t.is(JSON.parse(readFileSync(join(out, 'train-config.json'), 'utf8')).lr, 3e-3);
  t.is(r.stepsDone, 40);
  // The stage record: what ran (options with defaults filled in), on which inputs, with which result.
  const record = readStageRecord(out, 'train');
  t.like(record.resolved, { lr: 3e-3, steps: 40, batchSize: 4, warmupSteps: 4, evalBatches: 2, params: 'all', data: data.path, modelDir: model, checkpointEvery: 4 });
  t.false('signal' in record.resolved || 'onProgress' in record.resolved);
  t.deepEqual(record.inputs, [stageInput('model', model), stageInput('data', data.path), stageInput('evalData', data.path)]);
  t.deepEqual(record.result, JSON.parse(JSON.stringify(r)));
  // Bits per character: the eval loss over the two evaluated blocks' predicted tokens and characters.
  const tok = Tokenizer.fromDir(LLAMA3_8K);
  let chars = 0;
  for (const b of data.blocks.slice(0, 2 * 4)) chars += [...(await tok.decode(b.slice(1), { skipSpecialTokens: true }))].length;
  const bpc = (r.lastEvalLoss! * 8 * 63) / (chars * Math.LN2);
  t.true(Math.abs(r.lastEvalBpc! - bpc) < 1e-9, `bpc ${r.lastEvalBpc} vs ${bpc}`);
  t.regex(log, /eval_loss \S+ \| bpc \d+\.\d+/);
  const m = await LepModel.load(out);
  m.dispose();
});

test('embeddings-only: every other tensor is bit-identical; with a row set, other rows are unchanged', async (t) => {
  const model = await smallModel();
  const data = await packed(64);
  const before = weights(model);
  const out = join(tempDir(), 'emb');
  await trainModel(model, out, { data: data.path, params: 'embeddings', steps: 5, batchSize: 4, lr: 1e-2 });
  const after = weights(out);
  for (const [name, bytes] of before) {
    if (name === 'model.embed_tokens.weight' || name === 'lm_head.weight') t.false(bytes.equals(after.get(name)!), `${name} trained`);
    else t.true(bytes.equals(after.get(name)!), `${name} unchanged`);
  }
  const rows = [5, 17, 300, 301, 7999];
  const out2 = join(tempDir(), 'rows');
  await trainModel(model, out2, { data: data.path, params: 'embeddings', rows, steps: 5, batchSize: 4, lr: 1e-2 });
  const rowsAfter = weights(out2);
  const C = 32 * 4;  // bytes per row (hidden 32 x f32)
  for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
    const a = before.get(name)!;
    const b = rowsAfter.get(name)!;
    let changedRows = 0;
    for (let r = 0; r < a.length / C; r++) {
      const same = a.subarray(r * C, (r + 1) * C).equals(b.subarray(r * C, (r + 1) * C));
      if (!rows.includes(r)) t.true(same, `${name} row ${r} must not change`);
      else if (!same) changedRows++;
    }
    t.true(changedRows >= 3, `${name}: ${changedRows} selected rows changed`);
  }
});

// serial: the abort below reaches the job when JS handles a progress event, while the job goes on training;
// another test of this file busy on the main thread meanwhile once let the job finish before it (libtorch 2.6 CI).
test.serial('an aborted run resumed from its checkpoint ends bit-identical to an uninterrupted run', async (t) => {
  const model = await smallModel();
  const data = await packed(32);
  // checkpointEvery 0: the only checkpoint is the one written where the run stops.
  // 16 steps, stopped after 3: room for the abort to arrive late and still land mid-way.
  const opts = { data: data.path, steps: 16, batchSize: 2, gradAccum: 2, lr: 5e-3, warmupSteps: 2, seed: 4, checkpointEvery: 0 };
  const straight = join(tempDir(), 'straight');
  await trainModel(model, straight, opts);
  const interrupted = join(tempDir(), 'interrupted');
  // A record an earlier run left there: the new run removes it at once, so the unfinished run never looks finished.
  mkdirSync(interrupted);
  writeStageRecord(interrupted, beginStage('train'), { inputs: [], resolved: {}, result: { stepsDone: 99 } });
  const ctrl = new AbortController();
  const reason = new Error('stop at 3');
  await rejectsAborted(t, trainModel(model, interrupted, { ...opts, signal: ctrl.signal, onProgress: (e) => { if (e.phase === 'train' && e.done === 3) ctrl.abort(reason); } }), reason);
  // Abort is asynchronous (progress events reach JS after the step), so the job stops at the first step
  // boundary after step 3: exactly one checkpoint, mid-way.
  const left = readdirSync(join(interrupted, 'checkpoints'));
  t.is(left.length, 1);
  const stoppedAt = Number(/^step-(\d{8})$/.exec(left[0]!)?.[1]);
  t.true(stoppedAt >= 3 && stoppedAt < opts.steps, `stopped at ${left[0]}`);
  t.false(existsSync(join(interrupted, STAGE_RECORD_FILE)), 'an aborted run leaves no stage record');
  const r = await trainModel(model, interrupted, opts);
  t.true((r.resumedFrom ?? '').endsWith(left[0]!));
  t.like(readStageRecord(interrupted, 'train'), { resolved: { resumedFrom: r.resumedFrom, steps: 16 }, result: { stepsDone: 16, resumedFrom: r.resumedFrom } });
  const a = weights(straight);
  const b = weights(interrupted);
  for (const [name, bytes] of a) t.true(bytes.equals(b.get(name)!), `${name} differs after resume`);
});

/**
 * The same run twice: straight through, and stopped after step `stopAt` (its checkpoint left in place).
 * Returns both output folders and the stopped run's checkpoint folder.
 */
async function straightAndStopped(t: ExecutionContext, model: string, opts: TrainOptions, stopAt: number): Promise<{ straight: string; interrupted: string; ckpt: string }> {
  const straight = join(tempDir(), 'straight');
  await trainModel(model, straight, opts);
  const interrupted = join(tempDir(), 'interrupted');
  const ctrl = new AbortController();
  const reason = new Error(`stop at ${stopAt}`);
  await rejectsAborted(t, trainModel(model, interrupted, { ...opts, signal: ctrl.signal, onProgress: (e) => { if (e.phase === 'train' && e.done === stopAt) ctrl.abort(reason); } }), reason);
  const [ckpt] = readdirSync(join(interrupted, 'checkpoints'));
  return { straight, interrupted, ckpt: join(interrupted, 'checkpoints', ckpt!) };
}

// serial: stopped by an abort from a progress event (see the test above).
test.serial('rows-only training keeps moments for its rows only and resumes bit-identical, also from whole-matrix moments; other rows are refused', async (t) => {
  const model = await smallModel();
  const data = await packed(32);
  const rows = [301, 5, 7999, 17, 300];
  const opts = { data: data.path, params: 'embeddings' as const, rows, steps: 6, batchSize: 2, lr: 5e-3, warmupSteps: 2, seed: 4, checkpointEvery: 0 };
  const { straight, interrupted, ckpt } = await straightAndStopped(t, model, opts, 2);
  const state = new Map(readSafetensors(join(ckpt, 'optimizer.safetensors')).map((x) => [x.name, x]));
  for (const name of ['model.embed_tokens.weight', 'lm_head.weight']) {
    t.deepEqual(state.get(`${name}.exp_avg`)?.shape, [rows.length, 32], `${name}: moments for the ${rows.length} rows only`);
    t.deepEqual(state.get(`${name}.master`)?.shape, [rows.length, 32], `${name}: a master copy of the ${rows.length} rows only`);
    t.deepEqual([...new BigInt64Array(new Uint8Array(state.get(`${name}.rows`)!.data).slice().buffer)].map(Number), [...rows].sort((a, b) => a - b));
  }
  // A checkpoint made with another global batch (another number of ranks: batch size and accumulation are
  // options, compared above) is refused, before any of its weights are read in.
  const stateFile = join(ckpt, 'state.json');
  const stateText = readFileSync(stateFile, 'utf8');
  writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(stateText), global_batch: 4 }));
  const ranks = await t.throwsAsync(trainModel(model, interrupted, opts), { instanceOf: LepError });
  t.is(ranks.code, 'LEP_RESUME_MISMATCH', ranks.message);
  t.regex(ranks.message, /trained with a global batch of 4 blocks, this run has 2 \(batch size x grad accumulation x ranks\)/);
  writeFileSync(stateFile, stateText);
  const other = await t.throwsAsync(trainModel(model, interrupted, { ...opts, rows: [5, 17, 300, 301, 7998] }), { instanceOf: LepError });
  t.is(other.code, 'LEP_RESUME_MISMATCH', other.message);
  t.regex(other.message, /rows \[5,17,300,301,7999\] then, \[5,17,300,301,7998\] now \(id #5: 7999 then, 7998 now\)/);
  // A checkpoint from before row-set state (whole-matrix moments, zero outside the rows, no `.rows` or
  // `.master`: the master copy was the whole matrix in trainable.safetensors) resumes the same.
  const sorted = [...rows].sort((x, y) => x - y);
  const vocab = Tokenizer.fromDir(model).size;
  const legacy = [...state.values()].filter((x) => /\.exp_avg(_sq)?$/.test(x.name)).map((x) => {
    const k = new Float32Array(new Uint8Array(x.data).slice().buffer);
    const full = new Float32Array(vocab * 32);
    sorted.forEach((r, i) => full.set(k.subarray(i * 32, (i + 1) * 32), r * 32));
    return { name: x.name, dtype: 'F32' as const, shape: [vocab, 32], data: new Uint8Array(full.buffer) };
  });
  writeSafetensors(join(ckpt, 'optimizer.safetensors'), legacy);
  // The same set in another order and with a repeat is the same run: it resumes.
  await trainModel(model, interrupted, { ...opts, rows: [5, 17, 300, 301, 7999, 17] });
  const a = weights(straight);
  const b = weights(interrupted);
  for (const [name, bytes] of a) t.true(bytes.equals(b.get(name)!), `${name} differs after resume`);
});

// serial: stopped by an abort from a progress event (see above).
test.serial('rows-only training in bf16: an f32 master copy of the rows, and resume is bit-identical', async (t) => {
  const model = await smallModel();
  const data = await packed(32);
  const rows = [5, 17, 300, 301, 7999];
  const opts = { data: data.path, params: 'embeddings' as const, rows, dtype: 'bf16' as const, steps: 5, batchSize: 2, lr: 5e-3, warmupSteps: 1, seed: 2, checkpointEvery: 0 };
  const { straight, interrupted, ckpt } = await straightAndStopped(t, model, opts, 2);
  const state = new Map(readSafetensors(join(ckpt, 'optimizer.safetensors')).map((x) => [x.name, x]));
  t.like(state.get('lm_head.weight.master'), { dtype: 'F32', shape: [rows.length, 32] });
  t.like(readSafetensors(join(ckpt, 'trainable.safetensors')).find((x) => x.name === 'lm_head.weight'), { dtype: 'BF16', shape: [Tokenizer.fromDir(model).size, 32] });
  await trainModel(model, interrupted, opts);
  const a = weights(straight);
  const b = weights(interrupted);
  for (const [name, bytes] of a) t.true(bytes.equals(b.get(name)!), `${name} differs after resume`);
});

test('gradients match central finite differences (float64) for both parameter selections', async (t) => {
  const model = await smallModel({ dtype: 'f64', hiddenSize: 16, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 1, embedStd: 0.5 });
  const blocks = [[1, 500, 40, 1200, 7, 88, 3000, 12], [8000, 65, 66, 67, 900, 901, 5, 6]];
  const tokens = new Int32Array(blocks.flat());
  const lossAt = async (dir: string, params: 'all' | 'embeddings') => {
    const m = await LepModel.load(dir, { dtype: 'f64' });
    const r = await m.native.lossAndGrads({ tokens, rows: 2, cols: 8, params }, null).promise;
    m.dispose();
    return r;
  };
  const base = readSafetensors(join(model, 'model.safetensors'));
  const probes: [string, number][] = [
    ['model.embed_tokens.weight', 500 * 16 + 3],
    ['model.embed_tokens.weight', 7 * 16 + 0],
    ['lm_head.weight', 1200 * 16 + 5],
    ['model.layers.0.self_attn.q_proj.weight', 37],
    ['model.layers.0.mlp.down_proj.weight', 11],
    ['model.layers.0.input_layernorm.weight', 2],
  ];
  for (const params of ['all', 'embeddings'] as const) {
    const ref = await lossAt(model, params);
    for (const [name, index] of probes) {
      const trainable = params === 'all' || name === 'model.embed_tokens.weight' || name === 'lm_head.weight';
      t.is(name in ref.grads, trainable, `${params}: ${name} ${trainable ? 'has' : 'has no'} gradient`);
      if (!trainable) continue;
      const eps = 1e-5;
      const shifted = async (delta: number) => {
        const dir = join(tempDir(), 'fd');
        const { mkdirSync, copyFileSync } = await import('node:fs');
        mkdirSync(dir, { recursive: true });
        for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(model, f), join(dir, f));
        writeSafetensors(join(dir, 'model.safetensors'), base.map((x) => {
          if (x.name !== name) return x;
          const data = new Float64Array(new Uint8Array(x.data).buffer.slice(0));
          data[index] = data[index]! + delta;
          return { ...x, data: new Uint8Array(data.buffer) };
        }));
        return (await lossAt(dir, params)).loss;
      };
      const fd = ((await shifted(eps)) - (await shifted(-eps))) / (2 * eps);
      const analytic = ref.grads[name]![index]!;
      const rel = Math.abs(fd - analytic) / Math.max(1e-8, Math.abs(fd) + Math.abs(analytic));
      t.true(rel < 1e-5, `${params} ${name}[${index}]: analytic ${analytic} vs finite difference ${fd} (rel ${rel})`);
    }
  }
});

test('activation checkpointing: the same loss and gradients (float64), and the same trained weights (f32)', async (t) => {
  const model = await smallModel({ dtype: 'f64', hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, numKeyValueHeads: 1, embedStd: 0.5 });
  const tokens = new Int32Array([1, 500, 40, 1200, 7, 88, 3000, 12, 8000, 65, 66, 67, 900, 901, 5, 6]);
  const lossMask = new Uint8Array([0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1]);
  const m = await LepModel.load(model, { dtype: 'f64' });
  for (const params of ['all', 'embeddings'] as const) {
    const plain = await m.native.lossAndGrads({ tokens, rows: 2, cols: 8, lossMask, params }, null).promise;
    const ckpt = await m.native.lossAndGrads({ tokens, rows: 2, cols: 8, lossMask, params, activationCheckpointing: true }, null).promise;
    t.is(ckpt.loss, plain.loss);
    t.deepEqual(Object.keys(ckpt.grads).sort(), Object.keys(plain.grads).sort());
    for (const [name, g] of Object.entries(plain.grads)) {
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i]! - ckpt.grads[name]![i]!) / (Math.abs(g[i]!) + 1e-12));
      t.true(worst < 1e-10, `${params} ${name}: relative difference ${worst}`);
    }
  }
  m.dispose();
  // float32: the checkpointed layer's forward (run without autograd) and its recomputation (with it) take
  // the same products (oneDNN's where the job uses them, lep info "f32 products"), so the loss is the
  // plain run's to the bit, and the gradients equal it to rounding of their sums.
  const m32 = await LepModel.load(await smallModel({ hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2 }), { dtype: 'f32' });
  try {
    const plain = await m32.native.lossAndGrads({ tokens, rows: 2, cols: 8, lossMask, params: 'all' }, null).promise;
    const ckpt = await m32.native.lossAndGrads({ tokens, rows: 2, cols: 8, lossMask, params: 'all', activationCheckpointing: true }, null).promise;
    t.is(ckpt.products, plain.products);
    t.is(ckpt.loss, plain.loss, `float32 loss with ${plain.products} products`);
    for (const [name, g] of Object.entries(plain.grads)) {
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < g.length; i++) {
        worst = Math.max(worst, Math.abs(g[i]! - ckpt.grads[name]![i]!));
        scale = Math.max(scale, Math.abs(g[i]!));
      }
      t.true(worst <= 1e-6 * scale, `float32 ${name}: max |Δ| ${worst} of max |g| ${scale}`);
    }
  } finally {
    m32.dispose();
  }
  const f32 = await smallModel();
  const data = await packed(64, 8);
  const a = join(tempDir(), 'plain');
  const b = join(tempDir(), 'ckpt');
  const opts = { data: data.path, steps: 3, batchSize: 4, lr: 3e-3, warmupSteps: 1 };
  await trainModel(f32, a, opts);
  await trainModel(f32, b, { ...opts, activationCheckpointing: true });
  const wa = weights(a);
  const wb = weights(b);
  for (const [name, bytes] of wa) {
    const x = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const yb = wb.get(name)!;
    const y = new Float32Array(yb.buffer, yb.byteOffset, yb.length / 4);
    let worst = 0;
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
    t.true(worst < 1e-5, `${name}: max |Δ| ${worst}`);
  }
});

test('bad input: empty corpus, sequence too long, vocabulary mismatch, NaN loss keeps the last good checkpoint', async (t) => {
  const tok = Tokenizer.fromDir(LLAMA3_8K);
  const empty = await packDocuments([['short text']], tok, { seqLen: 64 });
  const e1 = t.throws(() => writeBlocks(join(tempDir(), 'x.safetensors'), empty.blocks));
  t.regex(e1!.message, /no complete block .* the corpus is shorter than one block/s);
  const model = await smallModel();
  const long = await packed(256);
  const e2 = await t.throwsAsync(trainModel(model, join(tempDir(), 'o'), { data: long.path, steps: 1 }));
  t.regex(e2!.message, /sequence length 255 exceeds the model's max_position_embeddings 128/);
  const wrong = join(tempDir(), 'wrong.safetensors');
  writeBlocks(wrong, [Array.from({ length: 16 }, (_, i) => 9000 + i)]);
  const e3 = await t.throwsAsync(trainModel(model, join(tempDir(), 'o'), { data: wrong, steps: 1 }));
  t.regex(e3!.message, /token id 9015 outside the model's vocabulary \(8005\).*packed with another tokenizer/s);
  t.is((e3 as { code?: string }).code, 'LEP_VOCAB_MISMATCH');
  // NaN: a sane first phase with checkpoints, then a learning rate that blows the weights up
  const data = await packed(32);
  const out = join(tempDir(), 'nan');
  // (one run: resuming with another learning rate is refused). Warm-up makes step 1's rate 0 and step 2's
  // huge, so the loss first fails at step 3 or later, after good checkpoints.
  const e4 = await t.throwsAsync(trainModel(model, out, { data: data.path, steps: 12, batchSize: 2, lr: 1e30, warmupSteps: 12, clip: 0, checkpointEvery: 1, keepCheckpoints: 20 }));
  // Either the loss shows it first, or the checkpoint writer finds the update made the weights non-finite
  // (it refuses to write them); both name the step and the last good checkpoint, one step before.
  const m =
    /the training loss became (?:nan|inf|-nan) at step (\d+); parameters were not updated; the last good checkpoint is .*step-(\d{8})/.exec(e4!.message) ??
    /the weights became non-finite in the update of step (\d+) \(.*\); the last good checkpoint is .*step-(\d{8})/s.exec(e4!.message);
  t.truthy(m, e4!.message);
  t.true(['LEP_NAN_LOSS', 'LEP_NAN_WEIGHTS'].includes((e4 as { code?: string }).code ?? ''), (e4 as { code?: string }).code);
  t.is(Number(m![2]), Number(m![1]) - 1);
  t.deepEqual(readdirSync(join(out, 'checkpoints')).sort().at(-1), `step-${m![2]}`, 'no checkpoint after the failure');
  t.false(existsSync(join(out, STAGE_RECORD_FILE)), 'a failed run writes no stage record');
});
