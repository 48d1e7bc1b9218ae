/**
 * The evaluation harness on a tiny random model: the three scoring methods run, results are
 * deterministic, generation without a stop is bounded, a missing chat template is a clear error (or the
 * plain format when asked), malformed task lines fail with their line number or are skipped when asked.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

import test from 'ava';

import { evalRecordFile, evaluate } from '../../ts/eval/evaluate.js';
import { readStageRecord, stageInput } from '../../ts/stage/stageRecord.js';
import { LepModel } from '../../ts/index.js';
import { TOY_CHAT_TEMPLATE } from '../../ts/train/instructData.js';
import { LEP_CLI, tempDir, tinyModel } from '../helpers.js';

const dir = tempDir();
const user = (content: string) => [{ role: 'user', content }];

function writeTasks(): string[] {
  const copy = [
    JSON.stringify({ task: { name: 'copy', group: 'Copy', metric: 'copy_sentence', maxNewTokens: 12, stop: ['\n\n'] } }),
    ...['The cat sat on the mat.', 'Кошка сидела на коврике.', 'Open the file menu.'].map((s, i) => JSON.stringify({ id: `c${i}`, messages: user(`Copy this text exactly:\n\n${s}`), gold: s })),
  ];
  const choice = [
    JSON.stringify({ task: { name: 'pick', group: 'Choice', metric: 'choice', choices: ['A', 'B'], bothOrders: true } }),
    ...['cat', 'dog', 'file'].map((w, i) => JSON.stringify({ id: `p${i}`, messages: user(`Which is "${w}"?\nA. {choice1}\nB. {choice2}`), inputs: { choice1: w, choice2: 'x' }, gold: 'A' })),
  ];
  const ext = [
    JSON.stringify({ task: { name: 'ext', group: 'Sum', metric: 'r_precision' } }),
    JSON.stringify({ id: 'e0', messages: user('Which sentence matters?'), candidates: ['The cat sat.', 'It rained all day long.', 'Files open.'], gold: [0] }),
  ];
  const files = [['copy', copy], ['pick', choice], ['ext', ext]] as const;
  return files.map(([n, lines]) => {
    const f = join(dir, `${n}.jsonl`);
    writeFileSync(f, lines.join('\n') + '\n');
    return f;
  });
}

async function chatModel(options: Parameters<typeof tinyModel>[0] = {}): Promise<string> {
  const m = await tinyModel(options);
  const cfgFile = join(m, 'tokenizer_config.json');
  writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), chat_template: TOY_CHAT_TEMPLATE }));
  return m;
}

test('three scoring methods, deterministic: the same run twice gives the same results', async (t) => {
  const files = writeTasks();
  const model = await LepModel.load(await chatModel());
  try {
    const a = await evaluate(model, files, { batchSize: 2 });
    const b = await evaluate(model, files, { batchSize: 2 });
    t.deepEqual(a.tasks, b.tasks);
    t.deepEqual(a.tasks.map((x) => x.name), ['copy', 'pick', 'ext']);
    t.deepEqual(a.tasks.map((x) => x.items), [3, 3, 1]);
    const pick = a.tasks[1]!;
    t.true(pick.records.every((r) => r.pred !== undefined && r.predReversed !== undefined && r.goldReversed === 'B'));
    // Micro-Avg = mean of the three task scores (three groups of one).
    t.true(Math.abs(a.summary.microAvg - a.tasks.reduce((s, x) => s + x.score, 0) / 3) < 1e-12);
  } finally {
    model.dispose();
  }
});

test('a generation that never stops is bounded by max tokens', async (t) => {
  const [copy] = writeTasks();
  const r = await evaluate(await chatModel(), [copy!], {});
  const task = r.tasks[0]!;
  // A random model does not emit EOS or "\n\n" within 12 tokens here: all bounded by maxNewTokens.
  t.is(task.unstopped, 3);
  for (const rec of task.records) t.true(rec.values.pred_tokens! <= 12 && rec.values.pred_tokens! > 0, JSON.stringify(rec.values));
});

test('prompts longer than the context are cut in the middle, counted per task, and every task kind still runs', async (t) => {
  // A 64-position model and items of ~200 tokens: before, score/generate refused with LEP_SEQUENCE_TOO_LONG.
  const long = 'The quick brown fox jumps over the lazy dog. '.repeat(20);
  const copy = [
    JSON.stringify({ task: { name: 'copy', group: 'Copy', metric: 'copy_sentence', maxNewTokens: 12 } }),
    JSON.stringify({ id: 'c0', messages: user(`Copy this text exactly:\n\n${long}`), gold: 'x' }),
    JSON.stringify({ id: 'c1', messages: user('Copy: short.'), gold: 'short.' }),
  ];
  const pick = [
    JSON.stringify({ task: { name: 'pick', group: 'Choice', metric: 'choice', choices: ['A', 'B'] } }),
    JSON.stringify({ id: 'p0', messages: user(`${long}\nA. {choice1}\nB. {choice2}`), inputs: { choice1: 'fox', choice2: 'dog' }, gold: 'A' }),
  ];
  const ext = [
    JSON.stringify({ task: { name: 'ext', group: 'Sum', metric: 'r_precision' } }),
    JSON.stringify({ id: 'e0', messages: user(long), candidates: ['The fox.', 'A dog.'], gold: [0] }),
  ];
  const files = ([['copy', copy], ['pick', pick], ['ext', ext]] as const).map(([n, lines]) => {
    const f = join(dir, `long-${n}.jsonl`);
    writeFileSync(f, lines.join('\n') + '\n');
    return f;
  });
  const model = await LepModel.load(await chatModel({ maxPositionEmbeddings: 64 }));
  try {
    const r = await evaluate(model, files, { batchSize: 2 });
    t.deepEqual(r.tasks.map((x) => [x.name, x.items, x.truncated]), [['copy', 2, 1], ['pick', 1, 1], ['ext', 1, 2]]);
    for (const x of r.tasks) t.true(Number.isFinite(x.score), `${x.name}: ${x.score}`);
  } finally {
    model.dispose();
  }
});

test('no chat template: a clear error, or the plain few-shot format when asked', async (t) => {
  const files = writeTasks();
  const plainModel = await tinyModel();
  const e = await t.throwsAsync(evaluate(plainModel, files, {}), { message: /no chat_template/ });
  t.is((e as { code?: string }).code, 'LEP_NO_CHAT_TEMPLATE');
  t.regex(e!.message, /HINT: .*--format plain/);
  const r = await evaluate(plainModel, files, { format: 'plain', limit: 1 });
  t.deepEqual(r.tasks.map((x) => x.items), [1, 1, 1]);
});

test('a malformed task line: error with its line number before the model loads; skipped when asked', async (t) => {
  const f = join(dir, 'bad.jsonl');
  writeFileSync(f, [JSON.stringify({ task: { metric: 'qa', maxNewTokens: 4 } }), JSON.stringify({ messages: user('q'), gold: 'a' }), '{oops', JSON.stringify({ messages: user('q2'), gold: 'b' })].join('\n'));
  await t.throwsAsync(evaluate(join(dir, 'no-such-model'), [f], {}), { message: /bad\.jsonl:3: not valid JSON/ });
  const r = await evaluate(await chatModel(), [f], { skipBadLines: true });
  t.is(r.tasks[0]!.items, 2);
  t.deepEqual(r.tasks[0]!.badLines.map((b) => b.line), [3]);
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('lep eval CLI writes results and its stage record, and --compare prints per-task differences', async (t) => {
  const files = writeTasks();
  const model = await chatModel();
  const out = join(dir, 'a.json');
  const r1 = spawnSync('node', [LEP_CLI, 'eval', model, '--tasks', files.join(','), '--out', out], { encoding: 'utf8' });
  t.is(r1.status, 0, r1.stderr);
  t.regex(r1.stdout, /Micro-Avg/);
  // The stage record beside the results: the options as they ran, the model and task files, the scores.
  const results = JSON.parse(readFileSync(out, 'utf8'));
  const record = readStageRecord(evalRecordFile(out), 'eval');
  t.is(evalRecordFile(out), `${out}.lep-stage`);
  t.like(record.resolved, { tasks: files, format: 'chat', shots: 5, batchSize: 16, rouge: 'recall', skipBadLines: false, device: 'cpu', dtype: 'f32' });
  t.deepEqual(record.inputs, [stageInput('model', model), ...files.map((f, i) => stageInput(`task:${['copy', 'pick', 'ext'][i]}`, f))]);
  t.like(record.result, { resultsFile: out, summary: results.summary });
  t.deepEqual((record.result as { tasks: { name: string; score: number }[] }).tasks.map((x) => [x.name, x.score]), results.tasks.map((x: { name: string; score: number }) => [x.name, x.score]));
  const r2 = spawnSync('node', [LEP_CLI, 'eval', '--compare', out, out], { encoding: 'utf8' });
  t.is(r2.status, 0, r2.stderr);
  t.regex(r2.stdout, /^copy\s+\S+\s+\S+\s+\+0\.000 .* 1\.000$/m);
});
