/**
 * The abort rule (ts/binding/runJob.ts) for every kind of native job: an AbortSignal aborted while the
 * job runs (from its first progress event) rejects with LEP_ABORTED whose cause is the signal's reason,
 * whether the native side stopped with an error of its own (score, gguf, init) or finished with a partial
 * result (generate, train).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { exportGguf } from '../../ts/checkpoint/gguf.js';
import { saveModelDir } from '../../ts/checkpoint/saveModelDir.js';
import { mistralTokenizerDir } from '../../ts/data/builtinTokenizers.js';
import { initEmbeddings } from '../../ts/init/initEmbeddings.js';
import { createModel } from '../../ts/model/createModel.js';
import { runJob } from '../../ts/binding/runJob.js';
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

/** The small model and packed blocks of its own tokenizer to train it on. */
async function smallWithBlocks(): Promise<{ dir: string; data: string }> {
  const dir = await small();
  const { blocks } = await packDocuments([['Привет, мир. '.repeat(200)]], Tokenizer.fromDir(dir), { seqLen: 16 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  return { dir, data };
}

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
  const { dir, data } = await smallWithBlocks();
  const reason = new Error('stop training');
  // Far more steps than run before the abort lands: it reaches the job only when the JS thread, shared
  // with this file's other tests, handles the first progress event, and the job trains on meanwhile; a
  // job that finished first would reject with the runner's generic message, not the one checked here.
  const e = await rejectsAborted(t, trainModel(dir, join(tempDir(), 'run'), { data, steps: 5000, batchSize: 2, lr: 1e-3, warmupSteps: 0, ...abortOnFirstEvent(reason) }), reason);
  t.regex(e.message, /^training stopped at step \d+ of 5000; checkpoint \S+\nHINT: run again \(the same command or call\) to resume from it\.$/);
});

test('train: an abort between reported steps stops at the next step, not the next reported one', async (t) => {
  const { dir, data } = await smallWithBlocks();
  const reason = new Error('stop training');
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // The first event is the evaluation before step 1; the next report would come at the last step, which
  // is where the stop landed before the trainer looked at the stop flag every step. The abort comes a
  // second after that first event, when training is some steps in (milliseconds a step): an abort at the
  // event itself raced step 1 and on a loaded machine (CI W) landed before it, which says nothing here.
  const onProgress = () => void (timer ??= setTimeout(() => ctl.abort(reason), 1000));
  const e = await rejectsAborted(t, trainModel(dir, join(tempDir(), 'run'), { data, evalData: data, steps: 5000, reportEvery: 5000, batchSize: 2, lr: 1e-3, warmupSteps: 0, signal: ctl.signal, onProgress }), reason);
  const step = Number(/^training stopped at step (\d+) of 5000/.exec(e.message)?.[1]);
  t.true(step >= 1 && step < 5000, e.message);
  t.log(`stopped at step ${step}`);
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

test.serial('a call waiting for another on the same model stops at once when aborted, not when the call ahead ends', async (t) => {
  const m = await LepModel.load(join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct'));
  t.teardown(() => m.dispose());
  const settled: string[] = [];
  const reason = new Error('client gone');
  // Queued in LepModel behind the first generation once that one runs (its first token; no native job
  // for the waiting one yet), and aborted at the first one's tenth token. Token ids, not text: generate()
  // decodes after its job on the tokenizer's threads, so a busy machine could settle a later, shorter
  // call first though the jobs ran in order (CI S, 2026-12-07).
  const ctl = new AbortController();
  let steps = 0;
  let running!: () => void;
  const started = new Promise<void>((r) => (running = r));
  const onTokens = (): void => {
    if (++steps === 1) running();
    if (steps === 10) ctl.abort(reason);
  };
  const hello = [1, 15043];
  const ahead = m.generateTokens([hello], { maxNewTokens: 400, stopTokens: [], onTokens }).then(() => settled.push('ahead'));
  await started;
  const waiting = m.generateTokens([hello], { maxNewTokens: 400, signal: ctl.signal });
  await rejectsAborted(t, waiting, reason);
  settled.push('waiting');
  // The next call still waits for the one ahead: the queue's order holds when a call leaves it.
  const after = m.generateTokens([hello], { maxNewTokens: 4 }).then(() => settled.push('after'));
  await Promise.all([ahead, after]);
  t.deepEqual(settled, ['waiting', 'ahead', 'after']);

  // The same on the native side, which other callers (training, saving) share: a native job waiting for
  // the model's lock leaves at once when aborted (it left when the job ahead ended).
  const GREEDY_400 = { maxNewTokens: 400, temperature: 0, topK: 0, topP: 1, repetitionPenalty: 1, stopTokens: [], seed: 0 };
  let holding!: () => void;
  const holds = new Promise<void>((r) => (holding = r));
  const first = runJob((p) => m.native.generate([[1, 15043]], GREEDY_400, p), { onProgress: () => holding() });
  await holds;  // the first job holds the model: the second waits for it
  const ctl2 = new AbortController();
  const second = runJob((p) => m.native.generate([[1, 15043]], GREEDY_400, p), { signal: ctl2.signal });
  setTimeout(() => ctl2.abort(reason), 20);
  const order: string[] = [];
  const e = await rejectsAborted(t, second.finally(() => order.push('second')), reason);
  await first.then(() => order.push('first'));
  t.regex(e.message, /stopped while it waited for another job on the model/);
  t.deepEqual(order, ['second', 'first']);
});

test.serial('calls waiting for a model hold no thread: 40 overlapping generations add at most a few', async (t) => {
  const m = await LepModel.load(join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct'));
  t.teardown(() => m.dispose());
  const threads = (): number => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  const before = threads();
  let most = before;
  const calls = Array.from({ length: 40 }, () => m.generate('Hello', { maxNewTokens: 8, onText: () => void (most = Math.max(most, threads())) }));
  most = Math.max(most, threads());
  const texts = (await Promise.all(calls)).map((r) => r.text);
  // Each native job has a thread: 40 waiting generations held 40 (12 -> 52 here) before they queued in LepModel.
  t.true(most - before <= 4, `threads ${before} -> ${most}`);
  t.true(texts.every((x) => x === texts[0]), 'greedy: the same text each time');
});
