import test from 'ava';

import { filterAnswers, repeatedNgrams, scriptByLang, type AnswerLike } from '../../ts/calibrate/filterAnswers.js';
import { mistralTokenizerDir, Tokenizer } from '../../ts/index.js';

const ans = (id: string, answer: string, extra: Record<string, unknown> = {}, prompt = 'Расскажи что-нибудь.'): AnswerLike => ({
  id,
  messages: [
    { role: 'user', content: prompt },
    { role: 'assistant', content: answer },
  ],
  ...extra,
});

const ids = (xs: AnswerLike[]) => xs.map((x) => x.id);

test('repeatedNgrams: prose repeats nothing, a loop nearly everything, punctuation and case do not hide it', (t) => {
  t.deepEqual(repeatedNgrams('Откройте меню Файл и выберите пункт Сохранить.', 3), { repeats: 0, total: 5, share: 0 });
  // The toy base model's loop: a period of 6 words, three times.
  const loop = 'что не потому, что он нет, что не потому, что он нет, что не потому, что он нет.';
  const r = repeatedNgrams(loop, 3);
  t.is(r.total, 16);
  t.is(r.repeats, 16 - 6); // after one period every trigram is a repeat
  t.deepEqual(repeatedNgrams('A b c. a, B; c!', 3), { repeats: 1, total: 4, share: 0.25 });
  t.deepEqual(repeatedNgrams('two words', 3), { repeats: 0, total: 0, share: 0 });
});

test('default rules: empty and unfinished are rejected, counted per rule; order kept', async (t) => {
  const rs = [ans('ok', 'Хороший ответ.'), ans('blank', '  \n'), ans('cut', 'Ответ, который оборвался на', { stopped: false }), ans('ok2', 'Ещё ответ.', { stopped: true }), ans('nofield', 'Без поля stopped.')];
  const r = await filterAnswers(rs);
  t.deepEqual(ids(r.kept), ['ok', 'ok2', 'nofield']);
  t.deepEqual(r.rejected, { empty: 1, unfinished: 1, length: 0, language: 0, repetition: 0, judge: 0 });
  t.deepEqual(r.rejections.map((x) => [x.rule, x.record.id]), [['empty', 'blank'], ['unfinished', 'cut']]);
  // dropUnfinished: false keeps the cut-off answer.
  t.deepEqual(ids((await filterAnswers(rs, { dropUnfinished: false })).kept), ['ok', 'cut', 'ok2', 'nofield']);
});

test('length in characters counts code points; in tokens uses the tokenizer', async (t) => {
  const rs = [ans('short', 'Да.'), ans('mid', 'Ёжик в тумане'), ans('long', 'Очень длинный ответ, который не помещается в рамки.')];
  const byChars = await filterAnswers(rs, { length: { min: 4, max: 13 } });
  t.deepEqual(ids(byChars.kept), ['mid']); // 'Ёжик в тумане' is exactly 13
  t.is(byChars.rejected.length, 2);
  const astral = await filterAnswers([ans('emoji', '😀😀😀')], { length: { max: 3 } }); // 6 UTF-16 units, 3 code points
  t.is(astral.kept.length, 1);
  const tok = Tokenizer.fromDir(mistralTokenizerDir());
  const n = (await tok.encode('Ёжик в тумане', { addSpecialTokens: false })).length;
  const byTokens = await filterAnswers(rs, { length: { min: n, max: n, unit: 'tokens' }, tokenizer: tok });
  t.deepEqual(ids(byTokens.kept), ['mid']);
  await t.throwsAsync(filterAnswers(rs, { length: { max: 5, unit: 'tokens' } }), { code: 'LEP_BAD_OPTION', message: /tokenizer/ });
  await t.throwsAsync(filterAnswers(rs, { length: { min: 5, max: 4 } }), { code: 'LEP_BAD_OPTION', message: /length\.max \(--length-max\)/ });
});

