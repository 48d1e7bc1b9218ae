// Self-calibration answers from the committed toy instruct model (6.8 M parameters; 16 new tokens keep
// each run about a second): resuming after an abort or a kill answers every prompt exactly once, with the
// answers of an uninterrupted run; and the whole data side, answers → filter → mix → blocks.
import { closeSync, copyFileSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { buildCalibrationSet } from '../../ts/calibrate/buildCalibrationSet.js';
import { copyExamples } from '../../ts/calibrate/copyExamples.js';
import { filterAnswers } from '../../ts/calibrate/filterAnswers.js';
import { generateAnswers, runFile, type AnswersProgress, type CalibrationAnswer, type CalibrationPrompt } from '../../ts/calibrate/generateAnswers.js';
import { packCalibrationSet } from '../../ts/calibrate/packCalibrationSet.js';
import { readChatDataset } from '../../ts/calibrate/readChatDataset.js';
import { LepModel } from '../../ts/index.js';
import { readSafetensors } from '../../ts/checkpoint/index.js';
import { COPY_PROMPT, FAQ_PROMPT, TRANSLATE_PROMPT } from '../../ts/train/instructData.js';
import { rejectsAborted, smallFilesystem, tempDir } from '../helpers.js';

const INSTRUCT = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct');
const DIR = tempDir();
const OPTS = { maxNewTokens: 16, batchSize: 3 } as const;

const user = (content: string) => [{ role: 'user', content }];
const PROMPTS: CalibrationPrompt[] = [
  ...['Standard C library (libc, -lc)', 'Save the document.', 'Open the context menu.'].map((t, i) => ({ id: `copy-en-${i}`, messages: user(COPY_PROMPT.en + t), lang: 'en' })),
  ...['Открыть файл', 'Кнопки со стрелками вверх и вниз', 'Данная функция всегда завершается успешно.'].map((t, i) => ({ id: `copy-ru-${i}`, messages: user(COPY_PROMPT.ru + t), lang: 'ru' })),
  { id: 'tr-0', messages: user(`${TRANSLATE_PROMPT.en}Choose Data - Filter - Reset Filter.`), lang: 'ru' },
  { id: 'tr-1', messages: user(`${TRANSLATE_PROMPT.ru}Выберите Вид - Стили.`), lang: 'en' },
  { id: 'faq-0', messages: user(FAQ_PROMPT.ru('Допустимые имена')), lang: 'ru' },
  { id: 'faq-1', messages: user(FAQ_PROMPT.en('Allowed names')), lang: 'en' },
];

let files = 0;
const freshFile = () => join(DIR, `answers-${files++}.jsonl`);
const readLines = (f: string): CalibrationAnswer[] => readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as CalibrationAnswer);
const byId = (lines: CalibrationAnswer[]) => new Map(lines.map((l) => [l.id, l]));

/** Every prompt answered exactly once, each line equal to the uninterrupted run's line for that prompt. */
function sameAsReference(t: import('ava').ExecutionContext, file: string, reference: CalibrationAnswer[]): void {
  const lines = readLines(file);
  t.deepEqual(lines.map((l) => l.id).sort(), PROMPTS.map((p) => p.id).sort());
  const ref = byId(reference);
  for (const l of lines) t.deepEqual(l, ref.get(l.id));
}

// The uninterrupted run every other test compares with, made once.
let reference: Promise<{ file: string; lines: CalibrationAnswer[]; events: AnswersProgress[] }> | undefined;
const uninterrupted = () =>
  (reference ??= (async () => {
    const file = freshFile();
    const events: AnswersProgress[] = [];
    const r = await generateAnswers(INSTRUCT, PROMPTS, file, { ...OPTS, onAnswers: (e) => events.push(e) });
    if (r.generated !== PROMPTS.length) throw new Error(`generated ${r.generated}`);
    return { file, lines: readLines(file), events };
  })());

let shared: Promise<LepModel> | undefined;
const model = () => (shared ??= LepModel.load(INSTRUCT));
test.after.always(async () => (await shared)?.dispose());

