/**
 * `lep init` end to end on tiny real models (cpp/core/embedding_init.* through ts/init/initEmbeddings.ts):
 * rows read back from the written safetensors and checked against rows computed here from the old
 * checkpoint, on Mistral's SentencePiece-style and the LLaMa-3 byte-level tokenizer; tied and padded
 * models; never-trained (all-zero) rows; Optimized id maps; the other rules; a trained model's loss on
 * held-out Russian text; the CLI; bad input.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import { weightFilesOf } from '../../ts/checkpoint/modelDir.js';
import { mistralTokenizerDir } from '../../ts/data/builtinTokenizers.js';
import { applyEmbeddingPatch, PATCH_TENSORS_FILE, writeEmbeddingPatch } from '../../ts/init/embeddingPatch.js';
import { initEmbeddings, resolveInitOptions } from '../../ts/init/initEmbeddings.js';
import type { ProvenanceEntry } from '../../ts/init/provenance.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { extendTokenizer } from '../../ts/tokenizer/extend.js';
import { ID_MAP_FILE, saveTokenizerDir, shrinkTokenizer } from '../../ts/tokenizer/shrink.js';
import { readStageRecord, stageInput } from '../../ts/stage/stageRecord.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { corpora } from '../corpora.js';
import { LEP_CLI as CLI, maxAbsDiff, tempDir, tinyModel } from '../helpers.js';
import { donorFor, extendedTokenizerDir, LLAMA3_DIR, meanRows, meanRows64, readMatrices, row, rowBytes, type Matrix } from '../initHelpers.js';

const run = promisify(execFile);
// Absent from Mistral's vocabulary; Mistral splits "лалала" into ▁ла ла ла (a repeated part counts twice).
const WORDS = ['▁привет', '▁мир', '▁лалала', '▁молоко'];
const EMBED = 'model.embed_tokens.weight';
const HEAD = 'lm_head.weight';

const mistralModel = (extra = {}) => tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, embedStd: 0.02, ...extra });
const llamaModel = (extra = {}) =>
  tinyModel({ tokenizerDir: LLAMA3_DIR, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02, ...extra });

function provenance(dir: string): { header: Record<string, unknown>; tokens: ProvenanceEntry[] } {
  const j = JSON.parse(readFileSync(join(dir, 'init_provenance.json'), 'utf8')) as Record<string, unknown> & { tokens: ProvenanceEntry[] };
  return { header: j, tokens: j.tokens };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function assertRow(t: { true(v: boolean, m?: string): void }, got: Float32Array, want: ArrayLike<number>, tol: number, what: string): void {
  const d = maxAbsDiff(got, want);
  t.true(d.diff <= tol, `${what}: max |diff| ${d.diff} at ${d.at} (tolerance ${tol})`);
}

/** Sets the given rows of the (f32) embedding matrices of a model to `value` (0: never-trained rows, as in LLaMa-3). */
function fillRows(modelDir: string, ids: number[], value = 0): void {
  for (const f of weightFilesOf(modelDir)) {
    const tensors = getNative().readSafetensors(f);
    for (const t of tensors) {
      if (t.name !== EMBED && t.name !== HEAD) continue;
      const rowBytesLen = (t.data.length / t.shape[0]!) | 0;
      const f32 = new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
      for (const id of ids) f32.fill(value, (id * rowBytesLen) / 4, ((id + 1) * rowBytesLen) / 4);
    }
    getNative().writeSafetensors(f, tensors, getNative().inspectSafetensors(f).metadata);
  }
}

