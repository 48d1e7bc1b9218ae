/**
 * Every library function that writes refuses an output that is, lies inside, or contains one of its
 * inputs, as the CLI does (it once checked only in ts/cli/: `createModel(tok, { tokenizerDir: tok })`
 * replaced a tokenizer directory with a model, `exportGguf(dir, dir + '/model.safetensors')` the weights
 * with the GGUF), and leaves the input as it was. Training, which writes into its output, may keep its
 * data in a subdirectory of it; the outputs written at a run's end are checked at its start.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { calibrate, createModel, exportCheckpoint, exportGguf, LepError, mergeAdapter, mistralTokenizerDir, packCorpus, trainModel } from '../../ts/index.js';
import { convertDarumeru } from '../../ts/eval/convertDarumeru.js';
import { applyEmbeddingPatch, writeEmbeddingPatch } from '../../ts/init/embeddingPatch.js';
import { readSafetensors } from '../../ts/checkpoint/safetensors.js';
import { removeTrackedTemps } from '../../ts/util/tempPaths.js';
import { tempDir, tinyModel } from '../helpers.js';

/** Names and SHA-256 of every file under `dir`. */
function snapshot(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort().map((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? `${n}/` : `${n} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`;
  });
}

/** A few blocks of 16 tokens packed with `model`'s tokenizer, at `out` (its folder made). */
async function blocksFor(model: string, out = join(tempDir(), 'blocks.safetensors')): Promise<string> {
  const corpus = join(tempDir(), 'corpus.txt');
  writeFileSync(corpus, 'Some text to train on, long enough for a few blocks of sixteen tokens each.\n'.repeat(20));
  await packCorpus(corpus, model, out, { seqLen: 16 });
  return out;
}

// Serial (AVA runs serial tests before the concurrent ones): removeTrackedTemps reads and empties this
// process's whole list, which nothing else may be filling meanwhile.
test.serial('file writers let go of their temporary once the file is in place (a held one would be removed at exit)', async (t) => {
  removeTrackedTemps();
  const model = await tinyModel();
  const blocks = await blocksFor(model);
  const gguf = join(tempDir(), 'model.gguf');
  await exportGguf(model, gguf);
  t.true(existsSync(blocks) && existsSync(gguf));
  t.deepEqual(removeTrackedTemps(), [], 'packCorpus and exportGguf released what they tracked');
});

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

