/**
 * Mistakes a plain-JavaScript caller makes (no TypeScript to catch them) are LepErrors naming the option,
 * not a crash, a silently ignored option or a wrong result. Each case here was found misbehaving.
 */
import test from 'ava';

import { createModel, LepError, LepModel, mistralTokenizerDir, Tokenizer } from '../../ts/index.js';
import { tempDir, tinyModel } from '../helpers.js';

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
  t.true(steps < 40, `the job stopped early (${steps} steps)`);
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
