// The one stage contract (ts/stage/stages.ts): every stage driven the same way, resolve then
// run(inputs, outDir, resolved, { signal, onProgress, tags }), on a tiny base/instruct pair and Russian
// Debian text: tokenizer -> extend and shrink -> init -> train -> propagate -> calibrate. Each writes its
// record with the tags, reports the one progress event, and resolve checks options against the stage's
// spec without its input keys.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { LepError, stages, type Stage, type StageContext } from '../../ts/index.js';
import { packCorpus } from '../../ts/train/index.js';
import { readStageRecord } from '../../ts/stage/stageRecord.js';
import type { StageProgress } from '../../ts/stage/stageProgress.js';
import { TRAIN_SPEC } from '../../ts/train/trainOptions.js';
import { TOY_CHAT_TEMPLATE } from '../../ts/train/instructData.js';
import { corpora } from '../corpora.js';
import { tempDir, tinyModel } from '../helpers.js';

test('every stage runs under one contract: resolve, then run(inputs, outDir, resolved, context), its record tagged, one progress shape', async (t) => {
  const files = await corpora();
  const ru = files['ru.txt']!;
  const base = await tinyModel({ modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 4, maxPositionEmbeddings: 128, embedStd: 0.02, chatTemplate: TOY_CHAT_TEMPLATE });
  const dir = tempDir();
  const events: StageProgress[] = [];
  const context = (job: string): StageContext => ({ tags: { job }, onProgress: (e) => events.push(e) });
  // Drives any stage the same way: what a pipeline runner would write once.
  async function step<I, O, R>(stage: Stage<I, O, R>, inputs: I, options: O, out: string): Promise<R> {
    const resolved = stage.resolve(options);
    const r = await stage.run(inputs, join(dir, out), resolved, context(out));
    const record = readStageRecord(join(dir, out), stage.name);
    t.deepEqual(record.tags, { job: out }, `${stage.name}: the tags in its record`);
    t.true(events.some((e) => e.stage === stage.name), `${stage.name}: progress events`);
    return r;
  }

  await step(stages.tokenizer, { corpus: ru }, { vocabSize: 1200, corpus: { maxChars: 200_000 } }, 'donor');
  const ext = await step(stages.extend, { original: base, donor: join(dir, 'donor') }, {}, 'extended');
  t.true(ext.stats.newTokens > 0);
  const shr = await step(stages.shrink, { original: base, corpus: ru, donor: join(dir, 'donor') }, { keep: 8000, read: { maxChars: 100_000 } }, 'optimized');
  t.true(shr.size < ext.stats.size, 'shrunk, then extended: smaller than Extended');
  const initResult = await step(stages.init, { model: base, tokenizer: join(dir, 'extended') }, { rule: 'mean' }, 'init');
  t.is(initResult.newSize, ext.stats.size);
  const data = join(dir, 'train.safetensors');
  await packCorpus(ru, join(dir, 'init'), data, { seqLen: 64, maxChars: 100_000 });
  const trained = await step(stages.train, { model: join(dir, 'init'), data }, { params: 'embeddings', steps: 3, batchSize: 4, lr: 1e-3, warmupSteps: 1 }, 'train');
  t.is(trained.stepsDone, 3);
  const prop = await step(stages.propagate, { base, donor: join(dir, 'train'), instruct: base }, { method: 'conversion' }, 'propagated');
  t.true('sides' in prop && prop.sides.length === 2);
  t.is('outDir' in prop && prop.outDir, join(dir, 'propagated'), 'results name their output outDir, as every stage');
  const chat = join(dir, 'chat.jsonl');
  const line = (u: string, a: string) => JSON.stringify({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });
  writeFileSync(chat, [line('Скопируй: один', 'один'), line('Скопируй: два', 'два')].join('\n') + '\n');
  const cal = await step(stages.calibrate, { model: join(dir, 'propagated'), data: chat }, { mode: 'data', seqLen: 64, train: { steps: 2 }, lora: { rank: 2, layers: [1] } }, 'calibrated');
  t.is(cal.examples.kept, 2);
  t.is(cal.outDir, join(dir, 'calibrated'));
  t.is(trained.outDir, join(dir, 'train'));

  // One event shape across stages: counts, and an ETA where the phase's total is known.
  t.deepEqual([...new Set(events.map((e) => e.stage))], ['tokenizer', 'extend', 'shrink', 'init', 'train', 'propagate', 'calibrate']);
  t.true(events.every((e) => typeof e.phase === 'string' && Number.isFinite(e.done) && Number.isFinite(e.total)));
  const steps = events.filter((e) => e.stage === 'train' && e.phase === 'train');
  t.deepEqual(steps.map((e) => [e.done, e.total]), [[1, 3], [2, 3], [3, 3]]);
  t.is(steps.at(-1)!.etaSeconds, 0);
  t.regex(steps[0]!.detail!, /^step 1\/3 loss \d+\.\d{3}$/);

  // resolve: the spec's defaults, the spec's errors (naming the flag), and input keys are inputs, not options.
  t.is(stages.train.resolve({}).steps, TRAIN_SPEC.steps.default);
  const bad = t.throws(() => stages.train.resolve({ lr: -1 }), { instanceOf: LepError });
  t.is(bad.code, 'LEP_BAD_OPTION');
  t.regex(bad.message, /--lr/);
  t.throws(() => stages.train.resolve({ data } as never), { instanceOf: LepError, message: /data/ });
  // An aborted run rejects with LEP_ABORTED and writes nothing.
  const ac = new AbortController();
  ac.abort();
  await t.throwsAsync(stages.extend.run({ original: base, donor: join(dir, 'donor') }, join(dir, 'never'), {}, { signal: ac.signal }), { instanceOf: LepError, message: /aborted/ });
});
