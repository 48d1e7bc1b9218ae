/**
 * Shrunk vocabulary (shrinkTokenizer, the first half of Optimized) on Mistral's SentencePiece-style BPE and
 * the byte-level LLaMa-3 fixture: exact size, closure under merges (checked by an independent function
 * below), specials and chat template intact, id map correct, text still round-trips; saveTokenizerDir;
 * bad input.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import test from 'ava';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import { LepError } from '../../ts/errors.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { BYTE_TO_CHAR } from '../../ts/tokenizer/byteLevel.js';
import type { Json } from '../../ts/tokenizer/bpeJson.js';
import { ID_MAP_FILE, saveTokenizerDir, shrinkTokenizer, type IdMap, type ShrinkResult } from '../../ts/tokenizer/shrink.js';
import { closureProblems, llama3, mistral } from '../tokenizerChecks.js';


const RU_CORPUS = [
  'Библиотека открывается в девять часов утра. Первыми приходят студенты, которые готовятся к экзаменам, а ближе к обеду появляются пенсионеры, чтобы почитать свежие газеты и журналы.',
  'Весной река выходит из берегов и затопляет луга. Местные жители заранее готовятся к половодью: поднимают вещи повыше, укрепляют заборы и проверяют лодки.',
  'Новая линия метро соединит центр города с отдалёнными районами. Строители обещают закончить работы через два года, но многие горожане сомневаются в этих сроках.',
  'Хороший учитель не просто передаёт знания, а учит думать самостоятельно. Он задаёт вопросы, на которые нет готовых ответов, и радуется, когда ученики спорят с ним.',
  'В маленьком кафе на углу варят лучший кофе в районе. Хозяйка знает всех постоянных посетителей по именам и всегда спрашивает, как у них дела.',
  'Компьютерные программы становятся всё сложнее, и ошибки в них обходятся всё дороже. Поэтому разработчики пишут автоматические тесты и проверяют каждое изменение.',
];
const EN = [
  'The committee will meet again next Tuesday to review the budget and discuss the proposed changes to the schedule.',
  'She opened the window, and the smell of rain and cut grass filled the small room at the top of the house.',
];

/** For each kept token: map[old] = new and the new tokenizer spells new as the old one spelled old; the map is a bijection onto 0..size-1. */
function assertIdMap(t: import('ava').ExecutionContext, map: IdMap, before: Tokenizer, after: Tokenizer): void {
  t.is(map.new_to_old.length, map.new_size);
  t.is(after.size, map.new_size);
  t.is(Object.keys(map.old_to_new).length, map.new_size);
  let bad = 0;
  map.new_to_old.forEach((oldId, newId) => {
    if (map.old_to_new[String(oldId)] !== newId || after.idToToken(newId) !== before.idToToken(oldId)) bad++;
  });
  t.is(bad, 0, 'every kept token keeps its string under its new id');
  const afterVocab = after.vocab();
  let leaked = 0;
  for (const [tok, oldId] of Object.entries(before.vocab())) if (!(String(oldId) in map.old_to_new) && Object.hasOwn(afterVocab, tok)) leaked++;
  t.is(leaked, 0, 'dropped tokens are gone');
}

async function tokenStrings(tok: Tokenizer, texts: string[]): Promise<string[][]> {
  return (await tok.encodeBatch(texts)).map((ids) => ids.map((i) => tok.idToToken(i)!));
}

const load = (r: { json: Json; config?: Json }): Tokenizer => Tokenizer.fromJson(JSON.stringify(r.json), r.config ?? {});

async function roundTrips(t: import('ava').ExecutionContext, tok: Tokenizer, texts: string[]): Promise<void> {
  for (const text of texts) t.is(await tok.decode(await tok.encode(text)), text);
}