test('training writes into OUT: data in a subdirectory of it trains, beside its files or in its checkpoints is refused; --patch is checked before the run', async (t) => {
  const model = await tinyModel();
  const out = join(tempDir(), 'run');
  const data = await blocksFor(model, join(out, 'data', 'blocks.safetensors'));
  // The patch may go into a subfolder of OUT too (written whole when the run ends; OUT's model is read at its top level).
  const result = await trainModel(model, out, { data, steps: 1, batchSize: 2, params: 'embeddings', patchDir: join(out, 'patch') });
  t.is(result.stepsDone, 1);
  t.true(existsSync(join(out, 'config.json')) && existsSync(data) && existsSync(join(out, 'patch', 'patch.json')));

  for (const [where, at] of [['beside its files', join(out, 'blocks.safetensors')], ['in its checkpoints', join(out, 'checkpoints', 'data', 'blocks.safetensors')]] as const) {
    mkdirSync(join(at, '..'), { recursive: true });
    cpSync(data, at);
    const e = await t.throwsAsync(trainModel(model, out, { data: at, steps: 1 }), { instanceOf: LepError }, where);
    t.is(e?.code, 'LEP_OUTPUT_OVER_INPUT', where);
    t.regex(e!.message, /^--out \S+ contains the input --data /, where);
  }
  // A --patch that would overwrite an input, or a directory lep did not write, fails before any training:
  // no OUT appears (it was written only when the run ended).
  const notes = join(tempDir(), 'notes');
  mkdirSync(notes);
  writeFileSync(join(notes, 'todo.txt'), 'the user\'s own file');
  const cases: [(run: string) => string, LepError['code']][] = [
    [() => model, 'LEP_OUTPUT_OVER_INPUT'],
    [(run) => join(run, '..'), 'LEP_OUTPUT_OVER_INPUT'],
    [() => notes, 'LEP_OUTPUT_NOT_EMPTY'],
    [(run) => join(run, 'checkpoints', 'patch'), 'LEP_OUTPUT_OVER_INPUT'],  // the run's own subfolders
  ];
  for (const [where, code] of cases) {
    const fresh = join(tempDir(), 'run');
    const patchDir = where(fresh);
    const e = await t.throwsAsync(trainModel(model, fresh, { data, steps: 1, params: 'embeddings', patchDir }), { instanceOf: LepError }, patchDir);
    t.is(e?.code, code, e?.message);
    t.regex(e!.message, /^--patch /);
    // The run's own subfolder is named as such: OUT is no input, "inside the input --out" misled.
    if (patchDir.endsWith(join('checkpoints', 'patch')))
      t.regex(e!.message, /lies in \S+checkpoints, the checkpoints\/ folder that training writes in --out \S+\nHINT: give --patch a path outside checkpoints\//);
    t.false(existsSync(fresh), `${patchDir}: nothing written`);
  }
  t.deepEqual(readdirSync(notes), ['todo.txt']);
});

test('embedding patches appear whole, and a damaged patch.json is named', async (t) => {
  const model = await tinyModel();
  const patch = join(tempDir(), 'patch');
  writeEmbeddingPatch(model, patch);
  t.deepEqual(readdirSync(patch).filter((n) => n.includes('.tmp-')), []);
  const first = snapshot(patch);
  writeEmbeddingPatch(model, patch);  // an earlier patch is replaced
  t.deepEqual(snapshot(patch), first);
  // A write that fails partway (a tokenizer file that cannot be copied: a folder in the model's place)
  // leaves the earlier patch whole and no temporary.
  // Another model's (other embeddings): a write in place would have replaced the patch's tensors first.
  const broken = await tinyModel({ seed: 8 });
  rmSync(join(broken, 'special_tokens_map.json'), { force: true });
  mkdirSync(join(broken, 'special_tokens_map.json'));
  t.throws(() => writeEmbeddingPatch(broken, patch));
  t.deepEqual(snapshot(patch), first);
  t.deepEqual(readdirSync(join(patch, '..')).filter((n) => n.includes('.tmp-')), []);
  const out = join(tempDir(), 'patched');
  applyEmbeddingPatch(patch, model, out);
  t.true(existsSync(join(out, 'model.safetensors')));
  t.deepEqual(readdirSync(join(out, '..')).filter((n) => n.includes('.tmp-')), []);
  writeFileSync(join(patch, 'patch.json'), '{"format": "lep-embedding-patch/1", "ten');
  const e = t.throws(() => applyEmbeddingPatch(patch, model, join(tempDir(), 'again')), { instanceOf: LepError });
  t.is(e?.code, 'LEP_BAD_PATCH');
  t.regex(e!.message, /cannot read \S+patch\.json: .*\nHINT: /);
});

test('a training refused at its start leaves OUT as it was: the finished run\'s record, options and checkpoints', async (t) => {
  const model = await tinyModel();
  const data = await blocksFor(model);
  const out = join(tempDir(), 'run');
  const opts = { data, steps: 2, batchSize: 2, checkpointEvery: 1, keepCheckpoints: 0 };
  await trainModel(model, out, opts);
  const before = snapshot(out).filter((l) => !l.startsWith('train.log'));
  t.true(before.some((l) => l.startsWith('lep-stage.json ')) && before.some((l) => l.startsWith('train-config.json ')));
  // Other options than the checkpoints': refused (it removed the stage record, and a failed start with
  // --no-resume rewrote train-config.json, under which the old checkpoints would then have resumed).
  const refused = await t.throwsAsync(trainModel(model, out, { ...opts, steps: 3 }), { instanceOf: LepError });
  t.is(refused.code, 'LEP_RESUME_MISMATCH');
  t.deepEqual(snapshot(out).filter((l) => !l.startsWith('train.log')), before);
  // A model that fails only when it loads (its weights cut short), with --no-resume.
  const broken = join(tempDir(), 'broken');
  cpSync(model, broken, { recursive: true });
  const weightsFile = join(broken, 'model.safetensors');
  writeFileSync(weightsFile, readFileSync(weightsFile).subarray(0, 4096));
  const noModel = await t.throwsAsync(trainModel(broken, out, { ...opts, steps: 3, resume: false }), { instanceOf: LepError });
  t.regex(noModel.message, /model\.safetensors/);
  t.deepEqual(snapshot(out).filter((l) => !l.startsWith('train.log')), before);
  // The same command again resumes from the last checkpoint with no step left (as after a failed final
  // write): it reports the run's steps, not 0.
  const again = await trainModel(model, out, opts);
  t.is(again.stepsDone, 2);
  t.regex(again.resumedFrom ?? '', /step-0+2$/);
});

test('a model written in another dtype than its source says so in config.json (torch_dtype, and dtype where present)', async (t) => {
  const model = await tinyModel({ dtype: 'bf16' });
  // transformers >= 4.56 writes `dtype` beside or instead of torch_dtype.
  const configFile = join(model, 'config.json');
  writeFileSync(configFile, JSON.stringify({ ...JSON.parse(readFileSync(configFile, 'utf8')), dtype: 'bfloat16' }));
  const data = await blocksFor(model);
  const run = join(tempDir(), 'run');
  await trainModel(model, run, { data, steps: 1, batchSize: 2, params: 'embeddings' });
  const [step] = readdirSync(join(run, 'checkpoints'));
  const read = (dir: string) => ({
    config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>,
    dtypes: [...new Set(readSafetensors(join(dir, 'model.safetensors')).map((x) => x.dtype))],
  });
  const trained = read(run);
  t.deepEqual([trained.config.torch_dtype, trained.config.dtype, trained.dtypes], ['bfloat16', 'bfloat16', ['BF16']]);
  for (const [dtype, torchDtype, stored] of [['f32', 'float32', 'F32'], ['bf16', 'bfloat16', 'BF16']] as const) {
    const out = join(tempDir(), `export-${dtype}`);
    await exportCheckpoint(model, join(run, 'checkpoints', step!), out, { dtype });
    const got = read(out);
    t.deepEqual([got.config.torch_dtype, got.config.dtype, got.dtypes], [torchDtype, torchDtype, [stored]], dtype);
    t.is(got.config.hidden_size, trained.config.hidden_size);
  }
});

test('a train.log that cannot be written (a full disk: /dev/full) stops the training with LEP_IO naming it, not LEP_NATIVE "ENOSPC: ENOSPC"', async (t) => {
  const model = await tinyModel();
  const data = await blocksFor(model);
  const out = join(tempDir(), 'run');
  mkdirSync(out);
  symlinkSync('/dev/full', join(out, 'train.log'));
  const e = await t.throwsAsync(trainModel(model, out, { data, steps: 2, batchSize: 2 }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_IO', e!.message);
  t.regex(e!.message, /^cannot write \S+\/run\/train\.log: ENOSPC\nHINT: the disk is full/);
});

test('a file-system error while the final model is put in place is LEP_IO with the RESUME line (it was a bare ENOTEMPTY)', async (t) => {
  const model = await tinyModel();
  const data = await blocksFor(model);
  const out = join(tempDir(), 'run');
  // Something in the way of the final model's tokenizer.json: a folder with a file in it.
  mkdirSync(join(out, 'tokenizer.json'), { recursive: true });
  writeFileSync(join(out, 'tokenizer.json', 'x'), '');
  const e = await t.throwsAsync(trainModel(model, out, { data, steps: 2, batchSize: 2, checkpointEvery: 1 }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_IO', e!.message);
  t.regex(e!.message, /tokenizer\.json/);
  t.regex(e!.message, /\nRESUME: the newest checkpoint is \S+step-0+2 \(step 2\)/);
});

test('a checkpoint folder the trainer cannot make is LEP_IO with a hint (std::filesystem\'s error was LEP_NATIVE)', async (t) => {
  const model = await tinyModel();
  const data = await blocksFor(model);
  const out = join(tempDir(), 'run');
  mkdirSync(out);
  writeFileSync(join(out, 'checkpoints'), '');  // a file where the folder goes
  const e = await t.throwsAsync(trainModel(model, out, { data, steps: 2, batchSize: 2, checkpointEvery: 1 }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_IO', e!.message);
  t.regex(e!.message, /^cannot create directories: Not a directory \[\S+\/run\/checkpoints\]\nHINT: /);
});
