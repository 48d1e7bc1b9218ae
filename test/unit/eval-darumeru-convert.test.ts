/**
 * lep eval convert-darumeru on hand-written records in the real sets' formats
 * (test/fixtures/darumeru/README.md): every output loads as a task file, prompts are filled the way
 * Python's str.format fills them, shots lose the answer lep appends itself, subjects get MMLU
 * categories, and malformed input fails with its file and line before anything is written.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { convertDarumeru, DARUMERU_SETS } from '../../ts/eval/convertDarumeru.js';
import { DARUMERU_GROUPS } from '../../ts/eval/metrics/microAvg.js';
import { plainPrompt, shotsFor } from '../../ts/eval/prompts.js';
import { readTaskFile, type TaskFile } from '../../ts/eval/taskFile.js';
import { tempDir } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'darumeru');

const scratch = tempDir();
let scratchN = 0;
const fresh = () => join(scratch, `d${scratchN++}`);

let converted: { tasks: Map<string, TaskFile>; report: ReturnType<typeof convertDarumeru> } | undefined;
/** Converts the fixtures once (the tests only read the output). */
function convertAll(): NonNullable<typeof converted> {
  if (!converted) {
    const report = convertDarumeru(FIXTURES, fresh());
    converted = { tasks: new Map(report.tasks.map((t) => [t.name, readTaskFile(t.file)])), report };
  }
  return converted;
}

test('every fixture set converts into task files that load, in the paper\'s groups', (t) => {
  const { tasks, report } = convertAll();
  t.deepEqual([...tasks.keys()].sort(), [
    'cp_para_en', 'cp_sent_ru', 'mmlu_en', 'mmlu_ru', 'multiq', 'parus', 'rcb', 'rucola', 'rummlu', 'ruopenbookqa', 'ruworldtree', 'rwsd',
    'sum_abstractive', 'sum_extractive', 'use',
  ]);
  const groups = new Set(DARUMERU_GROUPS.map((g) => g.group));
  for (const [name, tf] of tasks) t.true(groups.has(tf.header.group), `${name}: ${tf.header.group}`);
  t.deepEqual(report.unknownSubjects, ['russian_history']);
  const manifest = JSON.parse(readFileSync(report.manifest, 'utf8')) as { sourcesSha256: Record<string, string>; tasks: unknown[] };
  t.is(manifest.tasks.length, 15);
  t.true(Object.values(manifest.sourcesSha256).every((h) => /^[0-9a-f]{64}$/.test(h)));
});

test('PARus: choices stay placeholders for the both-orders rule; the shot loses its answer', (t) => {
  const parus = convertAll().tasks.get('parus')!;
  t.true(parus.header.bothOrders);
  t.deepEqual(parus.header.choices, ['1', '2']);
  const item = parus.items[0]!;
  t.regex(item.messages[0]!.content, /^Дано описание ситуации:\n'Власти пообещали сохранить имя жертвы в тайне\.'\n.*\n1\. \{choice1\}\n2\. \{choice2\}\n/s);
  t.deepEqual(item.messages[1], { role: 'assistant', content: 'Ответ:' }); // llmtf's "bot" is the chat template's assistant
  t.deepEqual(item.inputs, { choice1: 'Жертва пыталась вспомнить подробности.', choice2: 'Они скрывали имя жертвы от общественности.' });
  t.is(item.gold, '2');
  t.is(item.id, '72');
  const shot = parus.header.shots[0]!;
  t.is(shot.messages[1]!.content, 'Ответ:'); // "Ответ: 1" in the prompt split; lep appends the gold itself
  t.is(shot.gold, '1');
});

test('ruMMLU: subjects from meta.domain, MMLU categories in the header, input values are not templates', (t) => {
  const { tasks } = convertAll();
  const m = tasks.get('rummlu')!;
  t.is(m.header.aggregate, 'subjects');
  t.deepEqual(m.header.categories, { anatomy: 'other', college_mathematics: 'STEM', philosophy: 'humanities' });
  t.deepEqual(m.items.map((i) => [i.subject, i.category]), [
    ['college_mathematics', 'STEM'], ['anatomy', 'other'], ['anatomy', 'other'], ['philosophy', 'humanities'], ['russian_history', 'russian_history'],
  ]);
  t.regex(m.items[4]!.messages[0]!.content, /\{m \+ n\} — не подстановка/);
  t.regex(m.items[0]!.messages[0]!.content, /по теме математика .*\nСколько будет 2 \+ 2\?\nA 3\nB 4\nC 5\nD 22\n/s);
  t.is(m.header.shots[0]!.messages[1]!.content, 'Ответ:');
});

