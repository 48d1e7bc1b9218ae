/**
 * The abort rule (ts/binding/runJob.ts) for every kind of native job: an AbortSignal aborted while the
 * job runs (from its first progress event) rejects with LEP_ABORTED whose cause is the signal's reason,
 * whether the native side stopped with an error of its own (score, gguf, init) or finished with a partial
 * result (generate, train).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { exportGguf } from '../../ts/checkpoint/gguf.js';
import { saveModelDir } from '../../ts/checkpoint/saveModelDir.js';
import { mistralTokenizerDir } from '../../ts/data/builtinTokenizers.js';
import { initEmbeddings } from '../../ts/init/initEmbeddings.js';
import { createModel } from '../../ts/model/createModel.js';
import { loadedNative } from '../../ts/binding/loadNative.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { trainTokenizer } from '../../ts/tokenizer/train.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { extendedTokenizerDir } from '../initHelpers.js';
import { rejectsAborted, tempDir, tinyModel } from '../helpers.js';

/** A signal that aborts, with `reason`, at the first progress event the job reports. */
function abortOnFirstEvent(reason: Error): { signal: AbortSignal; onProgress: () => void } {
  const ctl = new AbortController();
  return { signal: ctl.signal, onProgress: () => ctl.abort(reason) };
}

const small = () => tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 });

test('load and create', async (t) => {
  const dir = await small();
  const reason = new Error('stop loading');
  await rejectsAborted(t, LepModel.load(dir, abortOnFirstEvent(reason)), reason);
  const again = new Error('stop creating');
  await rejectsAborted(t, createModel(join(tempDir(), 'm'), { tokenizerDir: mistralTokenizerDir(), modelType: 'mistral', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, ...abortOnFirstEvent(again) }), again);
});

test('generate (finishes natively with a partial result) and score (stops with its own LEP_ABORTED)', async (t) => {
  const dir = await small();
  const m = await LepModel.load(dir);
  const reason = new Error('stop generating');
  await rejectsAborted(t, m.generateTokens([[1, 415]], { maxNewTokens: 50, stopTokens: [], ...abortOnFirstEvent(reason) }), reason);
  const r2 = new Error('stop scoring');
  // Enough batches (one sequence each) that the native loop is still running when the abort, set by the
  // first progress event on the JS thread, reaches it: with 8 it could finish first on a fast machine, and
  // the rejection was then the runner's generic one, not the native message this test checks.
  const seqs = Array.from({ length: 1024 }, () => Array.from({ length: 32 }, (_, i) => 100 + i));
  const e = await rejectsAborted(t, m.score(seqs, { maxBatchTokens: 32, ...abortOnFirstEvent(r2) }), r2);
  t.regex(e.message, /scoring aborted/, 'the native message says where it stopped');
  // A tiny model is saved without a progress event: a signal aborted before the call.
  const r3 = new Error('stop saving');
  await rejectsAborted(t, saveModelDir(m, dir, join(tempDir(), 'saved'), { signal: AbortSignal.abort(r3) }), r3);
  m.dispose();
});

test('train: the rejection names the checkpoint to resume from', async (t) => {
  const dir = await small();
  const tok = Tokenizer.fromDir(dir);
  const { blocks } = await packDocuments([['Привет, мир. '.repeat(200)]], tok, { seqLen: 16 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const reason = new Error('stop training');
  // Far more steps than run before the abort lands: it reaches the job only when the JS thread, shared
  // with this file's other tests, handles the first progress event, and the job trains on meanwhile; a
  // job that finished first would reject with the runner's generic message, not the one checked here.
  const e = await rejectsAborted(t, trainModel(dir, join(tempDir(), 'run'), { data, steps: 5000, batchSize: 2, lr: 1e-3, warmupSteps: 0, ...abortOnFirstEvent(reason) }), reason);
  t.regex(e.message, /training stopped at step \d+; run again to resume from /);
});

test('init and gguf export', async (t) => {
  const dir = await small();
  const tokDir = extendedTokenizerDir(mistralTokenizerDir(), ['▁привет', '▁мир']);
  const reason = new Error('stop init');
  await rejectsAborted(t, initEmbeddings(dir, tokDir, join(tempDir(), 'init'), abortOnFirstEvent(reason)), reason);
  const r2 = new Error('stop export');
  await rejectsAborted(t, exportGguf(dir, join(tempDir(), 'm.gguf'), { outType: 'f32', force: true, ...abortOnFirstEvent(r2) }), r2);
});

test('SentencePiece training', async (t) => {
  const corpus = join(tempDir(), 'corpus.txt');
  // Words of random syllables: enough distinct pieces for a vocabulary above the 256 byte-fallback pieces.
  const syllables = ['ка', 'ро', 'ми', 'ну', 'ле', 'то', 'са', 'ви', 'до', 'пе', 'лу', 'зо', 'ге', 'ба', 'ши', 'фу'];
  let seed = 7;
  const pick = (): string => syllables[(seed = (seed * 1103515245 + 12345) % 2147483648) % syllables.length]!;
  const word = (): string => Array.from({ length: 2 + (seed % 3) }, pick).join('');
  writeFileSync(corpus, Array.from({ length: 3000 }, () => Array.from({ length: 8 }, word).join(' ')).join('\n'));
  const ctl = new AbortController();
  const reason = new Error('stop spm');
  // Aborted once the corpus is read: the SentencePiece job itself must reject with LEP_ABORTED.
  const p = trainTokenizer(corpus, join(tempDir(), 'tok'), { vocabSize: 400, signal: ctl.signal, onProgress: (e) => void (e.phase === 'corpus' && e.total > 0 && ctl.abort(reason)) });
  await rejectsAborted(t, p, reason);
});

test.serial('a job waiting for another on the same model stops at once when aborted, not when the job ahead ends', async (t) => {
  const m = await LepModel.load(join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct'));
  t.teardown(() => m.dispose());
  const settled: string[] = [];
  const ctl = new AbortController();
  const reason = new Error('client gone');
  // The second generation starts once the first holds the model (its first piece), and is aborted once
  // its native job has started (two jobs running: serial, no other test's) and so waits for the model.
  let pieces = 0;
  let first!: () => void;
  const holding = new Promise<void>((r) => (first = r));
  const onText = (): void => {
    if (++pieces === 1) first();
    if (pieces > 1 && !ctl.signal.aborted && loadedNative()!.runningJobs() === 2) ctl.abort(reason);
  };
  const ahead = m.generate('Hello', { maxNewTokens: 400, stopTokens: [], onText }).then(() => settled.push('ahead'));
  await holding;
  const waiting = m.generate('Hello', { maxNewTokens: 400, signal: ctl.signal });
  const e = await rejectsAborted(t, waiting, reason);
  settled.push('waiting');
  t.regex(e.message, /stopped while it waited for another job on the model/);
  await ahead;
  // It waited 20 ms at a time; before, it left only when the 400 tokens ahead of it were done.
  t.deepEqual(settled, ['waiting', 'ahead']);
});