test('answers every prompt once through the chat template, greedily, with progress per batch', async (t) => {
  const { file, lines, events } = await uninterrupted();
  t.is(lines.length, PROMPTS.length);
  const a = byId(lines);
  for (const p of PROMPTS) {
    const l = a.get(p.id)!;
    t.deepEqual(l.messages.slice(0, -1), p.messages);
    t.is(l.messages.at(-1)!.role, 'assistant');
    t.is(l.lang, p.lang); // extra prompt fields travel to the answer
    t.true(l.tokens >= 0 && l.tokens <= OPTS.maxNewTokens);
    t.is(typeof l.stopped, 'boolean');
  }
  // The chat template was applied: the toy instruct model answers the English prompts in English and
  // closes its turn with its EOS, which it learnt only inside the template. (v2 copied 'Standard C library
  // (libc, -lc)' exactly; v3 answers these short texts with other man-page phrases, e.g. "The following
  // functions are:"; the evaluation suites' copy scores are in test/fixtures/toy-family/README.md.)
  const en = PROMPTS.filter((p) => p.id.startsWith('copy-en-')).map((p) => a.get(p.id)!);
  t.true(en.filter((l) => l.stopped).length >= 2, `stopped: ${en.map((l) => `${JSON.stringify(l.messages[1]!.content)} ${l.stopped}`).join(', ')}`);
  for (const l of en) t.regex(l.messages[1]!.content, /^[\p{Script=Latin}\p{N}\s.,:;()\-]+$/u);
  t.regex(a.get('copy-ru-0')!.messages[1]!.content, /^[\p{Script=Cyrillic}\s.,]+$/u);
  // One event before the first batch, then one per batch of 3 (10 prompts: 3, 6, 9, 10).
  t.deepEqual(events.map((e) => e.done), [0, 3, 6, 9, 10]);
  t.true(events.every((e) => e.total === 10 && e.reused === 0));
  // The run's options are recorded next to the answers.
  t.like(JSON.parse(readFileSync(runFile(file), 'utf8')), { maxNewTokens: 16, batchSize: 3, stop: [] });
  // Greedy decoding is deterministic: the same run again gives the same lines (a loaded model this time).
  const again = freshFile();
  await generateAnswers(await model(), PROMPTS, again, OPTS);
  sameAsReference(t, again, lines);
  // A finished file: nothing to do, no model needed.
  const r = await generateAnswers(INSTRUCT, PROMPTS, again, OPTS);
  t.like(r, { generated: 0, reused: 10, repairedTornLine: false });
});

test('an abort between batches rejects with LEP_ABORTED, keeps whole batches, and a restart finishes the rest', async (t) => {
  const { lines: ref } = await uninterrupted();
  const file = freshFile();
  const ctl = new AbortController();
  const reason = new Error('stop after the second batch');
  await rejectsAborted(t, generateAnswers(await model(), PROMPTS, file, { ...OPTS, signal: ctl.signal, onAnswers: (e) => e.done >= 6 && ctl.abort(reason) }), reason);
  t.is(readLines(file).length, 6);
  const events: AnswersProgress[] = [];
  const r = await generateAnswers(await model(), PROMPTS, file, { ...OPTS, onAnswers: (e) => events.push(e) });
  t.like(r, { generated: 4, reused: 6, repairedTornLine: false });
  t.deepEqual(events.map((e) => e.done), [6, 9, 10]);
  sameAsReference(t, file, ref);
});

test('an abort during a native generation rejects with LEP_ABORTED and writes no part of that batch', async (t) => {
  const { lines: ref } = await uninterrupted();
  const file = freshFile();
  const ctl = new AbortController();
  const reason = new Error('stop mid-batch');
  // Abort from a timer right after the first batch is saved: it fires while the second batch generates.
  const p = generateAnswers(await model(), PROMPTS, file, { ...OPTS, signal: ctl.signal, onAnswers: (e) => e.done === 3 && setTimeout(() => ctl.abort(reason), 0) });
  await rejectsAborted(t, p, reason);
  const n = readLines(file).length;
  t.true(n % 3 === 0 && n < 10, `whole batches only, not all: ${n}`);
  await generateAnswers(await model(), PROMPTS, file, OPTS);
  sameAsReference(t, file, ref);
});