test('language: a fixed script, or per line from its lang (a translation into English must be Latin)', async (t) => {
  const rs = [
    ans('ru-ok', 'Откройте меню Файл.', { lang: 'ru' }),
    ans('ru-in-en', 'Open the File menu.', { lang: 'ru' }),
    ans('en-ok', 'Open the File menu.', { lang: 'en' }),
    ans('mixed', 'Нажмите кнопку OK и Cancel и Apply now', { lang: 'ru' }), // 15 Cyrillic letters of 31
    ans('digits', '42 + 7 = 49', { lang: 'ru' }),
    ans('nolang', 'Open the File menu.'),
  ];
  const fixed = await filterAnswers(rs, { language: { script: 'Cyrillic' } });
  t.deepEqual(ids(fixed.kept), ['ru-ok']);
  t.is(fixed.rejected.language, 5);
  const perLine = await filterAnswers(rs, { language: { script: scriptByLang() } });
  t.deepEqual(ids(perLine.kept), ['ru-ok', 'en-ok', 'nolang']); // no lang: not checked; no letters: rejected
  const lenient = await filterAnswers(rs, { language: { script: scriptByLang(), minShare: 0.4 } });
  t.true(ids(lenient.kept).includes('mixed'));
  await t.throwsAsync(filterAnswers(rs, { language: { script: 'Klingon!' } }), { code: 'LEP_BAD_OPTION', message: /--script/ });
});

test('repetition: a loop is rejected, a faithful copy of a repetitive prompt is kept', async (t) => {
  const loop = 'Файл - Свойства. Файл - Свойства. Файл - Свойства. Файл - Свойства.';
  const listing = 'Values: on off on off on off on off on off';
  const rs = [
    ans('loop', loop),
    ans('copy', listing, {}, `Скопируй этот текст без изменений:\n\n${listing}`),
    ans('prose', 'Команда ls выводит содержимое каталога, по умолчанию текущего.'),
  ];
  t.true(repeatedNgrams(listing, 3).share > 0.3);
  const r = await filterAnswers(rs);
  t.deepEqual(ids(r.kept), ['copy', 'prose']);
  t.is(r.rejected.repetition, 1);
  t.is((await filterAnswers(rs, { repetition: false })).kept.length, 3);
  t.is((await filterAnswers(rs, { repetition: { maxShare: 0.9 } })).kept.length, 3);
});

test('judge: booleans and scores against the threshold, only for answers the rules kept, with the prompt', async (t) => {
  const rs = [ans('a', 'Первый.', { score: 0.9 }), ans('b', 'Второй.', { score: 0.2 }), ans('c', ''), ans('d', 'Четвёртый.', { score: 0.5 })];
  const seen: [string, string][] = [];
  const r = await filterAnswers(rs, {
    judge: async (prompt, answer, record) => {
      seen.push([prompt, answer]);
      await new Promise((res) => setTimeout(res, record.id === 'a' ? 20 : 0)); // finish out of order
      return record.score as number;
    },
    judgeConcurrency: 3,
  });
  t.deepEqual(ids(r.kept), ['a', 'd']); // 0.5 >= the default threshold 0.5
  t.deepEqual(r.rejected, { empty: 1, unfinished: 0, length: 0, language: 0, repetition: 0, judge: 1 });
  t.is(seen.length, 3); // the empty answer never reached the judge
  t.deepEqual(seen[0], ['Расскажи что-нибудь.', 'Первый.']);
  const strict = await filterAnswers(rs, { judge: async (_p, _a, rec) => (rec.score as number) > 0.5 });
  t.deepEqual(ids(strict.kept), ['a']);
  await t.throwsAsync(filterAnswers(rs, { judge: async () => 'yes' as unknown as boolean }), { code: 'LEP_BAD_JUDGE', message: /returned "yes"/ });
});

test('a line without an assistant turn is an error naming it', async (t) => {
  await t.throwsAsync(filterAnswers([{ id: 'q', messages: [{ role: 'user', content: 'hi' }] }]), { code: 'LEP_BAD_ANSWERS', message: /answer 0 \(id "q"\) has no assistant turn/ });
});
