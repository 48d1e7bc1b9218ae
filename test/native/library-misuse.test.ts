/**
 * Mistakes a plain-JavaScript caller makes (no TypeScript to catch them) are LepErrors naming the option,
 * not a crash, a silently ignored option or a wrong result. Each case here was found misbehaving.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { createModel, evaluate, LepError, LepModel, mistralTokenizerDir, packCorpus, propagate, setThreads, Tokenizer, trainModel } from '../../ts/index.js';
import { tempDir, tinyModel } from '../helpers.js';

const INDEX = new URL('../../ts/index.js', import.meta.url).href;

const badOption = (t: import('ava').ExecutionContext, e: Error | undefined, message: RegExp): void => {
  t.true(e instanceof LepError, String(e));
  t.is((e as LepError).code, 'LEP_BAD_OPTION', e?.message);
  t.regex(e!.message, message);
};

test('an onText that throws rejects generate with that error, and the job stops (it crashed the process)', async (t) => {
  const model = await LepModel.load(await tinyModel());
  t.teardown(() => model.dispose());
  const mine = new Error('my callback failed');
  let calls = 0;
  let steps = 0;
  const e = await t.throwsAsync(model.generate('Hello', { maxNewTokens: 40, stopTokens: [], onText: () => { calls++; throw mine; }, onTokens: () => void steps++ }));
  t.is(e, mine);
  t.is(calls, 1, 'onText is not called again after it threw');
  // The job stops at the next token after the throw is seen; a tiny model may finish all 40 first.
  t.true(steps <= 40, `${steps} steps`);
  // The model still works.
  t.is((await model.generate('Hello', { maxNewTokens: 2 })).tokens.length, 2);
  badOption(t, await t.throwsAsync(model.generate('Hello', { onText: 'print' as never })), /Expected a function for onText but received "print"/);
  badOption(t, await t.throwsAsync(async () => { for await (const _ of model.stream('Hello', { onText: () => {} } as never)) void _; }), /no onText with stream\(\)/);
});

test('score refuses a misspelt option; seeds past 2^32 - 1 are refused (libtorch kept their low 32 bits: 2^32 drew what 0 draws)', async (t) => {
  const dir = await tinyModel();
  const model = await LepModel.load(dir);
  t.teardown(() => model.dispose());
  badOption(t, await t.throwsAsync(model.score([[1, 2, 3]], { lastLogProbs: true } as never)), /only maxBatchTokens, lastLogprobs, signal, onProgress for score options but received "lastLogProbs"/);
  badOption(t, await t.throwsAsync(model.score([[1, 2, 3]], { lastLogprobs: 1 } as never)), /Expected a boolean for lastLogprobs but received 1/);
  badOption(t, await t.throwsAsync(model.generate('Hello', { seed: 2 ** 32, temperature: 1 })), /seed/);
  t.is((await model.generate('Hello', { seed: 2 ** 32 - 1, temperature: 1, maxNewTokens: 1 })).tokens.length, 1);
  badOption(t, await t.throwsAsync(createModel(`${tempDir()}/m`, { tokenizerDir: mistralTokenizerDir(), seed: 2 ** 40 })), /seed/);
});

test('Tokenizer: ids that are not integers in 0 .. 2^32 - 1 and misspelt options are refused (1.5 decoded as 1, 2^32 + 5 as 5)', async (t) => {
  const tok = Tokenizer.fromDir(mistralTokenizerDir());
  for (const id of [1.5, NaN, 2 ** 32 + 5, -1]) {
    const e = await t.throwsAsync(tok.decode([id]), { instanceOf: LepError });
    t.is(e!.code, 'LEP_BAD_TOKEN');
    t.regex(e!.message, new RegExp(`^ids\\[0\\]: token id ${String(id)} is not`));
  }
  t.is(await tok.decode([10 ** 9]), '', 'an id past the vocabulary decodes to nothing, as in Hugging Face tokenizers');
  badOption(t, await t.throwsAsync(tok.encode('x', { addSpecialToken: true } as never)), /"addSpecialToken" is not an option of encode/);
  badOption(t, await t.throwsAsync(tok.decode([5], { skipSpecial: true } as never)), /"skipSpecial" is not an option of decode/);
  badOption(t, await t.throwsAsync(tok.encode(5 as never)), /Expected a string for text but received 5$/);
  // NaN is named as NaN (JSON would print null).
  badOption(t, await t.throwsAsync(tok.encode('x', { addSpecialTokens: NaN } as never)), /received NaN$/);
});

test('thread counts past 1024 are refused (1e9 made libgomp abort the process); LEP_THREADS is the library\'s default too, and checked', (t) => {
  badOption(t, t.throws(() => setThreads(1e9)), /Expected an integer from 0 \(one per core\) to 1024 for threads \(--threads\) but received 1000000000/);
  const info = (threads: string) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', `const { lepInfo } = await import(${JSON.stringify(INDEX)}); try { console.log(lepInfo().blasThreads); } catch (e) { console.log(e.code, e.message); }`], { encoding: 'utf8', env: { ...process.env, LEP_THREADS: threads } }).stdout.trim();
  t.is(info('3'), '3', 'a library caller gets LEP_THREADS (it was read by the CLI only)');
  t.is(info('abc'), 'LEP_BAD_OPTION Expected an integer from 0 (one per core) to 1024 for LEP_THREADS but received "abc"');
});

test('training refuses blocks packed with another vocabulary (they trained without a word); the model\'s own pass', async (t) => {
  const llama3 = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
  const model = await tinyModel({ tokenizerDir: llama3, modelType: 'llama', vocabSize: 32000 });
  const corpus = join(tempDir(), 'corpus.txt');
  writeFileSync(corpus, 'The quick brown fox jumps over the lazy dog. '.repeat(200));
  const other = join(tempDir(), 'mistral.safetensors');
  await packCorpus(corpus, mistralTokenizerDir(), other, { seqLen: 16 });
  const e = await t.throwsAsync(trainModel(model, join(tempDir(), 'run'), { data: other, steps: 1 }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_VOCAB_MISMATCH', e!.message);
  t.regex(e!.message, /^--data \S+mistral\.safetensors was packed with another tokenizer than \S+'s \(vocabulary [0-9a-f]{16}, the model's [0-9a-f]{16}\)[^]*\nHINT: pack the corpus again with the model's tokenizer: lep data pack --tokenizer /);
  const own = join(tempDir(), 'own.safetensors');
  await packCorpus(corpus, model, own, { seqLen: 16 });
  t.is((await trainModel(model, join(tempDir(), 'run'), { data: own, steps: 1 })).stepsDone, 1);
});

test('wrong types from plain JavaScript are LepErrors naming the option, not TypeErrors from inside', async (t) => {
  const dir = await tinyModel();
  const model = await LepModel.load(dir);
  t.teardown(() => model.dispose());
  const cases: [string, () => unknown, RegExp][] = [
    ['stopTokens 5', () => model.generate('Hi', { stopTokens: 5 as never }), /for stopTokens but received 5/],
    ['signal {}', () => model.generate('Hi', { signal: {} as never }), /Expected an AbortSignal for signal/],
    ['onProgress 1', () => model.score([[1, 2]], { onProgress: 1 as never }), /Expected a function for onProgress/],
    ['onTokens 1', () => model.generateTokens([[1, 2]], { onTokens: 1 as never }), /Expected a function for onTokens/],
    ['prompt 5', () => model.generate(5 as never), /Expected a string for prompt but received 5/],
    ['null options', () => model.generate('Hi', null as never), /Expected an object for options but received null/],
    ['load 5', () => LepModel.load(5 as never), /Expected a path for model directory but received 5/],
    ['createModel null', () => createModel(join(tempDir(), 'm'), null as never), /Expected an object for options but received null/],
    ['createModel out 5', () => createModel(5 as never, { tokenizerDir: mistralTokenizerDir() }), /Expected a path for --out but received 5/],
    ['trainModel null', () => trainModel(dir, join(tempDir(), 'r'), null as never), /Expected an object for options/],
    ['evaluate tasks string', () => evaluate(model, 'task' as never), /Expected an array of task names or files for tasks \(--tasks\)/],
    ['evaluate dtype on a loaded model', () => evaluate(model, ['text:en'], { dtype: 'bf16' }), /no dtype with a loaded LepModel/],
    ['propagate null', () => propagate(null as never), /Expected an object for options but received null/],
  ];
  for (const [name, call, message] of cases) {
    const e = await t.throwsAsync(async () => call(), undefined, name);
    t.true(e instanceof LepError, `${name}: ${String(e)}`);
    t.regex(e?.message ?? '', message, name);
  }
  // An already aborted signal: trainModel makes no output directory.
  const out = join(tempDir(), 'never');
  const aborted = AbortSignal.abort(new Error('stop'));
  await t.throwsAsync(trainModel(dir, out, { data: join(dir, 'model.safetensors'), signal: aborted }), { instanceOf: LepError });
  t.false(existsSync(out));
});
