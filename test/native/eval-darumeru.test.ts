/**
 * Converted Darumeru sets run through the harness on the toy instruct model
 * (test/fixtures/toy-family/instruct): the converter's output loads and evaluates, MMLU is scored per
 * subject → category, USE by exam grade, PARus in both orders; and the CLI subcommand converts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { convertDarumeru } from '../../ts/eval/convertDarumeru.js';
import { evaluate } from '../../ts/eval/evaluate.js';
import { subjectCategoryAccuracy } from '../../ts/eval/metrics/subjectAccuracy.js';
import { useGradeNorm } from '../../ts/eval/metrics/useGrade.js';
import { LepModel } from '../../ts/index.js';
import { LEP_CLI, tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'darumeru');
const INSTRUCT = join(ROOT, 'test', 'fixtures', 'toy-family', 'instruct');
const dir = tempDir();

test('converted sets evaluate on the toy instruct model (chat zero-shot and plain few-shot)', async (t) => {
  const out = join(dir, 'tasks');
  const report = convertDarumeru(FIXTURES, out, { sets: ['rummlu', 'mmlu_nlpcoreteam', 'parus', 'use', 'cp_sent_ru', 'daru_treeway_eval'] });
  const file = (name: string) => report.tasks.find((x) => x.name === name)!.file;
  const model = await LepModel.load(INSTRUCT);
  try {
    const r = await evaluate(model, ['rummlu', 'parus', 'use', 'cp_sent_ru', 'sum_extractive'].map(file), { batchSize: 4 });
    const task = (n: string) => r.tasks.find((x) => x.name === n)!;
    t.deepEqual(r.tasks.map((x) => x.items), [5, 3, 3, 2, 1]);
    // MMLU: the score is the per-subject → per-category accuracy of the very records it reports.
    const mm = task('rummlu');
    t.deepEqual(mm.records.map((x) => x.category), ['STEM', 'other', 'other', 'humanities', 'russian_history']);
    const outcomes = mm.records.map((x) => ({ subject: x.subject!, category: x.category!, correct: x.gold === x.pred }));
    t.is(mm.score, subjectCategoryAccuracy(outcomes));
    t.is(mm.metrics.acc_items, outcomes.filter((o) => o.correct).length / 5);
    t.is(mm.spec.aggregate, 'subjects');
    // The toy's Mistral tokenizer writes " 1" as "▁" + "1": PARus's labels share their first token, and
    // are told apart at the second (scoreChoices); before that, digit labels could not be scored.
    const tok = model.tokenizer!;
    const [bare, spaced] = [await tok.encode('Ответ:'), await tok.encode('Ответ: 1')];
    t.is(spaced.length - bare.length, 2);
    // PARus: every item scored with the options in both orders.
    t.true(task('parus').records.every((x) => x.predReversed !== undefined && x.goldReversed === (x.gold === '1' ? '2' : '1')));
    // USE: the grade of the generated answers, by variant.
    const use = task('use');
    t.deepEqual(use.records.map((x) => x.values.variant), [25, 25, 3]);
    t.is(use.score, useGradeNorm(use.records.map((x) => ({ points: x.values.points!, variant: x.values.variant! }))));
    t.true(task('cp_sent_ru').records.every((x) => typeof x.prediction === 'string'));
    // Two of the paper's groups here: Micro-Avg is the mean over the five tasks.
    t.true(Math.abs(r.summary.microAvg - r.tasks.reduce((s, x) => s + x.score, 0) / 5) < 1e-12);
    // The base-model format: MMLU items follow their subject's dev shots.
    const plain = await evaluate(model, [file('mmlu_en')], { format: 'plain', shots: 5 });
    t.is(plain.tasks[0]!.items, 3);
    t.deepEqual(plain.tasks[0]!.records.map((x) => x.category), ['STEM', 'STEM', 'other']);
  } finally {
    model.dispose();
  }
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('lep eval convert-darumeru: converts a directory; a malformed file fails with its line', (t) => {
  const out = join(dir, 'cli');
  const r = spawnSync('node', [LEP_CLI, 'eval', 'convert-darumeru', FIXTURES, '--out', out, '--sets', 'parus,rcb'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /parus\.jsonl {2}DaruMERA {2}3 items, 1 shots/);
  t.true(existsSync(join(out, 'rcb.jsonl')) && existsSync(join(out, 'darumeru-manifest.json')));
  const bad = spawnSync('node', [LEP_CLI, 'eval', 'convert-darumeru', join(FIXTURES, 'data', 'rcb', 'test.jsonl'), '--set', 'parus', '--out', join(dir, 'bad')], { encoding: 'utf8' });
  t.not(bad.status, 0);
  t.regex(bad.stderr, /rcb\/test\.jsonl:1: inputs needs choice1 and choice2|rcb\/test\.jsonl:1: outputs must be one of/);
  const help = spawnSync('node', [LEP_CLI, 'eval', 'convert-darumeru', '--help'], { encoding: 'utf8' });
  t.regex(help.stdout, /lep eval convert-darumeru IN --out DIR/);
});