test('Extended, SentencePiece-style (Mistral): originals bit-identical, merged rows are the mean of their parts on both sides, provenance', async (t) => {
  const model = await mistralModel();
  const tokDir = extendedTokenizerDir(mistralTokenizerDir(), WORDS);
  const out = join(tempDir(), 'init');
  const r = await initEmbeddings(model, tokDir, out);
  const newTok = Tokenizer.fromDir(tokDir);
  const mistral = Tokenizer.fromDir(mistralTokenizerDir());
  t.is(r.oldSize, 32000);
  t.is(r.newSize, newTok.size);
  t.is(r.rows, newTok.size);
  const before = readMatrices(model);
  const after = readMatrices(out);
  for (const name of [EMBED, HEAD]) {
    const a = after.get(name)!;
    const b = before.get(name)!;
    t.is(a.rows, newTok.size, name);
    t.true(sameBytes(a.bytes.subarray(0, b.bytes.length), b.bytes), `${name}: every original row is bit-identical`);
    for (const w of WORDS) {
      const id = newTok.tokenToId(w)!;
      const parts = await mistral.encode(w.slice(1));
      t.true(parts.length > 1 && id >= 32000);
      assertRow(t, row(a, id), meanRows(b, parts), 1e-7, `${name} ${w}`);
    }
  }
  // other tensors copied through unchanged
  for (const [name, m] of before) if (name !== EMBED && name !== HEAD) t.true(sameBytes(after.get(name)!.bytes, m.bytes), name);
  const repeated = await mistral.encode('лалала');
  t.true(new Set(repeated).size < repeated.length, 'лалала has a repeated part');
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  t.is(cfg.vocab_size, newTok.size);
  t.is(cfg.bos_token_id, 1);
  t.is(readFileSync(join(out, 'tokenizer.json'), 'utf8'), readFileSync(join(tokDir, 'tokenizer.json'), 'utf8'));
  const p = provenance(out);
  t.is(p.tokens.length, newTok.size);
  const hello = p.tokens[newTok.tokenToId('▁привет')!]!;
  t.like(hello, { source: 'mean', token: '▁привет', old: await mistral.encode('привет') });
  t.like(p.tokens[1], { source: 'special', old: [1], token: '<s>' });
  t.like(p.tokens[500], { source: 'copy', old: [500] });
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  t.is(manifest.stage, 'init');
  t.is(manifest.options.rule, 'mean');
  t.regex(manifest.inputs.newTokenizer.files['tokenizer.json'], /^[0-9a-f]{64}$/);
  // The stage record: every option as it ran, both inputs with fingerprints, the counts.
  const record = readStageRecord(out, 'init');
  t.deepEqual(record.resolved, { ...resolveInitOptions({}), idMap: false, copyRows: {}, oldTokenizerDir: model });
  t.deepEqual(record.inputs, [stageInput('model', model), stageInput('tokenizer', tokDir)]);
  t.like(record.result, { oldSize: 32000, newSize: r.newSize, rows: r.rows, counts: r.counts, provenanceFile: 'init_provenance.json' });
  // A run that fails leaves no directory, so no record: the output is there whole, with its record, or not at all.
  const failed = join(tempDir(), 'init-aborted');
  const ctrl = new AbortController();
  ctrl.abort(new Error('stop'));
  await t.throwsAsync(initEmbeddings(model, tokDir, failed, { signal: ctrl.signal }), { code: 'LEP_ABORTED' });
  t.false(existsSync(failed));
});

test('byte-level (LLaMa-3), tied and padded: no lm_head written, rows padded to a multiple, all-zero rows kept out of every mean', async (t) => {
  const model = await llamaModel({ tieWordEmbeddings: true, vocabSize: 8064 }); // 59 padding rows past the 8005 tokens
  const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
  const helloParts = await llama3.encode(' привет');
  const worldParts = await llama3.encode(' мир');
  t.true(helloParts.length > 2 && worldParts.length > 1);
  // Never-trained rows: one part of " привет", every part of " мир" (its mean must fall back to the global mean).
  const zeroed = [...new Set([helloParts[1]!, ...worldParts])];
  fillRows(model, zeroed);
  fillRows(model, [...Array(59).keys()].map((i) => 8005 + i), 1); // padding rows of garbage: must stay out of the global mean
  const tokDir = extendedTokenizerDir(LLAMA3_DIR, WORDS);
  const newTok = Tokenizer.fromDir(tokDir);
  const out = join(tempDir(), 'init');
  const r = await initEmbeddings(model, tokDir, out, { padToMultipleOf: 64 });
  t.is(r.rows, Math.ceil(newTok.size / 64) * 64);
  t.true(r.rows > newTok.size);
  t.is(r.output, undefined);
  t.is(r.input.zeroRows, zeroed.length);
  const before = readMatrices(model).get(EMBED)!;
  const afterAll = readMatrices(out);
  t.false(afterAll.has(HEAD), 'tied: no lm_head');
  const after = afterAll.get(EMBED)!;
  t.is(after.rows, r.rows);
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  t.is(cfg.vocab_size, r.rows);
  t.true(cfg.tie_word_embeddings);
  for (let id = 0; id < 8005; id++) if (!sameBytes(rowBytes(after, id), rowBytes(before, id))) t.fail(`original row ${id} changed`);

  const zero = new Set(zeroed);
  const hello = newTok.tokenToId('ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ')!;
  const usable = helloParts.filter((id) => !zero.has(id));
  t.true(usable.length < helloParts.length && usable.length > 0);
  assertRow(t, row(after, hello), meanRows(before, usable), 1e-7, 'Ġпривет without its zero row');
  // global mean: the old tokenizer's non-zero rows only (not the 59 random padding rows, not the zero rows)
  const ids = [...Array(8005).keys()].filter((id) => !zero.has(id));
  const global = meanRows64(before, ids);
  const world = newTok.tokenToId('ĠÐ¼Ð¸ÑĢ')!;
  assertRow(t, row(after, world), global, 1e-6, 'Ġмир (all parts zero) = global mean');
  assertRow(t, row(after, r.rows - 1), global, 1e-6, 'a padding row = global mean');
  const withPadding = meanRows64(before, [...Array(8064).keys()]);
  t.true(maxAbsDiff(row(after, world), withPadding).diff > 1e-3, 'the check can tell the padding rows apart');
  const p = provenance(out);
  t.deepEqual((p.header.zero_rows as { input: number[] }).input, [...zeroed].sort((a, b) => a - b));
  t.like(p.tokens[world], { source: 'mean', old: [], fallback: ['input'] });
  t.deepEqual(p.tokens[hello]!.old, usable);
  const m = await LepModel.load(out);
  try {
    const [s] = await m.score([await m.tokenizer!.encode('Привет, мир! Человек и работа.')]);
    t.true(s!.tokenLogprobs.every(Number.isFinite));
  } finally {
    m.dispose();
  }
});