test('a kill mid-write (a torn last line) is repaired: the torn prompt and its batch are redone, nothing doubled', async (t) => {
  const { file: full, lines: ref } = await uninterrupted();
  const file = freshFile();
  copyFileSync(full, file);
  copyFileSync(runFile(full), runFile(file));
  // Keep 4 whole lines (the first batch and one of the second) and half of the 5th.
  const text = readFileSync(full, 'utf8');
  const lineEnds = [...text.matchAll(/\n/g)].map((m) => m.index!);
  const cut = lineEnds[3]! + 1 + Math.floor((lineEnds[4]! - lineEnds[3]!) / 2);
  truncateSync(file, Buffer.byteLength(text.slice(0, cut)));
  t.throws(() => readLines(file)); // really torn
  const r = await generateAnswers(await model(), PROMPTS, file, OPTS);
  t.like(r, { generated: 6, reused: 4, repairedTornLine: true });
  t.true(readFileSync(file, 'utf8').endsWith('\n'));
  sameAsReference(t, file, ref);
});

test('resuming with other options, a damaged complete line, or bad prompts are errors that say what to do', async (t) => {
  const { file: full } = await uninterrupted();
  const file = freshFile();
  copyFileSync(full, file);
  copyFileSync(runFile(full), runFile(file));
  const e = await t.throwsAsync(generateAnswers(INSTRUCT, PROMPTS, file, { ...OPTS, maxNewTokens: 32 }), { code: 'LEP_RESUME_MISMATCH' });
  t.regex(e!.message, /holds answers made with maxNewTokens 16, but this run has 32\nHINT: resume with the same model and options \(device and dtype too\), or write to another file/);
  // Four answers of ten made in float32 on the CPU: resumed in bf16 they would mix (greedy answers differ).
  writeFileSync(file, readFileSync(full, 'utf8').split('\n').slice(0, 4).join('\n') + '\n');
  const e3 = await t.throwsAsync(generateAnswers(INSTRUCT, PROMPTS, file, { ...OPTS, dtype: 'bf16' }), { code: 'LEP_RESUME_MISMATCH' });
  t.regex(e3!.message, /holds answers made with numerics "cpu Float", but this run has "cpu BFloat16"/);
  // A run file of an older lep, which recorded none: resumed as before.
  const { numerics, ...older } = JSON.parse(readFileSync(runFile(full), 'utf8')) as Record<string, unknown>;
  t.is(numerics, 'cpu Float');
  writeFileSync(runFile(file), JSON.stringify(older));
  t.like(await generateAnswers(INSTRUCT, PROMPTS, file, { ...OPTS, dtype: 'bf16' }), { reused: 4, generated: 6 });
  t.is((JSON.parse(readFileSync(runFile(file), 'utf8')) as { numerics: string }).numerics, 'cpu BFloat16', 'recorded from now on');
  const lines = readFileSync(full, 'utf8').split('\n');
  lines[2] = '{"id": "copy-en-1", "messages": [';
  writeFileSync(file, lines.join('\n'));
  const e2 = await t.throwsAsync(generateAnswers(INSTRUCT, PROMPTS, file, OPTS), { code: 'LEP_BAD_ANSWERS' });
  t.true(e2!.message.startsWith(`${file}:3: malformed JSON`), e2!.message);
  const other = freshFile();
  await t.throwsAsync(generateAnswers(INSTRUCT, [PROMPTS[0]!, PROMPTS[0]!], other, OPTS), { code: 'LEP_BAD_OPTION', message: /prompts\[1\]\.id/ });
  await t.throwsAsync(generateAnswers(INSTRUCT, [{ id: 'x', messages: [{ role: 'assistant', content: 'hi' }] }], other, OPTS), { code: 'LEP_BAD_OPTION', message: /ending with a user turn/ });
  await t.throwsAsync(generateAnswers(INSTRUCT, PROMPTS, other, { ...OPTS, batchSize: 0 }), { code: 'LEP_BAD_OPTION', message: /batchSize \(--batch-size\)/ });
});

