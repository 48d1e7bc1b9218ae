import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { calibrate, LepError, lepInfo, LepModel } from '../../ts/index.js';
import { readAdapterConfig } from '../../ts/lora/index.js';
import { readStageRecord, stageInput } from '../../ts/stage/stageRecord.js';
import { corpora } from '../corpora.js';
import { smallFilesystem, tempDir } from '../helpers.js';

const TOY = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family');

test('self-calibration end to end: answers of the original model, filter, copy mixing, LoRA (self preset); a rerun reuses every answer', async (t) => {
  const files = await corpora();
  const corporaDir = join(files['ru.txt']!, '..');
  // The model to calibrate: a copy of the toy instruct model (any model with the chat template will do
  // for the mechanics; the effect on propagated models is measured by the main job, see README).
  const model = join(tempDir(), 'propagated');
  cpSync(join(TOY, 'instruct'), model, { recursive: true });
  const out = join(tempDir(), 'calibrated');
  const options = {
    mode: 'self' as const, original: join(TOY, 'instruct'), prompts: 10, corpora: corporaDir, maxNewTokens: 24,
    copyText: files['ru.txt']!, copyExamples: 10, seqLen: 128, train: { lr: 2e-3, batchSize: 4 },
  };
  const r = await calibrate(model, out, options);
  t.is(r.examples.generated, 10);
  t.is(r.examples.kept + Object.values(r.examples.rejected).reduce((a, b) => a + b, 0), 10, 'every answer kept or rejected by one rule');
  t.is(r.examples.copy, 10);
  t.true(r.blocks > 0);
  t.is(r.train.stepsDone, Math.ceil(r.blocks / 4), 'one epoch by default');
  t.deepEqual(readAdapterConfig(r.adapter), { rank: 8, alpha: 1, dropout: 0, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], layers: [0, 5], modulesToSave: ['embed_tokens', 'lm_head'] });
  const set = readFileSync(join(out, 'calibration-data', 'calibration.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { source: string; messages: { role: string }[] });
  t.is(set.filter((x) => x.source === 'copy').length, 10);
  t.true(set.every((x) => x.messages.at(-1)!.role === 'assistant'));
  const m = await LepModel.load(out);
  t.is(m.native.info().loraParameters, 0, 'the output is a plain (merged) model');
  m.dispose();

  const answers = join(out, 'calibration-data', 'answers.jsonl');
  const before = statSync(answers).mtimeMs;
  const again = await calibrate(model, out, options);
  t.is(statSync(answers).mtimeMs, before, 'no prompt answered twice');
  t.deepEqual(again.examples, r.examples);
});

test('instruction-tuning calibration reads a chat dataset; a line without an assistant turn is an error naming the line', async (t) => {
  const data = join(tempDir(), 'chat.jsonl');
  const line = (u: string, a?: string) => JSON.stringify({ messages: [{ role: 'user', content: u }, ...(a ? [{ role: 'assistant', content: a }] : [])] });
  writeFileSync(data, [line('Скопируй: один', 'один'), line('Скопируй: два', 'два'), line('Скопируй: три')].join('\n') + '\n');
  await t.throwsAsync(calibrate(join(TOY, 'instruct'), join(tempDir(), 'o'), { mode: 'data', data }), { message: /chat\.jsonl:3: .*assistant/ });
  writeFileSync(data, [line('Скопируй: один', 'один'), line('Скопируй: два', 'два')].join('\n') + '\n');
  const out = join(tempDir(), 'o');
  const r = await calibrate(join(TOY, 'instruct'), out, { mode: 'data', data, seqLen: 64, train: { steps: 2 }, lora: { rank: 4, layers: [5] } });
  t.is(r.examples.kept, 2);
  // The stage record replaces the training step's: the calibration's options as they ran (preset filled in), its inputs, its result.
  const record = readStageRecord(out, 'calibrate');
  t.like(record.resolved, { mode: 'data', data, seqLen: 64, copyExamples: 0, preset: 'sft', workDir: join(out, 'calibration-data'), filter: 'default' });
  // The sft preset's optimiser settings; its 10 warm-up steps at most a tenth of the 2 steps.
  t.like(record.resolved, { lora: { rank: 4, layers: [5], modulesToSave: ['lm_head'] }, train: { steps: 2, params: 'lora', batchSize: 8, lr: 5e-5, weightDecay: 0.05, warmupSteps: 0 } });
  t.deepEqual(record.inputs, [stageInput('model', join(TOY, 'instruct')), stageInput('data', data)]);
  t.deepEqual(record.result, JSON.parse(JSON.stringify(r)));
  t.is(readAdapterConfig(r.adapter).rank, 4);
  t.deepEqual(readAdapterConfig(r.adapter).modulesToSave, ['lm_head'], 'the sft preset trains lm_head');
  await t.throwsAsync(calibrate(join(TOY, 'instruct'), join(tempDir(), 'o'), { mode: 'self' }), { message: /original/ });
});

test('a merged model that cannot fit on --out\'s disk is refused before any answer is generated (it failed after them, when the training started)', async (t) => {
  const fs = await smallFilesystem(1 << 20);  // the toy instruct model is megabytes
  if (typeof fs === 'string') return t.fail(fs);
  t.teardown(fs.remove);
  const out = join(fs.dir, 'calibrated');
  const e = await t.throwsAsync(calibrate(join(TOY, 'instruct'), out, { mode: 'self', original: join(TOY, 'instruct'), prompts: 4, corpora: join((await corpora())['ru.txt']!, '..') }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_NO_SPACE', e!.message);
  t.regex(e!.message, /the final model \(/);
  t.false(existsSync(out), 'nothing written: no answers generated');
});

test('mode self answers on the training\'s device and dtype: a device this libtorch lacks fails before any answer (the answers ran on the CPU in float32 whatever the training asked)', async (t) => {
  if (lepInfo().cudaAvailable) return t.pass('this libtorch has CUDA: the answers would run there');
  const out = join(tempDir(), 'calibrated');
  const answered: number[] = [];
  const e = await t.throwsAsync(
    calibrate(join(TOY, 'instruct'), out, { mode: 'self', original: join(TOY, 'instruct'), prompts: 4, corpora: join((await corpora())['ru.txt']!, '..'), train: { device: 'cuda', dtype: 'bf16' }, onAnswers: (a) => answered.push(a.done) }),
    { instanceOf: LepError },
  );
  t.is(e!.code, 'LEP_NO_CUDA', e!.message);
  t.deepEqual(answered.filter((n) => n > 0), [], 'no answer generated');
});

test('a work folder at --out\'s top level (where training writes) is refused before any answer is generated', async (t) => {
  const out = join(tempDir(), 'calibrated');
  const e = await t.throwsAsync(calibrate(join(TOY, 'instruct'), out, { mode: 'self', original: join(TOY, 'instruct'), prompts: 4, corpora: join((await corpora())['ru.txt']!, '..'), workDir: out }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_OUTPUT_OVER_INPUT', e!.message);
  t.regex(e!.message, /contains the input --work /);
  t.false(existsSync(join(out, 'answers.jsonl')), 'no answers generated');
});

test('a calibration set with no example left is an error that names the way out, and no model is written', async (t) => {
  const out = join(tempDir(), 'calibrated');
  // A filter no answer passes (2 prompts, answers of at most 4 tokens, none a billion characters long).
  const e = await t.throwsAsync(calibrate(join(TOY, 'instruct'), out, { mode: 'self', original: join(TOY, 'instruct'), prompts: 2, maxNewTokens: 4, corpora: join((await corpora())['ru.txt']!, '..'), filter: { length: { min: 1e9 } } }), { instanceOf: LepError });
  t.is(e!.code, 'LEP_CORPUS_EMPTY', e!.message);
  t.regex(e!.message, /HINT: add copy examples \(--copy-examples N with --copy-text FILE; copyExamples with copyText in a recipe or the API\)/);
  t.false(existsSync(join(out, 'model.safetensors')));
});
