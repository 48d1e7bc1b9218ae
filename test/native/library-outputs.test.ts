/**
 * Every library function that writes refuses an output that is, lies inside, or contains one of its
 * inputs, as the CLI does (it once checked only in ts/cli/: `createModel(tok, { tokenizerDir: tok })`
 * replaced a tokenizer directory with a model, `exportGguf(dir, dir + '/model.safetensors')` the weights
 * with the GGUF), and leaves the input as it was.
 */
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { calibrate, createModel, exportCheckpoint, exportGguf, LepError, mergeAdapter, mistralTokenizerDir, packCorpus, trainModel } from '../../ts/index.js';
import { convertDarumeru } from '../../ts/eval/convertDarumeru.js';
import { applyEmbeddingPatch } from '../../ts/init/embeddingPatch.js';
import { tempDir, tinyModel } from '../helpers.js';

/** Names and SHA-256 of every file under `dir`. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort().map((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? `${n}/` : `${n} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  });
}

test('library writers refuse their output over an input and leave the input untouched', async (t) => {
  const model = await tinyModel();
  const tok = join(tempDir(), 'tokenizer');
  cpSync(mistralTokenizerDir(), tok, { recursive: true });
  writeFileSync(join(tok, 'my-notes.md'), 'the user\'s own file');
  const corpus = join(tempDir(), 'corpus.txt');
  writeFileSync(corpus, 'Some text.\n');
  const data = join(model, 'blocks.safetensors');  // inside the model directory: an input there too
  writeFileSync(data, '');
  const before = { model: snapshot(model), tok: snapshot(tok), corpus: readFileSync(corpus, 'utf8') };
  const calls: [string, () => unknown][] = [
    ['createModel', () => createModel(tok, { tokenizerDir: tok })],
    ['exportGguf', () => exportGguf(model, join(model, 'model.safetensors'))],
    ['packCorpus', () => packCorpus(corpus, tok, corpus, { seqLen: 16 })],
    ['trainModel', () => trainModel(model, model, { data, steps: 1 })],
    ['trainModel (out contains the data)', () => trainModel(tok, model, { data, steps: 1 })],
    ['exportCheckpoint', () => exportCheckpoint(model, join(model, 'checkpoints', 'step-1'), model)],
    ['mergeAdapter', () => mergeAdapter(model, join(tempDir(), 'adapter'), model)],
    ['applyEmbeddingPatch', () => applyEmbeddingPatch(join(tempDir(), 'patch'), model, join(model, 'patched'))],
    ['convertDarumeru', () => convertDarumeru(tok, tok)],
    ['calibrate', () => calibrate(model, join(model, 'calibrated'), { mode: 'data', data: corpus })],
  ];
  for (const [name, call] of calls) {
    const e = await t.throwsAsync(async () => call(), { instanceOf: LepError }, name);
    t.is(e?.code, 'LEP_OUTPUT_OVER_INPUT', `${name}: ${e?.message}`);
    t.regex(e?.message ?? '', /^--out \S+ (is|is inside|contains) the input /, name);
  }
  // A .gguf name inside the model's directory is allowed (llama.cpp's converter writes there; lep reads
  // no such file), and leaves the model's own files as they were.
  await exportGguf(model, join(model, 'model.gguf'));
  t.deepEqual(snapshot(model).filter((l) => !l.startsWith('model.gguf ')), before.model);
  rmSync(join(model, 'model.gguf'));
  // A file output that is a directory is refused before the work (it failed at the final rename).
  const e = await t.throwsAsync(exportGguf(model, tempDir()), { instanceOf: LepError });
  t.is(e!.code, 'LEP_BAD_OUTPUT');
  t.regex(e!.message, /^--out \S+ is a directory; this output is a file\nHINT: /);
  t.deepEqual(snapshot(model), before.model);
  t.deepEqual(snapshot(tok), before.tok);
  t.is(readFileSync(corpus, 'utf8'), before.corpus);
});
