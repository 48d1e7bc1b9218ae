/**
 * Extended vocabulary (extendTokenizer) on two real tokenizers: Mistral's SentencePiece-style BPE and the
 * byte-level LLaMa-3 fixture (test/fixtures/llama3-8k). The donor of new tokens is a genuine Russian BPE
 * built here: merges learned by plain BPE training on RU_TRAIN below, plus Mistral's 600 first Cyrillic
 * pieces with the Mistral merges among them, in the layout of Mistral's tokenizer.json. Measurements use
 * RU_HELD_OUT, which the donor never saw. Also: Optimized (shrink + extend) and bad inputs.
 */
import { join } from 'node:path';

import test from 'ava';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import { LepError } from '../../ts/errors.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { textToByteLevel } from '../../ts/tokenizer/byteLevel.js';
import type { Json } from '../../ts/tokenizer/bpeJson.js';
import { extendTokenizer, type ExtendOptions } from '../../ts/tokenizer/extend.js';
import { shrinkTokenizer } from '../../ts/tokenizer/shrink.js';
import { closureProblems, llama3, mistral } from '../tokenizerChecks.js';


// ---- texts -------------------------------------------------------------------------------------------

const RU_TRAIN = [
  'Привет! Меня зовут Анна, и я живу в небольшом городе на берегу Волги. Каждое утро я выхожу из дома, покупаю свежий хлеб в пекарне на углу и иду на работу пешком. Дорога занимает около двадцати минут, и за это время я успеваю подумать о предстоящем дне.',
  'Развитие современной науки невозможно представить без международного сотрудничества. Исследователи из разных стран обмениваются данными, публикуют совместные статьи и проводят эксперименты на общих установках. Такое взаимодействие ускоряет получение новых знаний и помогает решать сложные задачи.',
  'Государство уделяет большое внимание образованию и здравоохранению. В последние годы было построено много новых школ, больниц и поликлиник. Однако специалисты отмечают, что качество обслуживания зависит не только от зданий и оборудования, но прежде всего от подготовки людей, которые там работают.',
  'Осенью в лесу особенно красиво. Листья на деревьях становятся жёлтыми, оранжевыми и красными, а воздух наполняется запахом грибов и влажной земли. Многие жители города приезжают сюда по выходным, чтобы погулять, собрать грибы и отдохнуть от шума и суеты.',
  'Производство электроэнергии остаётся одной из важнейших отраслей экономики. Строительство новых электростанций требует значительных вложений, но обеспечивает предприятия и население надёжным источником энергии. Всё большее значение приобретают возобновляемые источники: солнце, ветер и вода.',
  'Мой дедушка всю жизнь проработал учителем истории. Он рассказывал нам о прошлом так увлекательно, что мы могли слушать его часами. Благодаря ему я полюбила читать книги о древних государствах, великих путешествиях и удивительных открытиях.',
  'Для решения этой задачи необходимо сначала определить основные требования к системе, затем составить план работы и распределить обязанности между участниками проекта. Важно регулярно проверять результаты и своевременно исправлять ошибки, чтобы избежать серьёзных проблем в будущем.',
  'Вечером на площади собрались жители соседних деревень. Музыканты играли народные песни, дети водили хороводы, а взрослые обсуждали урожай и новости. Праздник продолжался до поздней ночи, и никто не хотел расходиться по домам.',
];

const RU_HELD_OUT = [
  'Путешествие по железной дороге через всю страну занимает почти неделю. За окном сменяются леса, степи, горы и бесконечные поля. Пассажиры знакомятся друг с другом, пьют чай из стаканов в металлических подстаканниках и рассказывают истории из своей жизни.',
  'Руководство компании объявило о начале нового проекта, направленного на улучшение условий труда сотрудников. В рамках программы планируется обновить оборудование, организовать дополнительное обучение и увеличить количество рабочих мест в отделе исследований.',
  'Зимой в нашем городе выпадает много снега. Дети катаются на санках с горы, лепят снеговиков и строят снежные крепости. Взрослые же чаще всего жалуются на холод и пробки на дорогах, но втайне тоже радуются первому снегу.',
  'Учёные обнаружили, что изменение климата влияет на поведение многих животных. Некоторые птицы стали раньше возвращаться с юга, а отдельные виды рыб переселяются в более холодные воды. Эти наблюдения важны для понимания того, как природа приспосабливается к новым условиям.',
];

