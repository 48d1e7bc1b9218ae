import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { buildCalibrationSet } from '../../ts/calibrate/buildCalibrationSet.js';
import { CALIBRATE_SPEC } from '../../ts/calibrate/calibrateOptions.js';
import { builtinCalibrationPrompts, calibrationPrompts, promptCounts, PROMPT_KINDS } from '../../ts/calibrate/calibrationPrompts.js';
import { copyExamples } from '../../ts/calibrate/copyExamples.js';
import { readChatDataset } from '../../ts/calibrate/readChatDataset.js';
import { COMPARE_SPEC } from '../../ts/eval/evalOptions.js';
import { checkOptions } from '../../ts/options/optionSpec.js';
import { COPY_PROMPT, TRANSLATE_PROMPT, type HelpPair } from '../../ts/train/instructData.js';
import { corpora, CORPORA } from '../corpora.js';
import { tempDir } from '../helpers.js';

const DIR = tempDir();

// Hand-made material: 30 paragraphs a language, 10 help pages with a heading and two body paragraphs.
const material = () => {
  const paragraphs = { en: Array.from({ length: 30 }, (_, i) => `English paragraph number ${i}.`), ru: Array.from({ length: 30 }, (_, i) => `Русский абзац номер ${i}.`) };
  const pairs: HelpPair[] = [];
  for (let p = 0; p < 10; p++) {
    const path = `text/page${p}.html`;
    pairs.push({ en: `Page ${p}`, ru: `Страница ${p}`, path, id: `hd_id${p}` });
    for (const k of [1, 2]) pairs.push({ en: `Body ${p}.${k} text.`, ru: `Текст ${p}.${k}.`, path, id: `par_id${p}${k}` });
  }
  return { paragraphs, pairs };
};

test('promptCounts: floors of the shares, the rest to Russian copy; shares must add up', (t) => {
  t.deepEqual(promptCounts(100), { copyRu: 25, copyEn: 15, translate: 15, faq: 15 });
  t.deepEqual(promptCounts(7), { copyRu: 2, copyEn: 1, translate: 1, faq: 1 }); // 7 - 1 - 2·1 - 2·1
  t.throws(() => promptCounts(10, { copyRu: 0.5, copyEn: 0.5, translate: 0.1, faq: 0 }), { code: 'LEP_BAD_OPTION', message: /mix \(--prompt-mix\)/ });
  t.throws(() => promptCounts(0), { code: 'LEP_BAD_OPTION', message: /count \(--prompts\)/ });
});

test('calibrationPrompts: the count per kind, answer language per kind, user turns only, unique stable ids, seeded', (t) => {
  const { paragraphs, pairs } = material();
  const ps = calibrationPrompts(paragraphs, pairs, { count: 20, seed: 3 });
  t.is(ps.length, 20);
  const byKind = (k: string) => ps.filter((p) => p.kind === k);
  // 20 → copyEn 3, translate 3 per direction, faq 3 per language, copyRu 20 - 3 - 6 - 6 = 5
  t.deepEqual(Object.fromEntries(Object.keys(PROMPT_KINDS).map((k) => [k, byKind(k).length])), { copy_ru: 5, copy_en: 3, translate_en_ru: 3, translate_ru_en: 3, faq_ru: 3, faq_en: 3 });
  for (const p of ps) {
    t.is(p.lang, PROMPT_KINDS[p.kind]);
    t.is(p.messages.length, 1);
    t.is(p.messages[0]!.role, 'user');
    t.true(p.id.startsWith(`${p.kind}-`));
  }
  t.is(new Set(ps.map((p) => p.id)).size, 20);
  for (const p of byKind('copy_ru')) t.true(paragraphs.ru.includes(p.messages[0]!.content.slice(COPY_PROMPT.ru.length)));
  for (const p of byKind('translate_en_ru')) t.true(pairs.some((x) => p.messages[0]!.content === TRANSLATE_PROMPT.en + x.en));
  t.deepEqual(calibrationPrompts(paragraphs, pairs, { count: 20, seed: 3 }), ps);
  t.notDeepEqual(calibrationPrompts(paragraphs, pairs, { count: 20, seed: 4 }), ps);
  // An id names the prompt's text, not its position: the same prompt has the same id in a larger set.
  const bigger = new Map(calibrationPrompts(paragraphs, pairs, { count: 40, seed: 3 }).map((p) => [p.messages[0]!.content, p.id]));
  for (const p of ps) if (bigger.has(p.messages[0]!.content)) t.is(bigger.get(p.messages[0]!.content), p.id);
  // Ten pages give at most ten help questions per language.
  t.throws(() => calibrationPrompts(paragraphs, pairs, { count: 200, seed: 3 }), { code: 'LEP_NOT_ENOUGH_TEXT', message: /200 calibration prompts/ });
});

