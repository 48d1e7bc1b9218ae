// Toy family v2's chat markup (ts/train/chatTokens.ts): turn markers are special added tokens, so the chat
// template survives every vocabulary lep builds (train --like, extend, shrink + extend) with each marker
// one special token, and the loss mask of a chat example ends with the turn-end marker.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { extendTokenizerDir, mistralTokenizerDir, shrinkTokenizerDir, Tokenizer, trainTokenizer } from '../../ts/index.js';
import { renderChat } from '../../ts/train/index.js';
import { writeChatTokenizer } from '../../ts/train/chatTokens.js';
import { CHATML_TEMPLATE, LLAMA3_CHAT_TEMPLATE } from '../../ts/train/instructData.js';
import { corpora } from '../corpora.js';
import { tempDir } from '../helpers.js';

const LLAMA3_DIR = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
const FAMILIES = [
  { name: 'mistral + ChatML', src: () => mistralTokenizerDir(), specials: ['<|im_start|>', '<|im_end|>'], template: CHATML_TEMPLATE, turnEnd: '<|im_end|>' },
  { name: 'LLaMa-3 byte-level', src: () => LLAMA3_DIR, specials: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], template: LLAMA3_CHAT_TEMPLATE, turnEnd: '<|eot_id|>' },
];
const CHAT = [
  { role: 'user', content: 'Скопируй этот текст без изменений:\n\nОткрывает диалоговое окно.' },
  { role: 'assistant', content: 'Открывает диалоговое окно.' },
];

/** A Russian training text of about 300 KB from the corpora. */
async function russianText(): Promise<string> {
  const files = await corpora();
  const file = join(tempDir(), 'ru.txt');
  writeFileSync(file, readFileSync(files['ru.txt']!, 'utf8').slice(0, 300_000));
  return file;
}

/** Each marker is one special added token of `tok`, and the rendered chat holds it as that one id. */
async function checkMarkers(t: import('ava').ExecutionContext, tok: Tokenizer, specials: readonly string[], where: string): Promise<void> {
  const added = (tok.json.added_tokens as { content: string; id: number; special: boolean }[]) ?? [];
  const ids = await tok.encode(tok.applyChatTemplate(CHAT, { addGenerationPrompt: false }), { addSpecialTokens: false });
  for (const s of specials) {
    const a = added.find((x) => x.content === s);
    t.truthy(a, `${where}: ${s} is an added token`);
    t.true(a?.special, `${where}: ${s} is special`);
    t.true(ids.includes(a!.id), `${where}: the rendered chat holds ${s} as the single id ${a?.id}`);
  }
}

for (const f of FAMILIES) {
  test(`${f.name}: the markers are special tokens; the loss mask is the answer and the turn-end marker`, async (t) => {
    const dir = join(tempDir(), 'tok');
    const ids = await writeChatTokenizer(f.src(), dir, { specials: f.specials, chatTemplate: f.template });
    const tok = Tokenizer.fromDir(dir);
    t.is(tok.chatTemplate, f.template);
    await checkMarkers(t, tok, f.specials, 'family tokenizer');
    const src = Tokenizer.fromDir(f.src());
    // Existing ids are unchanged; new markers are appended after them.
    for (const [token, id] of Object.entries(src.vocab())) if (tok.tokenToId(token) !== id) t.fail(`${token} moved from ${id}`);
    for (const s of f.specials) t.true(ids[s]! < tok.size);
    const { ids: chat, mask } = await renderChat({ messages: CHAT }, tok);
    const answer = chat.filter((_, i) => mask[i]);
    const turnEnd = tok.tokenToId(f.turnEnd)!;
    t.true(answer.includes(turnEnd), 'the model learns to close its answer with the turn-end marker');
    t.is(await tok.decode(answer.slice(0, answer.indexOf(turnEnd)), { skipSpecialTokens: true }), CHAT[1]!.content);
  });

  test(`${f.name}: a new vocabulary (train --like, extend, shrink + extend) keeps every marker as one special token`, async (t) => {
    const text = await russianText();
    const dir = join(tempDir(), 'tok');
    await writeChatTokenizer(f.src(), dir, { specials: f.specials, chatTemplate: f.template });
    const trained = join(tempDir(), 'trained');
    await trainTokenizer(text, trained, { type: 'bpe', vocabSize: 2000, like: dir });
    const full = Tokenizer.fromDir(trained);
    t.is(full.chatTemplate, f.template, 'the full replacement carries the chat template');
    await checkMarkers(t, full, f.specials, 'train --like');
    const donor = join(tempDir(), 'donor');
    await trainTokenizer(text, donor, { type: 'bpe', vocabSize: 2000 });
    const extended = join(tempDir(), 'extended');
    extendTokenizerDir(dir, donor, extended);
    await checkMarkers(t, Tokenizer.fromDir(extended), f.specials, 'extend');
    const optimized = join(tempDir(), 'optimized');
    await shrinkTokenizerDir(dir, optimized, { keep: 1000, corpus: text, donorDir: donor });
    await checkMarkers(t, Tokenizer.fromDir(optimized), f.specials, 'shrink + extend');
  });
}