const EN = [
  'The quick brown fox jumps over the lazy dog. This sentence has been used for a very long time to test typewriters and computer keyboards, because it contains every letter of the English alphabet.',
  'In the early morning, the harbour was quiet except for the gulls circling above the fishing boats. An old man sat on the pier, mending his nets and watching the tide come in, as he had done for more than forty years.',
  'Researchers at the university published a study showing that regular exercise improves memory and concentration in older adults. The effect was strongest among participants who walked for at least thirty minutes a day.',
  'To install the package, run the following command in your terminal, then restart the application. If the installation fails, check that you have the required permissions and that your network connection is working.',
  'Version 2.4.1 was released on March 15, 2024, with 37 bug fixes, a 12% speed-up and "smart" quotes — finally.',
];

const sentences = (paragraphs: string[]): string[] => paragraphs.flatMap((p) => p.split(/(?<=[.!?])\s+/));

// ---- a genuine Russian BPE donor in Mistral's layout ---------------------------------------------------

const CYRILLIC_WORD = /^▁?[а-яё]+$/i;

/** Frequent Russian words and word endings (a general list, not taken from the held-out text). */
const RU_FREQUENT = `▁который ▁которые ▁которых ▁также ▁может ▁только ▁более ▁этого ▁после ▁время ▁между ▁через ▁когда
▁чтобы ▁очень ▁всего ▁года ▁люди ▁жизни ▁многих ▁нового ▁новых ▁условий ▁работы ▁стали ▁раньше ▁страны ▁почти
▁сейчас ▁всегда ▁никогда ▁сегодня ▁другой ▁других ▁первый ▁первому ▁человек ▁человека ▁несколько ▁потому ▁поэтому
▁однако ▁например ▁конечно ▁является ▁являются ▁будет ▁будут ▁должен ▁можно ▁нужно ▁нельзя ▁вопрос ▁вопросы
▁развития ▁развитие ▁системы ▁система ▁города ▁городе ▁дороге ▁дорогах ▁компании ▁компания ▁программы ▁проекта
▁государства ▁общества ▁количество ▁качество ▁внимание ▁решение ▁решения ▁изменение ▁изменения ▁понимания
▁исследований ▁исследования ▁обучение ▁образования ▁оборудование ▁сотрудников ▁животных ▁природа ▁природы
▁снега ▁холод ▁холодные ▁зимой ▁летом ▁весной ▁осенью ▁дети ▁взрослые ▁семья ▁друг ▁другом ▁своей ▁своих
▁нашем ▁нашей ▁наших ▁всю ▁всех ▁тоже ▁чаще ▁более ▁менее ▁стране ▁страну ▁неделю ▁истории ▁рассказывают
ость ости ение ения ением ениями ство ства ству ствие ские ских ского ской ными ного ной ные ных ному ющие ющих
ается ются ились ался алась ировать ировали ение ённые енных ование ования ованные ованных ельно ельных ательно`;

/** Plain BPE training (SentencePiece-style words: "▁" before a word that follows whitespace), Cyrillic runs only. */
function trainBpe(texts: string[], numMerges: number): [string, string][] {
  const words = new Map<string, number>();
  for (const text of texts)
    for (const chunk of text.split(/\s+/).filter(Boolean))
      for (const run of `▁${chunk}`.match(/▁?[а-яё]+/gi) ?? []) words.set(run, (words.get(run) ?? 0) + 1);
  const segs = [...words].map(([w, n]) => ({ s: [...w], n }));
  const merges: [string, string][] = [];
  for (let i = 0; i < numMerges; i++) {
    const pairs = new Map<string, number>();
    for (const { s, n } of segs) for (let j = 0; j + 1 < s.length; j++) pairs.set(`${s[j]} ${s[j + 1]}`, (pairs.get(`${s[j]} ${s[j + 1]}`) ?? 0) + n);
    let best: string | undefined;
    let bestN = 1;
    for (const [p, n] of pairs) if (n > bestN || (n === bestN && best !== undefined && p < best)) [best, bestN] = [p, n];
    if (!best) break;
    const [a, b] = best.split(' ') as [string, string];
    merges.push([a, b]);
    for (const seg of segs) {
      const out: string[] = [];
      for (let j = 0; j < seg.s.length; j++) {
        if (seg.s[j] === a && seg.s[j + 1] === b) {
          out.push(a + b);
          j++;
        } else out.push(seg.s[j]!);
      }
      seg.s = out;
    }
  }
  return merges;
}

