/**
 * Darumeru's two aggregations the plain mean does not give: MMLU accuracy per subject → category →
 * mean, and the USE exam grade (points per variant / 34, mean over variants). Hand-computed values.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { subjectCategoryAccuracy } from '../../ts/eval/metrics/subjectAccuracy.js';
import { USE_MAX_GRADE, useGradeNorm, useTaskPoints } from '../../ts/eval/metrics/useGrade.js';
import { mmluCategory, MMLU_CATEGORIES, MMLU_SUBJECTS_RU } from '../../ts/eval/mmluSubjects.js';
import { readTaskFile } from '../../ts/eval/taskFile.js';
import { aggregate, type ItemRecord } from '../../ts/eval/taskScores.js';
import { tempDir } from '../helpers.js';

const close = (a: number, b: number) => Math.abs(a - b) < 1e-12;

// Subject a (category X): 3 of 3 right; b (X): 0 of 1; c (Y): 1 of 4. Plain accuracy 4/8 = 0.5;
// per category X = (1 + 0) / 2 = 0.5, Y = 0.25; mean over categories 0.375.
const outcomes = [
  ...[true, true, true].map((correct) => ({ subject: 'a', category: 'X', correct })),
  { subject: 'b', category: 'X', correct: false },
  ...[true, false, false, false].map((correct) => ({ subject: 'c', category: 'Y', correct })),
];

test('MMLU accuracy: per subject, then category, then mean (unequal subject sizes)', (t) => {
  t.true(close(subjectCategoryAccuracy(outcomes), 0.375));
  // Each subject its own category: mean of subject accuracies (1 + 0 + 0.25) / 3.
  t.true(close(subjectCategoryAccuracy(outcomes.map((o) => ({ ...o, category: o.subject }))), 1.25 / 3));
  t.throws(() => subjectCategoryAccuracy([...outcomes, { subject: 'a', category: 'Y', correct: true }]), { message: /subject a is in two categories: X and Y/ });
});

test('choice task score with aggregate "subjects" vs items; bootstrap-ready records', (t) => {
  const records: ItemRecord[] = outcomes.map((o, i) => ({ id: String(i), gold: 'A', pred: o.correct ? 'A' : 'B', subject: o.subject, category: o.category, values: {} }));
  const bySubject = aggregate({ metric: 'choice', choiceScore: 'acc', aggregate: 'subjects' }, records);
  t.true(close(bySubject.score, 0.375));
  t.true(close(bySubject.metrics.acc_items!, 0.5));
  const byItems = aggregate({ metric: 'choice', choiceScore: 'acc' }, records);
  t.true(close(byItems.score, 0.5));
  t.is(byItems.metrics.acc_items, undefined);
});

test('the 57 MMLU subjects, four categories, a Russian name for each', (t) => {
  const all = Object.values(MMLU_CATEGORIES).flat();
  t.is(all.length, 57);
  t.is(new Set(all).size, 57);
  t.deepEqual(Object.keys(MMLU_SUBJECTS_RU).sort(), [...all].sort());
  t.is(mmluCategory('college_physics'), 'STEM');
  t.is(mmluCategory('jurisprudence'), 'humanities');
  t.is(mmluCategory('sociology'), 'social sciences');
  t.is(mmluCategory('virology'), 'other');
  t.is(mmluCategory('russian_history'), undefined);
});

test('task files: subject and category from the item, the header map, or the subject itself', (t) => {
  const f = join(tempDir(), 'mmlu.jsonl');
  const q = (subject: string, extra = {}) => JSON.stringify({ messages: [{ role: 'user', content: 'q' }], gold: 'A', subject, ...extra });
  const header = { task: { name: 'mmlu', metric: 'choice', choices: ['A', 'B'], aggregate: 'subjects', categories: { anatomy: 'other' } } };
  writeFileSync(f, [JSON.stringify(header), q('anatomy'), q('astronomy', { category: 'STEM' }), q('local_history')].join('\n'));
  t.deepEqual(readTaskFile(f).items.map((i) => i.category), ['other', 'STEM', 'local_history']);
  writeFileSync(f, [JSON.stringify(header), JSON.stringify({ messages: [{ role: 'user', content: 'q' }], gold: 'A' })].join('\n'));
  t.throws(() => readTaskFile(f), { message: /mmlu\.jsonl:2: task\.aggregate "subjects" needs a subject on every item/ });
  writeFileSync(f, [JSON.stringify({ task: { metric: 'qa', aggregate: 'subjects' } }), q('x')].join('\n'));
  t.throws(() => readTaskFile(f), { message: /mmlu\.jsonl:1: task\.aggregate "subjects" needs a choice task/ });
  writeFileSync(f, [JSON.stringify({ task: { ...header.task, aggregate: 'topics' } }), q('x')].join('\n'));
  t.throws(() => readTaskFile(f), { message: /task\.aggregate must be one of items, subjects/ });
});

test('USE points by task type (hand values)', (t) => {
  const mc = 'multiple_choice_independent_options';
  // [type, task number, answer, prediction, points]
  const cases: [string, string, string, string, number][] = [
    // text: digits and punctuation dropped, lower-cased, one of the comma-separated answers.
    ['text', '6', 'холодный', 'Холодный.', 1],
    ['text', '2', 'поэтому,потому', ' Потому ', 1],
    ['text', '6', 'холодный', 'холодный мороз', 0],
    // matching: one point per position, nothing when the counts differ.
    ['matching', '26', '4,9,2,8', '4, 9, 3, 8', 3],
    ['matching', '26', '4,9,2,8', '4,9,2', 0],
    // multiple choice: the same set of numbers.
    ['multiple_choice_options_within_text', '15', '2,3', '3, 2', 1],
    ['multiple_choice_options_within_text', '15', '2,3', '2', 0],
    ['multiple_choice_based_on_text', '3', '2', '2,4', 0],
    // task 16: |ans ∩ pred| − |pred| + |ans|, at least 0 (a short prediction is padded with "-1").
    [mc, '16', '1,3', '1,3', 2],
    [mc, '16', '1,3', '1', 1],
    [mc, '16', '1,3', '1,2,3', 1],
    [mc, '16', '1,3', '2,4,5', 0],
  ];
  for (const [type, id, answer, prediction, points] of cases) t.is(useTaskPoints(type, id, answer, prediction), points, `${type} ${id} ${answer} ← ${prediction}`);
});

test('USE grade: points summed per variant / 34, mean over variants', (t) => {
  t.is(USE_MAX_GRADE, 34);
  const items = [{ points: 2, variant: 1 }, { points: 1, variant: 1 }, { points: 4, variant: 2 }];
  t.true(close(useGradeNorm(items), (3 / 34 + 4 / 34) / 2));
  const records: ItemRecord[] = items.map((v, i) => ({ id: String(i), values: v }));
  const r = aggregate({ metric: 'use_grade' }, records);
  t.true(close(r.score, 3.5 / 34));
  t.true(close(r.metrics.points!, 7 / 3));
});

test('a USE task file needs meta {type, id_task, variant} on each item', (t) => {
  const f = join(tempDir(), 'use.jsonl');
  const item = (meta: unknown) => JSON.stringify({ messages: [{ role: 'user', content: 'q' }], gold: '2,3', meta });
  writeFileSync(f, [JSON.stringify({ task: { metric: 'use_grade' } }), item({ type: 'text', id_task: '6', variant: 25 }), item({ type: 'text', id_task: '6' })].join('\n'));
  t.throws(() => readTaskFile(f), { message: /use\.jsonl:3: meta\.variant must be the exam variant/ });
  t.deepEqual(readTaskFile(f, { skipBadLines: true }).items[0]!.meta, { type: 'text', id_task: '6', variant: 25 });
});