test('a prompt with no room to answer in the context is left out and reported', async (t) => {
  const long = { id: 'long', messages: user(COPY_PROMPT.en + 'word '.repeat(600)) };
  const file = freshFile();
  const r = await generateAnswers(await model(), [PROMPTS[0]!, long], file, OPTS);
  t.deepEqual(r.tooLong, ['long']);
  t.deepEqual(readLines(file).map((l) => l.id), [PROMPTS[0]!.id]);
});

test('the data side end to end: answers → filter → mix with copy examples → blocks with loss on answers only', async (t) => {
  const { file } = await uninterrupted();
  const answers = await readChatDataset(file); // the answer file is a chat dataset
  const { kept, rejected } = await filterAnswers(answers, { language: { script: (r) => (r.lang === 'ru' ? 'Cyrillic' : 'Latin') } });
  t.is(kept.length + Object.values(rejected).reduce((a, b) => a + b, 0), 10);
  t.true(kept.length > 0);
  t.true(kept.every((k) => k.stopped === true));
  const copy = copyExamples(['Открыть файл.', 'Закрыть окно.', 'Сохранить документ как.'], 3, 1);
  const set = join(DIR, 'set.jsonl');
  t.like(buildCalibrationSet({ generated: kept, copy, seed: 1, out: set }), { examples: kept.length + 3, copy: 3 });
  const tok = (await model()).tokenizer!;
  const blocks = join(DIR, 'blocks.safetensors');
  const r = await packCalibrationSet(set, tok, 128, blocks);
  t.is(r.examples, kept.length + 3);
  const tensors = new Map(readSafetensors(blocks).map((x) => [x.name, x]));
  t.deepEqual(tensors.get('tokens')!.shape, [r.blocks, 128]);
  t.deepEqual(tensors.get('loss_mask')!.shape, [r.blocks, 128]);
  const ids = new Int32Array(tensors.get('tokens')!.data.slice().buffer);
  const mask = tensors.get('loss_mask')!.data;
  t.is(mask.reduce((a, b) => a + b, 0), r.targetTokens);
  // The masked tokens decode to exactly the assistant answers, each closed by the model's end of turn (EOS).
  const eos = tok.specialToken('eos')!;
  t.is(eos, '<|im_end|>');
  const masked = await tok.decode(Array.from(ids).filter((_, i) => mask[i] === 1));
  const answersText = (await readChatDataset(set)).map((l) => `${l.messages.at(-1)!.content}${eos}`);
  t.is(masked.replace(/\s+/g, ''), answersText.join('').replace(/\s+/g, ''));
  // A bad line in the set fails with its file and line, before any block is written.
  writeFileSync(set, `${readFileSync(set, 'utf8')}{"messages": [{"role": "user", "content": "no answer"}]}\n`);
  await t.throwsAsync(packCalibrationSet(set, tok, 128, join(DIR, 'never.safetensors')), { code: 'LEP_BAD_CHAT_DATA', message: new RegExp(`${set}:${kept.length + 4}: no assistant turn`) });
});

test('a full disk under the answers file: the error names it (it was "cannot write: ENOSPC")', async (t) => {
  const fs = await smallFilesystem(64 * 1024);
  if (typeof fs === 'string') return t.fail(fs);
  t.teardown(fs.remove);
  const file = join(fs.dir, 'answers.jsonl');
  // The disk fills after the first batch is written: the next batch's append fails.
  const fill = (): void => {
    const fd = openSync(join(fs.dir, 'filler'), 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(4096));
    } catch (e) {
      t.is((e as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
  };
  // Enough prompts to fill the answers file's last page (appends within it need no new space).
  const many = Array.from({ length: 4 }, (_, k) => PROMPTS.map((p) => ({ ...p, id: `${p.id}-${k}` }))).flat();
  const e = await t.throwsAsync(generateAnswers(await model(), many, file, { ...OPTS, onAnswers: (p) => { if (p.done === OPTS.batchSize) fill(); } }));
  const io = e as NodeJS.ErrnoException;
  t.is(io.code, 'ENOSPC', io.message);
  t.is(io.path, file);
  // Whole batches, plus the part of the batch that filled the disk (a torn line the next run repairs).
  const text = readFileSync(file, 'utf8');
  const kept = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).length;
  t.true(kept >= OPTS.batchSize && kept < many.length, `${kept} whole answers kept`);
});