test('Mistral, frequency rule: exactly N base tokens + 3 specials, closed, id map right, round-trips', async (t) => {
  const res = await shrinkTokenizer(mistral, RU_CORPUS, { keep: 8000 });
  t.is(res.stats.baseAfter, 8000);
  t.is(res.stats.size, 8003, 'N counts base tokens; <unk> <s> </s> come on top');
  t.is(Object.keys((res.json.model as Json).vocab as Json).length, 8003);
  t.is(HfTokenizer.fromString(JSON.stringify(res.json)).getVocabSize(true), 8003);
  t.deepEqual(closureProblems(res.json), []);
  const [before, after] = [load(mistral), load(res)];
  assertIdMap(t, res.idMap, before, after);
  t.deepEqual(res.json.added_tokens, mistral.json.added_tokens, '<unk> <s> </s> stay at 0..2 with their flags');
  t.deepEqual(res.config, mistral.config);
  t.is(after.specialId('bos'), 1);
  t.is((await after.encode('Привет', { addSpecialTokens: true }))[0], 1, 'post_processor still prepends <s>');
  const vocab = after.vocab();
  for (let b = 0; b < 256; b++) t.true(Object.hasOwn(vocab, `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
  t.true(Object.hasOwn(vocab, '▁'));
  // Every token the corpus used is kept (the corpus uses far fewer than 8000).
  const used = new Set((await before.encodeBatch(RU_CORPUS)).flat());
  t.true([...used].every((id) => String(id) in res.idMap.old_to_new), 'every token the corpus used is kept');
  await roundTrips(t, after, [...RU_CORPUS, ...EN, 'Mixed текст 42 — ✓ 漢字 🙂']);
  t.deepEqual(await tokenStrings(after, RU_CORPUS), await tokenStrings(before, RU_CORPUS), 'the corpus encodes to the same tokens: their BPE paths were kept');
  t.log(`Mistral keep 8000: ${res.stats.corpusTokens} corpus tokens (${used.size} distinct), ${res.stats.closureParts} closure parts, ${res.stats.unreachable} unreachable originals`);
});

test('LLaMa-3 byte-level, frequency rule: 256 bytes kept, specials re-packed after N, config and chat template follow', async (t) => {
  const res = await shrinkTokenizer(llama3, RU_CORPUS.concat(EN), { keep: 2000 });
  t.is(res.stats.size, 2005);
  t.is(res.stats.alphabet, 256);
  t.deepEqual(closureProblems(res.json), []);
  const [before, after] = [load(llama3), load(res)];
  assertIdMap(t, res.idMap, before, after);
  for (const c of BYTE_TO_CHAR) t.not(after.tokenToId(c), undefined);
  const specials = ['<|begin_of_text|>', '<|end_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'];
  t.deepEqual(specials.map((s) => after.tokenToId(s)), [2000, 2001, 2002, 2003, 2004]);
  t.deepEqual((res.json.added_tokens as Json[]).map((a) => ({ ...a, id: 0 })), (llama3.json.added_tokens as Json[]).map((a) => ({ ...a, id: 0 })), 'flags unchanged');
  const decoder = res.config.added_tokens_decoder as Record<string, Json>;
  t.deepEqual(Object.keys(decoder), ['2000', '2001', '2002', '2003', '2004']);
  t.deepEqual(Object.values(decoder), Object.values(llama3.config.added_tokens_decoder as Json));
  t.is(res.config.chat_template, llama3.config.chat_template);
  const chat = [{ role: 'user', content: 'Сколько будет два плюс два?' }];
  const rendered = after.applyChatTemplate(chat);
  t.is(rendered, before.applyChatTemplate(chat));
  const ids = await after.encode(rendered);
  t.deepEqual(ids.filter((i) => i >= 2000), [2000, 2002, 2003, 2004, 2002, 2003]);
  t.deepEqual(await tokenStrings(after, [...RU_CORPUS, ...EN]), await tokenStrings(before, [...RU_CORPUS, ...EN]));
  await roundTrips(t, after, [...RU_CORPUS, ...EN, rendered, '  пробелы\n\n\tи табы  ', 'emoji 🙂 and 漢字']);
});

test('first-ids rule: the fixture prefix is already closed, so exactly ids < N stay; Mistral gets its characters added', async (t) => {
  const res = await shrinkTokenizer(llama3, null, { keep: 3000, rule: 'first-ids' });
  t.deepEqual(res.idMap.new_to_old, [...Array.from({ length: 3000 }, (_, i) => i), 8000, 8001, 8002, 8003, 8004]);
  t.is(res.stats.corpusTokens, 0);
  t.deepEqual(closureProblems(res.json), []);
  assertIdMap(t, res.idMap, load(llama3), load(res));

  const m = await shrinkTokenizer(mistral, [], { keep: 5000, rule: 'first-ids' });
  t.is(m.stats.size, 5003);
  t.deepEqual(closureProblems(m.json), []);
  t.true(m.stats.closureParts > 0, `SentencePiece puts single characters last (ids ≥ 28706); ${m.stats.closureParts} of them join as merge parts`);
  t.true(m.idMap.new_to_old.slice(0, 4000).every((old, i) => old === i), 'the low ids come first and in order');
  await roundTrips(t, load(m), [...RU_CORPUS, ...EN]);
});

test('an async iterable corpus streams; results are deterministic', async (t) => {
  async function* stream(): AsyncGenerator<string> {
    for (const text of RU_CORPUS) yield text;
  }
  const a = await shrinkTokenizer(llama3, stream(), { keep: 1500, batchSize: 2 });
  const b = await shrinkTokenizer(llama3, RU_CORPUS, { keep: 1500 });
  t.is(a.stats.corpusTexts, RU_CORPUS.length);
  t.deepEqual(a.idMap, b.idMap);
  t.deepEqual(a.json, b.json);
});

test('saveTokenizerDir writes tokenizer.json, tokenizer_config.json and the id map atomically', async (t) => {
  const res: ShrinkResult = await shrinkTokenizer(llama3, RU_CORPUS, { keep: 1000 });
  const parent = mkdtempSync(join(tmpdir(), 'lep-shrink-'));
  t.teardown(() => rmSync(parent, { recursive: true, force: true }));
  const dir = join(parent, 'out');
  saveTokenizerDir(dir, res.json, res.config, { [ID_MAP_FILE]: res.idMap, 'NOTE.txt': 'shrunk\n' });
  const tok = Tokenizer.fromDir(dir);
  t.is(tok.size, 1005);
  t.is(tok.chatTemplate, llama3.config.chat_template as string);
  t.deepEqual(JSON.parse(readFileSync(join(dir, ID_MAP_FILE), 'utf8')), res.idMap);
  t.is(readFileSync(join(dir, 'NOTE.txt'), 'utf8'), 'shrunk\n');
  t.throws(() => saveTokenizerDir(dir, res.json, res.config, { '../x.json': {} }), { instanceOf: LepError, message: /for extraFiles but received "..\/x.json"/ });
});

test('bad input: keep out of range, unknown rule, empty corpus, unsupported model type', async (t) => {
  await t.throwsAsync(shrinkTokenizer(llama3, RU_CORPUS, { keep: 100 }), {
    instanceOf: LepError,
    message: 'Expected an integer from 256 (the base alphabet) to 8000 (the original base vocabulary) for keep (--keep) but received 100',
  });
  await t.throwsAsync(shrinkTokenizer(mistral, RU_CORPUS, { keep: 40000 }), { message: /from 257 \(the base alphabet\) to 31997 .* but received 40000/ });
  await t.throwsAsync(shrinkTokenizer(llama3, RU_CORPUS, { keep: 1000, rule: 'top' as never }), {
    message: /^Expected "frequency" or "first-ids" for rule \(--rule\) but received "top"\nHINT: rule \(--rule\): .* Defaults to frequency\.$/,
  });
  const e = await t.throwsAsync(shrinkTokenizer(llama3, ['', ''], { keep: 1000 }), { instanceOf: LepError });
  t.is(e.code, 'LEP_CORPUS_EMPTY');
  t.is(e.message, 'shrink: the corpus gave no tokens (2 texts)\nHINT: pass target-language text, or use rule "first-ids" (--rule first-ids), which needs no corpus.');
  const unigram = { json: { ...mistral.json, model: { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0]] } } };
  await t.throwsAsync(shrinkTokenizer(unigram, RU_CORPUS, { keep: 10 }), {
    instanceOf: LepError,
    message: /^shrink: the original tokenizer.json has model type Unigram; lep can shrink only BPE vocabularies\nHINT: /,
  });
});