test('mistral + ChatML, Extended: keep-ascii (the default) encodes the chat header and English as the original does, new-first does not', async (t) => {
  // A SentencePiece-style original has no pre-tokenizer, so with the donor's merges first (the reference
  // code's order) `ignore_merges` never sees a whole word and a donor merge such as "▁a s" re-segments
  // English: the toy family's generation prompt "<|im_start|>assistant" became "▁as si stant", and its
  // instruct model, given its own rows for every old token, stopped answering (docs/main-job.md).
  const files = await corpora();
  const text = join(tempDir(), 'ru.txt');
  writeFileSync(text, readFileSync(files['ru.txt']!, 'utf8').slice(0, 1_500_000));
  const english = readFileSync(files['heldout/en.txt']!, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 400);
  const russian = readFileSync(files['heldout/ru.txt']!, 'utf8').split('\n').filter((l) => l.trim()).slice(0, 400);
  const dir = join(tempDir(), 'tok');
  await writeChatTokenizer(mistralTokenizerDir(), dir, { specials: FAMILIES[0]!.specials, chatTemplate: FAMILIES[0]!.template });
  const donor = join(tempDir(), 'donor');
  await trainTokenizer(text, donor, { type: 'bpe', vocabSize: 8000 });
  const original = Tokenizer.fromDir(dir);
  const header = original.applyChatTemplate([{ role: 'user', content: 'Copy this text exactly:\n\nOpens the dialog.' }], { addGenerationPrompt: true });
  const encode = (tok: Tokenizer, texts: string[]): Promise<number[][]> => tok.encodeBatch(texts, { addSpecialTokens: false });
  const [origHeader, origEnglish, origRussian] = [await encode(original, [header]), await encode(original, english), await encode(original, russian)];
  const measure = async (mergeOrder: 'keep-ascii' | 'new-first' | 'original-first' | undefined) => {
    const out = join(tempDir(), `ext-${mergeOrder ?? 'default'}`);
    extendTokenizerDir(dir, donor, out, mergeOrder ? { mergeOrder } : {});
    const tok = Tokenizer.fromDir(out);
    const [h, en, ru] = [await encode(tok, [header]), await encode(tok, english), await encode(tok, russian)];
    const tokens = (x: number[][]): number => x.reduce((s, ids) => s + ids.length, 0);
    return {
      headerKept: JSON.stringify(h) === JSON.stringify(origHeader),
      englishKept: en.filter((ids, i) => JSON.stringify(ids) === JSON.stringify(origEnglish[i])).length / english.length,
      russianGain: tokens(origRussian) / tokens(ru),
    };
  };
  const [keep, newFirst, originalFirst] = [await measure(undefined), await measure('new-first'), await measure('original-first')];
  t.log(`English lines encoded as before / Russian tokens saved (x): keep-ascii ${keep.englishKept.toFixed(3)} / ${keep.russianGain.toFixed(3)}, ` +
    `new-first ${newFirst.englishKept.toFixed(3)} / ${newFirst.russianGain.toFixed(3)}, original-first ${originalFirst.englishKept.toFixed(3)} / ${originalFirst.russianGain.toFixed(3)}`);
  t.true(keep.headerKept, 'keep-ascii: the chat prompt encodes to the original ids');
  t.false(newFirst.headerKept, 'new-first re-segments the chat prompt (this test would not see a broken keep-ascii otherwise)');
  t.true(keep.englishKept >= originalFirst.englishKept - 0.03, 'English as under original-first, within 3 points');
  t.true(newFirst.englishKept < keep.englishKept - 0.1, 'new-first changes English much more');
  t.true(keep.russianGain >= newFirst.russianGain * 0.98, 'Russian gains what new-first gains');
  t.true(keep.russianGain > originalFirst.russianGain * 1.1, 'and clearly more than original-first');
});