/**
 * The donor: Mistral's first 1000 Cyrillic pieces with the Mistral merges among them (in Mistral order),
 * then 400 merges learned by BPE on RU_TRAIN, then RU_FREQUENT, each word split greedily into existing
 * pieces and joined left to right by new merges (so every piece is built by a merge from characters).
 * Layout: <unk> <s> </s>, <0x00>..<0xFF>, pieces, single characters; Mistral's normalizer and decoder.
 */
function makeRussianDonor(): Json {
  const mv = (mistral.json.model as Json).vocab as Record<string, number>;
  const mm = ((mistral.json.model as Json).merges as string[]).map((m) => m.split(' ') as [string, string]);
  const pieces: string[] = [];
  const have = new Set<string>(['▁', ...'абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ']);
  const merges: [string, string][] = [];
  const mergeKeys = new Set<string>();
  const addMerge = (a: string, b: string): void => {
    if (!have.has(a) || !have.has(b) || mergeKeys.has(`${a} ${b}`)) return;
    mergeKeys.add(`${a} ${b}`);
    merges.push([a, b]);
    if (!have.has(a + b)) {
      have.add(a + b);
      pieces.push(a + b);
    }
  };
  // Mistral's Cyrillic pieces, shortest first so that merge parts exist before the merges that use them.
  const cyr = new Set(Object.entries(mv).filter(([t]) => CYRILLIC_WORD.test(t) && [...t].length > 1).sort((x, y) => x[1] - y[1]).slice(0, 1000).map(([t]) => t));
  for (let len = 2; len <= 20; len++) for (const [a, b] of mm) if (cyr.has(a + b) && [...(a + b)].length === len) addMerge(a, b);
  for (const [a, b] of trainBpe(RU_TRAIN, 400)) addMerge(a, b);
  for (const word of RU_FREQUENT.split(/\s+/).filter(Boolean)) {
    const segs: string[] = [];
    for (let i = 0; i < word.length; ) {
      let j = word.length;
      while (j > i + 1 && !have.has(word.slice(i, j))) j--;
      segs.push(word.slice(i, j));
      i = j;
    }
    let acc = segs[0]!;
    for (const seg of segs.slice(1)) {
      addMerge(acc, seg);
      acc += seg;
    }
  }
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  for (const p of [...pieces, ...[...have].filter((c) => [...c].length === 1).sort()]) if (!Object.hasOwn(vocab, p)) vocab[p] = Object.keys(vocab).length;
  return {
    ...mistral.json,
    added_tokens: structuredClone(mistral.json.added_tokens),
    model: { ...(mistral.json.model as Json), vocab, merges: merges.map((m) => m.join(' ')) },
  };
}

const donor = makeRussianDonor();

// ---- helpers -----------------------------------------------------------------------------------------

const load = (files: { json: Json; config?: Json }): Tokenizer => Tokenizer.fromJson(JSON.stringify(files.json), files.config ?? {});

async function symbolsPerToken(tok: Tokenizer, texts: string[]): Promise<number> {
  const ids = await tok.encodeBatch(texts);
  const chars = texts.reduce((s, t) => s + [...t].length, 0);
  return chars / ids.reduce((s, x) => s + x.length, 0);
}

async function changedShare(a: Tokenizer, b: Tokenizer, texts: string[]): Promise<number> {
  const [x, y] = [await a.encodeBatch(texts), await b.encodeBatch(texts)];
  return texts.filter((_, i) => JSON.stringify(x[i]) !== JSON.stringify(y[i])).length / texts.length;
}

