/**
 * Progress events as the C++ glue makes them (ts/binding/progress.ts): camelCase values, `done` of
 * `total`, discriminated by `phase`; the 0.1.0 names (`step`, snake_case) ride along for one release.
 */
import { join } from 'node:path';

import test from 'ava';

import type { JobProgress } from '../../ts/binding/progress.js';
import { LepModel } from '../../ts/model/LepModel.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { tempDir, tinyModel } from '../helpers.js';

const small = () => tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 });

test('train and eval events: camelCase values, done of total, and the 0.1.0 names as aliases', async (t) => {
  const dir = await small();
  const { blocks } = await packDocuments([['Привет, мир. Как дела? '.repeat(100)]], Tokenizer.fromDir(dir), { seqLen: 16 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const events: JobProgress[] = [];
  await trainModel(dir, join(tempDir(), 'run'), { data, evalData: data, evalEvery: 2, evalBatches: 1, steps: 2, batchSize: 2, lr: 1e-3, warmupSteps: 0, onProgress: (e) => events.push(e) });
  const train = events.filter((e) => e.phase === 'train');
  t.deepEqual(train.map((e) => [e.done, e.total]), [[1, 2], [2, 2]]);
  for (const e of train) {
    t.deepEqual(Object.keys(e).filter((k) => !k.includes('_')).sort(), ['allreduceBytes', 'allreduceEarlyBuckets', 'allreduceWaitS', 'done', 'gradNorm', 'loss', 'lr', 'phase', 'step', 'tokens', 'tokensPerS', 'total']);
    t.true(Number.isFinite(e.loss) && e.gradNorm > 0 && e.tokens > 0);
    t.is(e.step, e.done);
    t.is(e.grad_norm, e.gradNorm);
    t.is(e.tokens_per_s, e.tokensPerS);
  }
  const evals = events.filter((e) => e.phase === 'eval');
  t.deepEqual(evals.map((e) => e.done), [0, 2]);
  for (const e of evals) {
    t.true(e.evalLoss > 0);
    t.is(e.eval_loss, e.evalLoss);
  }
});

test('generate events carry the step\'s tokens and how many prompts are still active', async (t) => {
  const m = await LepModel.load(await small());
  const events: JobProgress[] = [];
  const [r] = await m.generateTokens([[1, 415, 2936]], { maxNewTokens: 4, stopTokens: [], onProgress: (e) => events.push(e) });
  t.deepEqual(events.map((e) => e.phase), ['generate', 'generate', 'generate', 'generate']);
  t.deepEqual(events.map((e) => (e.phase === 'generate' ? [e.done, e.total, e.active, e.tokens[0]] : [])), Array.from(r!.tokens, (tok, i) => [i + 1, 4, 1, tok]));
  m.dispose();
});