test('Optimized (shrink + extend with id map): every kept row moves to its new id bit-identically', async (t) => {
  const model = await llamaModel();
  const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
  const shrunk = await shrinkTokenizer(llama3, null, { keep: 3000, rule: 'first-ids' });
  const ext = extendTokenizer(shrunk, donorFor(WORDS));
  const tokDir = join(tempDir(), 'optimized');
  saveTokenizerDir(tokDir, ext.json, ext.config, { [ID_MAP_FILE]: shrunk.idMap });
  const out = join(tempDir(), 'init');
  const r = await initEmbeddings(model, tokDir, out);
  t.is(r.counts['id-map'], shrunk.idMap.new_size);
  const before = readMatrices(model);
  const after = readMatrices(out);
  for (const name of [EMBED, HEAD]) {
    const a = after.get(name)!;
    const b = before.get(name)!;
    let moved = 0;
    shrunk.idMap.new_to_old.forEach((o, n) => {
      if (!sameBytes(rowBytes(a, n), rowBytes(b, o))) t.fail(`${name}: new row ${n} is not old row ${o}`);
      if (o !== n) moved++;
    });
    t.true(moved >= 5, `${name}: ${moved} rows moved (first-ids keeps the low ids in place; the specials move down)`);
  }
  const eot = Tokenizer.fromDir(tokDir).tokenToId('<|eot_id|>')!;
  t.true(sameBytes(rowBytes(after.get(HEAD)!, eot), rowBytes(before.get(HEAD)!, 8004)), 'a special moved with its id');
});

test('rules: random rows are seeded with the old std, global-mean rows are the mean, output rule "first" takes the first part', async (t) => {
  const model = await mistralModel();
  const tokDir = extendedTokenizerDir(mistralTokenizerDir(), WORDS);
  const newTok = Tokenizer.fromDir(tokDir);
  const mistral = Tokenizer.fromDir(mistralTokenizerDir());
  const before = readMatrices(model);
  const newIds = [...Array(newTok.size - 32000).keys()].map((i) => 32000 + i);
  const rowsOf = async (options: Parameters<typeof initEmbeddings>[3]): Promise<Map<string, Matrix>> => {
    const out = join(tempDir(), 'init');
    await initEmbeddings(model, tokDir, out, options);
    return readMatrices(out);
  };
  const r1 = await rowsOf({ rule: 'random', seed: 5 });
  const r2 = await rowsOf({ rule: 'random', seed: 5 });
  const r3 = await rowsOf({ rule: 'random', seed: 6 });
  const e1 = r1.get(EMBED)!;
  t.true(sameBytes(e1.bytes, r2.get(EMBED)!.bytes), 'same seed, same rows');
  t.false(sameBytes(e1.bytes, r3.get(EMBED)!.bytes), 'another seed, other rows');
  let sq = 0;
  for (const id of newIds) for (const v of row(e1, id)) sq += v * v;
  const std = Math.sqrt(sq / (newIds.length * e1.cols));
  t.true(Math.abs(std - 0.02) < 0.004, `random rows' std ${std} ~ the old rows' 0.02`);
  const gm = (await rowsOf({ rule: 'global-mean' })).get(HEAD)!;
  const global = meanRows64(before.get(HEAD)!, [...Array(32000).keys()]);
  for (const id of newIds) assertRow(t, row(gm, id), global, 1e-6, `global-mean row ${id}`);
  const first = await rowsOf({ outputRule: 'first' });
  const hello = newTok.tokenToId('▁привет')!;
  const parts = await mistral.encode('привет');
  assertRow(t, row(first.get(HEAD)!, hello), row(before.get(HEAD)!, parts[0]!), 0, 'output: first part');
  assertRow(t, row(first.get(EMBED)!, hello), meanRows(before.get(EMBED)!, parts), 1e-7, 'input: still the mean');
});