/** Every original token string (base and added) keeps its id in the HF-loaded result; specials keep their flags. */
function assertIdsKept(t: import('ava').ExecutionContext, original: { json: Json }, extended: { json: Json }, ext: Tokenizer): void {
  const ov = (original.json.model as Json).vocab as Record<string, number>;
  const ev = ext.vocab();
  let moved = 0;
  for (const [tok, id] of Object.entries(ov)) if (ev[tok] !== id) moved++;
  t.is(moved, 0, 'no original base token moved');
  const ea = extended.json.added_tokens as Json[];
  for (const a of original.json.added_tokens as Json[]) {
    t.is(ev[a.content as string], a.id as number, `added token ${a.content as string} keeps its id`);
    t.deepEqual(ea.find((e) => e.content === a.content), a, `added token ${a.content as string} unchanged`);
  }
}

// ---- the donor is a genuine tokenizer --------------------------------------------------------------------

test('the Russian donor is a working SentencePiece-style BPE', async (t) => {
  const tok = load({ json: donor });
  t.true(tok.size > 900, `donor has ${tok.size} tokens`);
  const text = RU_HELD_OUT.join('\n');
  t.is(await tok.decode(await tok.encode(text)), text);
  const mistralVocab = (mistral.json.model as Json).vocab as Record<string, number>;
  const fresh = Object.keys((donor.model as Json).vocab as Json).filter((p) => !Object.hasOwn(mistralVocab, p));
  t.true(fresh.length > 50, `${fresh.length} donor pieces Mistral lacks, e.g. ${fresh.slice(0, 12).join(' ')}`);
});

// ---- Mistral (SentencePiece-style) -----------------------------------------------------------------------