test('built-in prompts come from the training corpora, never from heldout/', async (t) => {
  await corpora();
  const ps = await builtinCalibrationPrompts(CORPORA, { count: 300, seed: 11 });
  t.is(ps.length, 300);
  const lines = (f: string) => new Set(readFileSync(join(CORPORA, f), 'utf8').split('\n').map((l) => l.trim()));
  const train = { ru: lines('ru.txt'), en: lines('en.txt') };
  const held = new Set([...lines('heldout/ru.txt'), ...lines('heldout/en.txt')]);
  const heldPairs = readFileSync(join(CORPORA, 'heldout', 'pairs.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as HelpPair);
  const heldTexts = new Set(heldPairs.flatMap((p) => [p.en, p.ru]));
  for (const p of ps) {
    const text = p.messages[0]!.content;
    if (p.kind === 'copy_ru' || p.kind === 'copy_en') {
      const body = text.slice(COPY_PROMPT[p.lang].length);
      t.true(train[p.lang].has(body), `copied text is a training line: ${body.slice(0, 60)}`);
      t.false(held.has(body), `copied text is held out: ${body.slice(0, 60)}`);
      t.true(body.length >= 30 && body.length <= 300);
      const letters = body.match(/\p{L}/gu)!.length;
      const inScript = body.match(p.lang === 'ru' ? /\p{Script=Cyrillic}/gu : /\p{Script=Latin}/gu)?.length ?? 0;
      t.true(inScript >= 0.5 * letters, `copied text is mostly in its language's script: ${body.slice(0, 60)}`);
    }
    if (p.kind === 'translate_en_ru') t.false(heldTexts.has(text.slice(TRANSLATE_PROMPT.en.length)));
    if (p.kind === 'translate_ru_en') t.false(heldTexts.has(text.slice(TRANSLATE_PROMPT.ru.length)));
  }
  t.deepEqual(await builtinCalibrationPrompts(CORPORA, { count: 300, seed: 11 }), ps);
});

test('copyExamples: n distinct texts by a seed, the copy prompt as user turn and the text as answer', (t) => {
  const texts = ['Первый текст.', 'Второй текст.', 'Третий текст.', 'Первый текст.', '  ', 'Четвёртый текст.'];
  const ex = copyExamples(texts, 4, 5);
  t.is(ex.length, 4);
  t.deepEqual(ex.map((e) => e.messages[1]!.content).sort(), ['Первый текст.', 'Второй текст.', 'Третий текст.', 'Четвёртый текст.'].sort());
  for (const e of ex) {
    t.is(e.messages[0]!.content, COPY_PROMPT.ru + e.messages[1]!.content);
    t.deepEqual(e.messages.map((m) => m.role), ['user', 'assistant']);
  }
  t.deepEqual(copyExamples(texts, 4, 5), ex);
  t.is(copyExamples(texts, 2, 5, 'en')[0]!.messages[0]!.content.startsWith(COPY_PROMPT.en), true);
  t.throws(() => copyExamples(texts, 5, 5), { code: 'LEP_NOT_ENOUGH_TEXT', message: /only 4 distinct non-blank texts/ });
});

test('buildCalibrationSet: mixes by counts, shuffles by a seed into identical files, readable back as chat data', async (t) => {
  const generated = Array.from({ length: 10 }, (_, i) => ({
    id: `g${i}`,
    messages: [{ role: 'user', content: `Вопрос ${i}` }, { role: 'assistant', content: `Ответ ${i}` }],
    stopped: true,
    tokens: 3,
  }));
  const copy = copyExamples(Array.from({ length: 8 }, (_, i) => `Текст ${i}.`), 8, 1);
  const a = join(DIR, 'a.jsonl');
  const b = join(DIR, 'b.jsonl');
  const r = buildCalibrationSet({ generated, copy, maxCopy: 5, seed: 9, out: a });
  t.deepEqual(r, { file: a, examples: 15, generated: 10, copy: 5 });
  buildCalibrationSet({ generated, copy, maxCopy: 5, seed: 9, out: b });
  t.is(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
  const back = await readChatDataset(a);
  t.is(back.filter((x) => x.source === 'copy').length, 5);
  t.deepEqual(back.filter((x) => x.source === 'generated').map((x) => x.id).sort(), generated.map((g) => g.id).sort());
  t.false(back.some((x) => 'stopped' in x || 'tokens' in x)); // generation bookkeeping stays out of training data
  // Shuffled: the two sources are interleaved, not one block after the other.
  const sources = back.map((x) => x.source).join(',');
  t.false(sources.startsWith('generated,'.repeat(10)) || sources.startsWith('copy,'.repeat(5)));
  buildCalibrationSet({ generated, copy, maxCopy: 5, seed: 10, out: b });
  t.not(readFileSync(a, 'utf8'), readFileSync(b, 'utf8'));
  t.throws(() => buildCalibrationSet({ generated, copy, maxCopy: -1, out: b }), { code: 'LEP_BAD_OPTION', message: /maxCopy \(--copy-examples\)/ });
  // The sampler keeps 32 bits of its seed: 2^32 would shuffle as 0 does, so it is refused, here, in the
  // prompts and in the options of calibrate and eval --compare (they took any non-negative integer).
  buildCalibrationSet({ generated, copy, maxCopy: 5, seed: 2 ** 32 - 1, out: b });
  t.throws(() => buildCalibrationSet({ generated, copy, maxCopy: 5, seed: 2 ** 32, out: b }), { code: 'LEP_BAD_OPTION', message: /an integer from 0 to 2\^32 - 1 for seed \(--seed\) but received 4294967296/ });
  t.throws(() => calibrationPrompts({ en: [], ru: [] }, [], { count: 1, seed: -1 }), { code: 'LEP_BAD_OPTION', message: /for seed \(--seed\)/ });
  for (const spec of [CALIBRATE_SPEC, COMPARE_SPEC] as const) t.throws(() => checkOptions(spec, { seed: 2 ** 32 }, { kind: 'options' }), { code: 'LEP_BAD_OPTION', message: /seed \(--seed\)/ });
});