test('a trained model: initialised model loads, and mean-init predicts new tokens on held-out Russian far better than random or global-mean rows', async (t) => {
  const files = await corpora();
  const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
  const text = readFileSync(files['ru.txt']!, 'utf8').slice(0, 300_000);
  const docs = text.split(/\n\n+/).map((d) => d.split('\n').filter(Boolean)).filter((d) => d.length > 0);
  const { blocks } = await packDocuments(docs, llama3, { seqLen: 64, maxBlocks: 400 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const base = await llamaModel({ seed: 3 });
  const trained = join(tempDir(), 'trained');
  await trainModel(base, trained, { data, steps: 80, batchSize: 8, lr: 1e-2, warmupSteps: 5, resume: false });
  // An Extended tokenizer with the 300 most frequent Russian words (4+ letters) of the training text.
  const freq = new Map<string, number>();
  for (const w of text.toLowerCase().match(/[а-яё]{4,}/g) ?? []) freq.set(w, (freq.get(w) ?? 0) + 1);
  const words = [...freq].sort((a, b) => b[1] - a[1]).slice(0, 300).map(([w]) => `▁${w}`);
  const tokDir = extendedTokenizerDir(LLAMA3_DIR, words);
  const heldOut = readFileSync(files['heldout/ru.txt']!, 'utf8').split('\n').filter((l) => l.length > 40).slice(0, 60);
  const loss: Record<string, { all: number; newTargets: number }> = {};
  for (const rule of ['mean', 'random', 'global-mean'] as const) {
    const out = join(tempDir(), rule);
    await initEmbeddings(trained, tokDir, out, { rule });
    const m = await LepModel.load(out);
    try {
      // score() refuses sequences past the context (issue 15): keep each line's first max_position_embeddings tokens.
      const seqs = (await m.tokenizer!.encodeBatch(heldOut)).map((s) => s.slice(0, m.config.maxPositionEmbeddings));
      let all = 0, n = 0, onNew = 0, nNew = 0;
      (await m.score(seqs)).forEach((s, i) =>
        s.tokenLogprobs.forEach((lp, j) => {
          t.true(Number.isFinite(lp));
          all -= lp;
          n++;
          if (seqs[i]![j + 1]! >= 8005) (onNew -= lp, nNew++);
        }),
      );
      t.true(nNew > 300, `${nNew} new-token targets`);
      loss[rule] = { all: all / n, newTargets: onNew / nNew };
    } finally {
      m.dispose();
    }
  }
  t.log(JSON.stringify(loss));
  t.true(loss.mean!.newTargets < loss.random!.newTargets - 0.5, 'mean init predicts new tokens better than random rows');
  t.true(loss.mean!.newTargets < loss['global-mean']!.newTargets - 0.5, 'and better than the global mean');
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('CLI: lep init writes the model and says what it did; bad input fails with messages that say what to fix', async (t) => {
  const model = await mistralModel();
  const tokDir = extendedTokenizerDir(mistralTokenizerDir(), WORDS);
  const out = join(tempDir(), 'cli');
  const env = { ...process.env };
  const { stdout } = await run('node', [CLI, 'init', model, '--tokenizer', tokDir, '--out', out, '--output-rule', 'first'], { env });
  t.regex(stdout, /wrote .*: 32000 -> \d+ tokens, \d+ rows \(special 3, copy 31997, mean \d+\); .*provenance in init_provenance.json/);
  t.true(existsSync(join(out, 'model.safetensors')));

  const badRule = await t.throwsAsync(run('node', [CLI, 'init', model, '--tokenizer', tokDir, '--out', join(tempDir(), 'x'), '--rule', 'median'], { env }));
  t.regex((badRule as unknown as { stderr: string }).stderr, /Expected "mean" or "random" or "global-mean" or "omp" or "focus" for rule \(--rule\) but received "median"/);

  // The model's tokenizer is bigger than its embedding matrix: the tokenizer is not the model's.
  const e1 = await t.throwsAsync(initEmbeddings(await llamaModel(), tokDir, join(tempDir(), 'x'), { oldTokenizerDir: mistralTokenizerDir() }));
  t.is((e1 as { code?: string }).code, 'LEP_VOCAB_MISMATCH');
  t.regex(e1!.message, /tokenizer has 32000 tokens but the model has only 8005 embedding rows[\s\S]*HINT/);

  // An untied model without lm_head.
  const noHead = await mistralModel();
  const f = weightFilesOf(noHead)[0]!;
  getNative().writeSafetensors(f, getNative().readSafetensors(f).filter((x) => x.name !== HEAD));
  const e2 = await t.throwsAsync(initEmbeddings(noHead, tokDir, join(tempDir(), 'x')));
  t.is((e2 as { code?: string }).code, 'LEP_MISSING_TENSOR');
  t.regex(e2!.message, /no tensor 'lm_head.weight' but config.json says the embeddings are not tied[\s\S]*HINT: set tie_word_embeddings/);

  // No embedding matrix at all.
  const noEmbed = await mistralModel();
  const g = weightFilesOf(noEmbed)[0]!;
  getNative().writeSafetensors(g, getNative().readSafetensors(g).filter((x) => x.name !== EMBED));
  const e3 = await t.throwsAsync(initEmbeddings(noEmbed, tokDir, join(tempDir(), 'x')));
  t.is((e3 as { code?: string }).code, 'LEP_MISSING_TENSOR');
  t.regex(e3!.message, /model.embed_tokens.weight/);

  const e4 = await t.throwsAsync(initEmbeddings(model, tokDir, model));
  t.regex(e4!.message, /--out \S+ is the input MODEL_DIR/);
  const e5 = await t.throwsAsync(initEmbeddings(model, tokDir, join(tempDir(), 'x'), { padToMultipleOf: 0 }));
  t.regex(e5!.message, /Expected a positive integer for padToMultipleOf \(--pad-to-multiple-of\) but received 0/);
  writeFileSync(join(tokDir, ID_MAP_FILE), JSON.stringify({ old_size: 8005, new_size: 1, new_to_old: [0], old_to_new: { 0: 0 } }));
  const e6 = await t.throwsAsync(initEmbeddings(model, tokDir, join(tempDir(), 'x')));
  t.is((e6 as { code?: string }).code, 'LEP_ID_MAP_MISMATCH');
});

test('embedding patch: embeddings-only training written as a patch and applied to the initialised base gives the trained model bit-identically', async (t) => {
  const model = await llamaModel({ seed: 4 });
  const tokDir = extendedTokenizerDir(LLAMA3_DIR, WORDS);
  const base = join(tempDir(), 'init');
  await initEmbeddings(model, tokDir, base);
  const tok = Tokenizer.fromDir(tokDir);
  const { blocks } = await packDocuments([['Привет, мир! Молоко и лалала.', 'Hello world, the quick brown fox.']].flatMap((d) => Array(20).fill(d)), tok, { seqLen: 16 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const trained = join(tempDir(), 'trained');
  await trainModel(base, trained, { data, params: 'embeddings', steps: 3, batchSize: 2, lr: 1e-2, warmupSteps: 0, resume: false });
  const other = await mistralModel();
  const patch = join(tempDir(), 'patch');
  const w = writeEmbeddingPatch(trained, patch);
  const full = readMatrices(trained);
  t.is(w.bytes, full.get(EMBED)!.bytes.length + full.get(HEAD)!.bytes.length);
  t.true(existsSync(join(patch, PATCH_TENSORS_FILE)) && existsSync(join(patch, 'tokenizer.json')));
  const out = join(tempDir(), 'applied');
  applyEmbeddingPatch(patch, base, out);
  const applied = new Map<string, Uint8Array>();
  for (const f of weightFilesOf(out)) for (const x of getNative().readSafetensors(f)) applied.set(x.name, x.data);
  const want = new Map<string, Uint8Array>();
  for (const f of weightFilesOf(trained)) for (const x of getNative().readSafetensors(f)) want.set(x.name, x.data);
  t.deepEqual([...applied.keys()].sort(), [...want.keys()].sort());
  for (const [name, bytes] of want) t.true(sameBytes(applied.get(name)!, bytes), `${name} bit-identical`);
  t.false(sameBytes(want.get(EMBED)!, readMatrices(base).get(EMBED)!.bytes), 'training changed the embeddings (the check is not vacuous)');
  t.is(readFileSync(join(out, 'config.json'), 'utf8'), readFileSync(join(trained, 'config.json'), 'utf8'));
  const e = t.throws(() => applyEmbeddingPatch(patch, other, join(tempDir(), 'x')));
  t.is((e as { code?: string }).code, 'LEP_PATCH_MISMATCH');
  t.regex(e!.message, /is not the base of this patch[\s\S]*HINT/);
});

// serial: it forks the CLI (see the CLI test above).
test.serial('lep train --rows new trains exactly the rows lep init made; a model without provenance, or one file named new, is told apart', async (t) => {
  const model = await llamaModel({ seed: 5 });
  const tokDir = extendedTokenizerDir(LLAMA3_DIR, WORDS);
  const base = join(tempDir(), 'init');
  await initEmbeddings(model, tokDir, base);
  const made = provenance(base).tokens.filter((e) => !['copy', 'id-map', 'special', 'override'].includes(e.source)).map((e) => e.id);
  const oldRows = readMatrices(model).get(EMBED)!.rows;
  t.true(made.length >= WORDS.length && made.every((id) => id >= oldRows), `new rows ${made.join(',')} lie past the ${oldRows} old ones`);
  const { blocks } = await packDocuments([['Привет, мир! Молоко и лалала.', 'Hello world, the quick brown fox.']].flatMap((d) => Array(20).fill(d)), Tokenizer.fromDir(tokDir), { seqLen: 16 });
  const dir = tempDir();
  const data = join(dir, 'blocks.safetensors');
  writeBlocks(data, blocks);
  const train = (from: string, out: string, rows: string) =>
    run('node', [CLI, 'train', from, '--data', data, '--out', out, '--embeddings-only', '--rows', rows, '--steps', '3', '--batch-size', '2', '--lr', '1e-2', '--warmup-steps', '0'], { cwd: dir });

  const out = join(dir, 'new-rows');
  await train(base, out, 'new');
  t.deepEqual(JSON.parse(readFileSync(join(out, 'train-config.json'), 'utf8')).rows, made, 'the resolved row set is recorded as ids');
  const before = readMatrices(base);
  const trained = readMatrices(out);
  for (const name of [EMBED, HEAD]) {
    const after = trained.get(name)!;
    const changed = Array.from({ length: after.rows }, (_, r) => r).filter((r) => !sameBytes(rowBytes(after, r), rowBytes(before.get(name)!, r)));
    t.true(changed.length > 0 && changed.every((r) => made.includes(r)), `${name}: rows ${changed.join(',')} changed, all of them new`);
  }

  // The original model has no provenance: 'new' means nothing there, and the error says what to pass.
  const e = await t.throwsAsync(train(model, join(dir, 'x'), 'new'));
  t.regex((e as unknown as { stderr: string }).stderr, /--rows new: .* has no init_provenance\.json[\s\S]*HINT: .*--rows FILE with a JSON array of token ids/);
  t.false(existsSync(join(dir, 'x', 'model.safetensors')));
  // A mistyped MODEL_DIR is reported as such, not as a missing provenance file.
  const typo = await t.throwsAsync(train(join(dir, 'no-such-model'), join(dir, 'y'), 'new'));
  t.notRegex((typo as unknown as { stderr: string }).stderr, /init_provenance/);
  t.regex((typo as unknown as { stderr: string }).stderr, /no-such-model/);
  // An empty row set is refused (the native trainer would read it as every row).
  await t.throwsAsync(trainModel(base, join(dir, 'z'), { data, params: 'embeddings', rows: [], steps: 1 }), { message: /rows/ });
  // A file of that name is reached as ./new.
  writeFileSync(join(dir, 'new'), JSON.stringify([made[0]]));
  const one = join(dir, 'one-row');
  await train(base, one, './new');
  t.deepEqual(JSON.parse(readFileSync(join(one, 'train-config.json'), 'utf8')).rows, [made[0]]);
});