test('Mistral, new-first (the reference code order): ids kept, new ids dense after 32000, loads, round-trips, Russian symbols/token rises', async (t) => {
  const res = extendTokenizer(mistral, donor, { mergeOrder: 'new-first' });
  const { stats } = res;
  t.is(stats.originalSize, 32000);
  t.true(stats.newTokens > 100, `${stats.newTokens} new tokens`);
  t.is(stats.size, 32000 + stats.newTokens);
  const model = res.json.model as Json;
  t.true(model.ignore_merges as boolean);
  const newIds = Object.values(model.vocab as Record<string, number>).filter((id) => id >= 32000).sort((a, b) => a - b);
  t.deepEqual(newIds, Array.from({ length: stats.newTokens }, (_, i) => 32000 + i));
  t.deepEqual(closureProblems(res.json), []);
  t.deepEqual(res.config, mistral.config, 'tokenizer_config.json copied unchanged');

  // Loads in Hugging Face tokenizers directly.
  const hf = HfTokenizer.fromString(JSON.stringify(res.json));
  t.is(hf.getVocabSize(true), stats.size);
  const [orig, ext] = [load(mistral), load(res)];
  assertIdsKept(t, mistral, res, ext);
  t.is(ext.specialId('bos'), 1);
  t.is(ext.specialId('eos'), 2);
  t.deepEqual(await ext.encode('Привет', { addSpecialTokens: true }).then((ids) => ids[0]), 1, 'BOS still prepended');

  for (const text of [...RU_HELD_OUT, ...EN, `${RU_HELD_OUT[0]} ${EN[0]} 123 🙂 ѣ`]) t.is(await ext.decode(await ext.encode(text)), text);
  const [before, after] = [await symbolsPerToken(orig, RU_HELD_OUT), await symbolsPerToken(ext, RU_HELD_OUT)];
  t.true(after > before, `Russian symbols/token ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  const [enChanged, ruChanged] = [await changedShare(orig, ext, sentences(EN)), await changedShare(orig, ext, sentences(RU_HELD_OUT))];
  t.log(`Mistral + donor (new-first): ${stats.newTokens} new tokens, size ${stats.size}; Russian symbols/token ${before.toFixed(3)} -> ${after.toFixed(3)}; ` +
    `changed encodings: English ${(100 * enChanged).toFixed(0)}% of sentences, Russian ${(100 * ruChanged).toFixed(0)}%`);
  t.log(`stats ${JSON.stringify(stats)}`);
});

test('Mistral, original-first: English encodes to identical ids; Russian still improves', async (t) => {
  const res = extendTokenizer(mistral, donor, { mergeOrder: 'original-first' });
  const [orig, ext] = [load(mistral), load(res)];
  assertIdsKept(t, mistral, res, ext);
  const model = res.json.model as Json;
  t.is(model.ignore_merges, false, 'the original ignore_merges (absent = false) is kept');
  t.deepEqual((model.merges as string[]).slice(0, 58980), (mistral.json.model as Json).merges as string[]);
  t.deepEqual(await ext.encodeBatch(EN), await orig.encodeBatch(EN));
  t.is(await changedShare(orig, ext, sentences(EN)), 0);
  const [before, after] = [await symbolsPerToken(orig, RU_HELD_OUT), await symbolsPerToken(ext, RU_HELD_OUT)];
  t.true(after > before);
  t.log(`Mistral original-first: Russian symbols/token ${before.toFixed(3)} -> ${after.toFixed(3)}; changed Russian ${(100 * (await changedShare(orig, ext, sentences(RU_HELD_OUT)))).toFixed(0)}%`);
});

// ---- LLaMa-3 fixture (byte-level) ------------------------------------------------------------------------

test('LLaMa-3 byte-level, new-first (the reference code order): donor pieces in byte-level form, specials and chat template intact', async (t) => {
  const res = extendTokenizer(llama3, donor, { mergeOrder: 'new-first' });
  const { stats } = res;
  t.is(stats.originalSize, 8005, 'new ids start after the specials at 8000..8004');
  const vocab = (res.json.model as Json).vocab as Record<string, number>;
  t.true(Object.hasOwn(vocab, textToByteLevel(' при')), '"▁при" became "Ġ" + UTF-8 bytes');
  t.false(Object.keys(vocab).some((k) => k.includes('▁') || (/^<0x/.test(k) && !(k in ((llama3.json.model as Json).vocab as Json)))), 'no "▁" and no <0xNN> pieces carried over');
  t.true(stats.merges.synthesised > 0, 'letters missing from the fixture are built byte by byte');
  t.is(stats.donorPiecesSkipped.addedTokens, 3, "the donor's <unk> <s> </s> are not carried");
  t.false(Object.hasOwn(vocab, '<s>'));
  t.is(Object.values(vocab).filter((id) => id >= 8000).sort((a, b) => a - b).slice(0, 6).join(), '8000,8001,8002,8003,8004,8005',
    'the specials enter model.vocab under their ids (HF would renumber them otherwise), new tokens follow');
  t.deepEqual(closureProblems(res.json), []);
  t.deepEqual(res.config, llama3.config);

  const [orig, ext] = [load(llama3), load(res)];
  assertIdsKept(t, llama3, res, ext);
  const chat = [{ role: 'system', content: 'Отвечай по-русски.' }, { role: 'user', content: 'Привет! Как дела?' }];
  const rendered = ext.applyChatTemplate(chat);
  t.is(rendered, orig.applyChatTemplate(chat));
  const ids = await ext.encode(rendered);
  for (const special of ['<|begin_of_text|>', '<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'])
    t.true(ids.includes(orig.tokenToId(special)!), `${special} encodes to its old id`);
  for (const text of [...RU_HELD_OUT, ...EN, rendered, '  отступ\n\tи табуляция  ', 'ёж 🙂 “кавычки” — тире']) t.is(await ext.decode(await ext.encode(text)), text);

  const [before, after] = [await symbolsPerToken(orig, RU_HELD_OUT), await symbolsPerToken(ext, RU_HELD_OUT)];
  t.true(after > before);
  const [enChanged, ruChanged] = [await changedShare(orig, ext, sentences(EN)), await changedShare(orig, ext, sentences(RU_HELD_OUT))];
  t.log(`LLaMa-3-8k + donor (new-first): ${stats.newTokens} new tokens (${stats.partsAdded} byte-level parts), ${stats.merges.synthesised} synthesised merges; ` +
    `Russian symbols/token ${before.toFixed(3)} -> ${after.toFixed(3)}; changed: English ${(100 * enChanged).toFixed(0)}%, Russian ${(100 * ruChanged).toFixed(0)}%`);
});

test('LLaMa-3 byte-level, original-first: English encodes to identical ids', async (t) => {
  const res = extendTokenizer(llama3, donor, { mergeOrder: 'original-first' });
  const [orig, ext] = [load(llama3), load(res)];
  assertIdsKept(t, llama3, res, ext);
  t.true((res.json.model as Json).ignore_merges as boolean, 'the fixture already had ignore_merges');
  t.deepEqual(await ext.encodeBatch([...EN, ...sentences(EN)]), await orig.encodeBatch([...EN, ...sentences(EN)]));
  const [before, after] = [await symbolsPerToken(orig, RU_HELD_OUT), await symbolsPerToken(ext, RU_HELD_OUT)];
  t.true(after > before);
  t.log(`LLaMa-3-8k original-first: Russian symbols/token ${before.toFixed(3)} -> ${after.toFixed(3)}`);
});

// ---- options ------------------------------------------------------------------------------------------

test('padToMultipleOf adds reserved special tokens up to the multiple; maxNewTokens caps new tokens, closure kept', async (t) => {
  const res = extendTokenizer(llama3, donor, { padToMultipleOf: 128, maxNewTokens: 150 });
  t.is(res.stats.newTokens, 150);
  t.is(res.stats.size % 128, 0);
  t.is(res.stats.size, 8064 + 128, '8005 + 150 = 8155 -> 8192');
  t.is(res.stats.reservedTokens, 8192 - 8155);
  const added = res.json.added_tokens as Json[];
  t.deepEqual(added.slice(5).map((a) => a.id), Array.from({ length: 37 }, (_, i) => 8155 + i));
  t.true(added.slice(5).every((a) => a.special === true && /^<\|reserved_\d+\|>$/.test(a.content as string)));
  const decoder = res.config.added_tokens_decoder as Record<string, Json>;
  t.is(decoder['8191']!.content, '<|reserved_36|>', 'reserved tokens enter added_tokens_decoder');
  t.deepEqual(closureProblems(res.json), []);
  const ext = load(res);
  t.is(ext.size, 8192);
  t.is(ext.tokenToId('<|reserved_0|>'), 8155);
  t.is(await ext.decode(await ext.encode(RU_HELD_OUT[0]!)), RU_HELD_OUT[0]!);
  t.is(extendTokenizer(mistral, donor, { maxNewTokens: 0 }).stats.size, 32000);
});

test('a donor user-defined symbol (non-special added token) is appended after the new tokens, before padding', async (t) => {
  const dv = (donor.model as Json).vocab as Record<string, number>;
  const sepId = Object.keys(dv).length;
  const withSep = {
    ...donor,
    added_tokens: [...(donor.added_tokens as Json[]), { id: sepId, content: '<sep>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: false }],
    model: { ...(donor.model as Json), vocab: { ...dv, '<sep>': sepId } },
  };
  const res = extendTokenizer(mistral, withSep, { padToMultipleOf: 64 });
  const n = res.stats.newTokens;
  t.is(res.stats.donorAddedTokens, 1);
  t.is(res.stats.size % 64, 0);
  const ext = load(res);
  t.is(ext.tokenToId('<sep>'), 32000 + n);
  t.is(ext.tokenToId('<|reserved_0|>'), 32001 + n);
  t.is(ext.size, res.stats.size);
  const decoder = res.config.added_tokens_decoder as Record<string, Json>;
  t.is(decoder[String(32000 + n)]!.content, '<sep>');
  t.false(decoder[String(32000 + n)]!.special as boolean);
  t.deepEqual(await ext.encode('а<sep>б').then((ids) => ids.includes(32000 + n)), true);
});

test('Optimized = shrink + extend on the byte-level fixture', async (t) => {
  const shrunk = await shrinkTokenizer(llama3, RU_TRAIN, { keep: 4000 });
  const res = extendTokenizer(shrunk, donor);
  t.is(res.stats.originalSize, 4005);
  t.deepEqual(closureProblems(res.json), []);
  const [orig, small, ext] = [load(llama3), load(shrunk), load(res)];
  for (const text of [...RU_HELD_OUT, ...EN]) t.is(await ext.decode(await ext.encode(text)), text);
  const ids = await ext.encode(ext.applyChatTemplate([{ role: 'user', content: 'Привет' }]));
  t.true(ids.includes(4004), '<|eot_id|> re-packed to 4004 and kept there by extend');
  const spt = await Promise.all([orig, small, ext].map((k) => symbolsPerToken(k, RU_HELD_OUT)));
  t.true(spt[2]! > spt[1]!);
  t.log(`LLaMa-3-8k Optimized (keep 4000 + donor): size ${res.stats.size}; Russian symbols/token original ${spt[0]!.toFixed(3)}, shrunk ${spt[1]!.toFixed(3)}, optimized ${spt[2]!.toFixed(3)}`);
});

// ---- bad input ------------------------------------------------------------------------------------------

test('clashing special tokens are a clear error', (t) => {
  const notSpecial = { ...donor, added_tokens: (donor.added_tokens as Json[]).map((a) => (a.content === '</s>' ? { ...a, special: false } : a)) };
  const e1 = t.throws(() => extendTokenizer(mistral, notSpecial), { instanceOf: LepError });
  t.is(e1.code, 'LEP_SPECIAL_TOKEN_CLASH');
  t.regex(e1.message, /extend: the donor's added token "<\/s>" is not special but the original's \(id 2\) is special\nHINT: /);
  const plainEot = { ...donor, model: { ...(donor.model as Json), vocab: { ...((donor.model as Json).vocab as Json), '<|eot_id|>': 5000 } } };
  t.throws(() => extendTokenizer(llama3, plainEot), {
    instanceOf: LepError,
    message: /the donor's vocabulary piece "<\|eot_id\|>" is plain text there but "<\|eot_id\|>" is an added special token of the original \(id 8004\)/,
  });
});

test('an extension over maxSize is a clear error with the room left', (t) => {
  const n = extendTokenizer(mistral, donor).stats.newTokens;
  const e = t.throws(() => extendTokenizer(mistral, donor, { maxSize: 32100 }), { instanceOf: LepError });
  t.is(e.code, 'LEP_VOCAB_TOO_LARGE');
  t.is(e.message, `extend: the extended vocabulary would have ${32000 + n} tokens (32000 original + ${n} new), more than maxSize (--max-size) 32100\nHINT: set maxNewTokens (--max-new-tokens) to at most 100, or raise maxSize.`);
  t.throws(() => extendTokenizer(mistral, donor, { maxSize: 32100, maxNewTokens: 90, padToMultipleOf: 64 }), { message: /32128 tokens \(32000 original \+ 90 new \+ 38 reserved\).*at most 64,/s });
  t.is(extendTokenizer(mistral, donor, { maxSize: 32100, maxNewTokens: 100 }).stats.size, 32100);
});

test('unsupported model types and bad options are clear errors', (t) => {
  const unigram = { ...mistral.json, model: { type: 'Unigram', unk_id: 0, vocab: [['<unk>', 0], ['▁a', -1]] } };
  t.throws(() => extendTokenizer({ json: unigram }, donor), {
    instanceOf: LepError,
    message: /^extend: the original tokenizer.json has model type Unigram; lep can extend only BPE vocabularies\nHINT: a Unigram vocabulary has no merges/,
  });
  const wordpiece = { ...mistral.json, model: { type: 'WordPiece', unk_token: '[UNK]', vocab: { '[UNK]': 0, a: 1 } } };
  t.throws(() => extendTokenizer({ json: wordpiece }, donor), { message: /original tokenizer.json has model type WordPiece; lep can extend only BPE/ });
  t.throws(() => extendTokenizer(mistral, unigram), { message: /the donor tokenizer.json has model type Unigram/ });
  const opts: [ExtendOptions, string][] = [
    [{ mergeOrder: 'paper' as never }, 'Expected "keep-ascii" or "new-first" or "original-first" for mergeOrder (--merge-order) but received "paper"'],
    [{ padToMultipleOf: 0 }, 'Expected a positive integer for padToMultipleOf (--pad-to-multiple-of) but received 0'],
    [{ maxNewTokens: -1 }, 'Expected a non-negative integer for maxNewTokens (--max-new-tokens) but received -1'],
    [{ maxSize: 1.5 }, 'Expected a positive integer for maxSize (--max-size) but received 1.5'],
    [{ reservedToken: '<r>' }, 'Expected a string containing "{k}" for reservedToken (--reserved-token) but received "<r>"'],
  ];
  // Each message is the option spec's (extendOptions.ts): the value, the option and its flag, then a HINT with the option's doc.
  for (const [o, message] of opts) t.throws(() => extendTokenizer(mistral, donor, o), { instanceOf: LepError, message: (m: string) => m.startsWith(`${message}\nHINT: `) });
  t.throws(() => extendTokenizer(mistral, donor, { mergeorder: 'new-first' } as never), { message: /^unknown option mergeorder\nHINT: the known options are mergeOrder, ignoreMerges/ });
});