test('MMLU-ru / MMLU-en: headline, lettered options, "Answer:" prefix; dev shots per subject without headline', (t) => {
  const { tasks } = convertAll();
  const ru = tasks.get('mmlu_ru')!;
  const en = tasks.get('mmlu_en')!;
  t.is(ru.items[0]!.messages[0]!.content, 'Ниже приведены вопросы с множественным выбором (с ответами) по астрономии.\n\nКакая планета ближе всего к Солнцу?\nA. Венера\nB. Меркурий\nC. Марс\nD. Земля');
  t.deepEqual(ru.items[0]!.messages[1], { role: 'assistant', content: 'Ответ:' });
  t.is(en.items[2]!.messages[0]!.content.split('\n')[0], 'The following are multiple choice questions (with answers) about marketing.');
  t.deepEqual(en.items.map((i) => i.gold), ['B', 'B', 'B']);
  t.deepEqual(Object.keys(en.header.shotsBySubject).sort(), ['astronomy', 'marketing']);
  t.is(en.header.shotsBySubject.marketing![0]!.messages[0]!.content, 'What is advertising?\nA. promotion\nB. a tax\nC. a loan\nD. a law');
  t.is(en.header.shotsBySubject.marketing![0]!.gold, 'A');
  t.deepEqual(en.header.categories, { astronomy: 'STEM', marketing: 'other' });
  // The plain few-shot format shows an item its own subject's dev questions.
  const marketing = en.items[2]!;
  const p = plainPrompt(en.header, marketing.messages, 5, shotsFor(en.header, marketing));
  t.is(p.prompt, 'What is advertising?\nA. promotion\nB. a tax\nC. a loan\nD. a law\nAnswer: A\n\n' + marketing.messages[0]!.content + '\nAnswer:');
  t.is(shotsFor(en.header, { subject: 'virology' }), en.header.shots);
});

test('generation sets: MultiQ answers, USE meta, copy reference, treeway summaries', (t) => {
  const { tasks } = convertAll();
  const mq = tasks.get('multiq')!;
  t.deepEqual(mq.items[0]!.gold, ['Большую', 'Большая']);
  t.is(mq.header.metric, 'qa');
  t.regex(mq.items[0]!.messages[0]!.content, /Текст 1: Ручей — река, приток Малой\.\nТекст 2: Малая — река/);
  const use = tasks.get('use')!;
  t.is(use.header.metric, 'use_grade');
  t.deepEqual(use.items.map((i) => [i.gold, i.meta]), [
    ['холодный', { type: 'text', id_task: '6', variant: 25 }],
    ['2,3', { type: 'multiple_choice_options_within_text', id_task: '15', variant: 25 }],
    ['1,3', { type: 'multiple_choice_independent_options', id_task: '16', variant: 3 }],
  ]);
  const cp = tasks.get('cp_sent_ru')!;
  t.is(cp.header.maxNewTokens, 128);
  t.is(cp.items[1]!.gold, 'Откройте меню «Файл».');
  t.is(cp.items[1]!.messages[0]!.content, 'Скопируй текст без изменений.\nТекст: Откройте меню «Файл».');
  t.deepEqual(cp.header.shots[0]!.messages.length, 1); // the copied text in the bot turn was the whole answer
  t.is(tasks.get('cp_para_en')!.header.metric, 'copy_paragraph');
  const ext = tasks.get('sum_extractive')!;
  t.deepEqual(ext.items[0]!.candidates, ['Вчера в городе открылся новый парк.', 'В парке посадили сто деревьев.', 'Погода была хорошей.']);
  t.deepEqual(ext.items[0]!.gold, [0, 1]);
  const abs = tasks.get('sum_abstractive')!;
  t.is(abs.items[0]!.gold, 'В городе открылся парк со ста деревьями.');
  t.is(abs.items[0]!.messages[1]!.content, 'TL;DR:');
});

test('choice sets: labels and scores (RCB acc+F1, RWSD Да/Нет, RuCoLA acc+MCC, OpenBookQA/WorldTree acc+F1)', (t) => {
  const { tasks } = convertAll();
  const spec = (n: string) => [tasks.get(n)!.header.choices, tasks.get(n)!.header.score, tasks.get(n)!.items.map((i) => i.gold)];
  t.deepEqual(spec('rcb'), [['1', '2', '3'], 'acc_f1', ['1', '2', '3']]);
  t.deepEqual(spec('rwsd'), [['Да', 'Нет'], 'acc', ['Да', 'Нет']]);
  t.deepEqual(spec('rucola'), [['0', '1'], 'acc_mcc', ['1', '0']]);
  t.deepEqual(spec('ruopenbookqa'), [['A', 'B', 'C', 'D'], 'acc_f1', ['C', 'A']]);
  t.deepEqual(spec('ruworldtree'), [['A', 'B', 'C', 'D'], 'acc_f1', ['B']]);
  t.regex(tasks.get('rucola')!.items[1]!.messages[0]!.content, /Текст: Мама мыли рама\.$/);
});

/** A Darumeru-shaped directory with one set's test file. */
function oneSet(set: string, lines: string[]): string {
  const dir = fresh();
  mkdirSync(join(dir, 'data', set), { recursive: true });
  writeFileSync(join(dir, 'data', set, 'test.jsonl'), lines.join('\n') + '\n');
  return dir;
}

test('malformed input: file and line named, nothing written', (t) => {
  const good = readFileSync(join(FIXTURES, 'data', 'parus', 'test.jsonl'), 'utf8').split('\n')[0]!;
  const cases: [string, string[], RegExp][] = [
    ['parus', [good, '{"instruction": "x", "inputs": {'], /data\/parus\/test\.jsonl:2: not valid JSON/],
    ['parus', [good, '[1, 2]'], /parus\/test\.jsonl:2: a record must be a JSON object/],
    ['parus', [good, JSON.stringify({ instruction: "'{premise}' {choice1} {choice2}", inputs: { choice1: 'a', choice2: 'b' }, outputs: '1' })], /parus\/test\.jsonl:2: the prompt's placeholder \{premise\} has no value in inputs/],
    ['rcb', [JSON.stringify({ instruction: 'q', inputs: {}, outputs: '4' })], /rcb\/test\.jsonl:1: outputs must be one of \["1","2","3"\], got "4"/],
    ['rummlu', [JSON.stringify({ instruction: 'q', inputs: {}, outputs: 'A', meta: { id: 1 } })], /rummlu\/test\.jsonl:1: meta\.domain \(the MMLU subject\) is missing/],
    ['use', [JSON.stringify({ instruction: 'q', inputs: {}, outputs: '1', meta: { type: 'text', id_task: '2' } })], /use\/test\.jsonl:1: meta\.variant must be the exam variant/],
    ['multiq', [JSON.stringify({ instruction: 'q', outputs: [] })], /multiq\/test\.jsonl:1: outputs must be a list of \{segment\} answers/],
    ['cp_sent_en', [JSON.stringify({ messages: [{ role: 'user', content: 'Copy: {text}' }], inputs: {} })], /cp_sent_en\/test\.jsonl:1: inputs\.text \(the text to copy\) is missing/],
    ['daru_treeway_eval', [JSON.stringify({ src_sents: ['a.'], summary_sents: ['b.'], extractive_summary: [3] })], /daru_treeway_eval\/test\.jsonl:1: extractive_summary must be a non-empty list of indices/],
    ['mmlu_nlpcoreteam', [JSON.stringify({ subject: 'anatomy', question_ru: 'q', choices_ru: ['a', 'b'], question_en: 'q', choices_en: ['a', 'b', 'c', 'd'], answer: 0 })], /mmlu_nlpcoreteam\/test\.jsonl:1: choices_ru must be 4 strings/],
    ['rwsd', [JSON.stringify({ outputs: 'Да' })], /rwsd\/test\.jsonl:1: a record needs messages or an instruction/],
  ];
  for (const [set, lines, message] of cases) {
    const out = fresh();
    const e = t.throws(() => convertDarumeru(oneSet(set, lines), out), { message }, set);
    t.is((e as { code?: string }).code, 'LEP_CONVERT');
    t.false(existsSync(out), `${set}: nothing written`);
  }
});

test('input errors: unknown set, missing set, not a directory; one file with --set', (t) => {
  t.throws(() => convertDarumeru(FIXTURES, fresh(), { sets: ['parus', 'danetqa'] }), { message: /unknown Darumeru set "danetqa"\nHINT: sets are rummlu, mmlu_nlpcoreteam, /s });
  t.throws(() => convertDarumeru(FIXTURES, fresh(), { sets: ['cp_sent_en'] }), { message: /no cp_sent_en\/test\.jsonl \(nor data\/cp_sent_en\/test\.jsonl\) under/ });
  const empty = fresh();
  mkdirSync(empty);
  t.throws(() => convertDarumeru(empty, fresh()), { message: /no Darumeru set found under .*\nHINT: expected SET\/test\.jsonl/s });
  const parusTest = join(FIXTURES, 'data', 'parus', 'test.jsonl');
  t.throws(() => convertDarumeru(parusTest, fresh()), { message: /is not a directory\nHINT: .*--set SET/s });
  const out = fresh();
  const r = convertDarumeru(parusTest, out, { set: 'parus', promptFile: join(FIXTURES, 'data', 'parus', 'prompt.jsonl') });
  t.deepEqual(r.tasks.map((x) => [x.name, x.items, x.shots]), [['parus', 3, 1]]);
  t.deepEqual(readdirSync(out).sort(), ['darumeru-manifest.json', 'parus.jsonl']);
  t.true(Object.keys(DARUMERU_SETS).includes('daru_treeway_eval'));
});
