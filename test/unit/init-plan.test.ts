/**
 * The initialisation plan (ts/init/buildInitPlan.ts, docs/method.md §2) on real tokenizers, without the addon:
 * Mistral's SentencePiece-style BPE (byte fallback) and the byte-level LLaMa-3 fixture, in both directions
 * and as Extended / Optimized vocabularies. Expected sub-tokens come from the old tokenizer's own encoder
 * on the plain word (which adds the prefix space once), not from the code under test.
 */
import { join } from 'node:path';

import test from 'ava';

import { mistralTokenizerDir } from '../../ts/data/builtinTokenizers.js';
import { buildInitPlan, planArrays, type InitPlan } from '../../ts/init/buildInitPlan.js';
import { oldSpellings, pieceSurface, splitSurface } from '../../ts/init/surface.js';
import { SurfaceEncoder } from '../../ts/init/surfaceEncoder.js';
import { extendTokenizer } from '../../ts/tokenizer/extend.js';
import { shrinkTokenizer } from '../../ts/tokenizer/shrink.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { donorFor } from '../initHelpers.js';

const LLAMA3 = join(process.cwd(), 'test/fixtures/llama3-8k');
const mistral = Tokenizer.fromDir(mistralTokenizerDir());
const llama3 = Tokenizer.fromDir(LLAMA3);
const WORDS = ['▁привет', '▁мир', '▁человек', '▁работа'];

function extended(original: Tokenizer, words = WORDS): Tokenizer {
  const r = extendTokenizer(original, donorFor(words));
  return Tokenizer.fromJson(JSON.stringify(r.json), r.config);
}

const entry = (plan: InitPlan, tok: Tokenizer, token: string) => {
  const id = tok.tokenToId(token);
  if (id === undefined) throw new Error(`no ${token}`);
  return { id, ...plan.rows[id]! };
};

test('surface strings: "▁" and "Ġ" spell a space, <0xNN> is its byte, half a UTF-8 character stays a byte', (t) => {
  t.deepEqual([...pieceSurface('▁мир', 'sentencepiece').bytes], [...new TextEncoder().encode(' мир')]);
  t.deepEqual([...pieceSurface('ĠÐ¼Ð¸ÑĢ', 'byte-level').bytes], [...new TextEncoder().encode(' мир')]);
  t.deepEqual(pieceSurface('<0x0A>', 'sentencepiece'), { bytes: new Uint8Array([10]), byteFallback: true });
  t.deepEqual(oldSpellings(pieceSurface('Ð', 'byte-level'), 'sentencepiece'), ['<0xD0>']);
  t.deepEqual(oldSpellings(pieceSurface('<0x41>', 'sentencepiece'), 'sentencepiece'), ['<0x41>', 'A']);
  t.deepEqual(oldSpellings(pieceSurface('A', 'byte-level'), 'sentencepiece'), ['A', '<0x41>']);
  t.deepEqual(oldSpellings(pieceSurface('▁мир', 'sentencepiece'), 'byte-level'), ['ĠÐ¼Ð¸ÑĢ']);
  t.deepEqual(splitSurface(new Uint8Array([0x20, 0xd0, 0xbc, 0xd0])), [{ text: ' м' }, { byte: 0xd0 }]);
});

test('surface encoder: no prefix space, no BOS; " привет" gives what the tokenizer gives for the word in running text', async (t) => {
  for (const [tok, word] of [[mistral, 'привет'], [llama3, 'привет'], [mistral, 'человек']] as const) {
    const [surface] = await new SurfaceEncoder(tok).encodeAll([` ${word}`]);
    // Mistral's own pipeline prepends "▁" to the input once; LLaMa-3 needs the space written.
    const own = await tok.encode(tok.byteLevel ? ` ${word}` : word);
    t.deepEqual(surface, own, `${word} with ${tok.byteLevel ? 'llama3' : 'mistral'}`);
  }
  const [noSpace] = await new SurfaceEncoder(mistral).encodeAll(['вет']);
  t.false(noSpace!.map((id) => mistral.idToToken(id)).join('').startsWith('▁'), 'a word-internal piece gets no "▁"');
});

test('Extended (SentencePiece-style): originals copied in place, a merged token averages its old pieces, specials by string', async (t) => {
  const ext = extended(mistral);
  const plan = await buildInitPlan(mistral, ext);
  t.is(plan.oldSize, 32000);
  for (let id = 0; id < 32000; id++) {
    const r = plan.rows[id]!;
    if (r.ids.length !== 1 || r.ids[0] !== id) t.fail(`original id ${id} (${mistral.idToToken(id)}) planned as ${JSON.stringify(r)}`);
  }
  t.is(plan.rows[1]!.source, 'special');
  const hello = entry(plan, ext, '▁привет');
  t.true(hello.id >= 32000);
  t.is(hello.source, 'mean');
  t.deepEqual(hello.ids, await mistral.encode('привет'));
  t.true(hello.ids.length > 1);
});

test('Extended (byte-level LLaMa-3): "Ġпривет" averages the byte-level pieces of " привет"', async (t) => {
  const ext = extended(llama3);
  const plan = await buildInitPlan(llama3, ext);
  for (let id = 0; id < 8005; id++) t.deepEqual(plan.rows[id]!.ids, [id]);
  const hello = entry(plan, ext, 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ');
  t.is(hello.source, 'mean');
  t.deepEqual(hello.ids, await llama3.encode(' привет'));
  // the chat template names <|eot_id|> etc.: used specials are planned as a one-row mean (usable even if never trained)
  t.is(plan.rows[8004]!.source, 'special');
});

test('byte-level tokenizer on a SentencePiece model: half characters map to <0xNN>, "Ġthe" copies "▁the", unknown specials get the global mean', async (t) => {
  const plan = await buildInitPlan(mistral, llama3);
  const half = entry(plan, llama3, 'Ð'); // byte 0xD0, the first half of most Cyrillic letters
  t.is(half.source, 'copy');
  t.deepEqual(half.ids, [mistral.tokenToId('<0xD0>')!]);
  t.deepEqual(entry(plan, llama3, 'Ġthe').ids, [mistral.tokenToId('▁the')!]);
  t.deepEqual(entry(plan, llama3, 'Ċ').ids, [mistral.tokenToId('<0x0A>')!]);
  const bot = entry(plan, llama3, '<|begin_of_text|>');
  t.is(bot.source, 'special-mean');
  t.deepEqual(bot.ids, []);
  t.is(plan.counts['special-mean'], 5);
});

test('SentencePiece tokenizer on a byte-level model: byte-fallback pieces map to the byte, specials without a counterpart get the global mean', async (t) => {
  const plan = await buildInitPlan(llama3, mistral);
  t.deepEqual(entry(plan, mistral, '<0x0A>').ids, [llama3.tokenToId('Ċ')!]);
  t.deepEqual(entry(plan, mistral, '<0xD0>').ids, [llama3.tokenToId('Ð')!]);
  t.is(entry(plan, mistral, '<0xD0>').source, 'copy');
  t.deepEqual(entry(plan, mistral, '▁the').ids, [llama3.tokenToId('Ġthe')!]);
  for (const s of ['<unk>', '<s>', '</s>']) t.is(entry(plan, mistral, s).source, 'special-mean');
  const ru = entry(plan, mistral, '▁при');
  t.is(ru.source, 'mean');
  t.deepEqual(ru.ids, await llama3.encode(' при'));
});

test('Optimized: the id map moves kept rows to their new ids; a foreign id map is refused', async (t) => {
  const shrunk = await shrinkTokenizer(mistral, null, { keep: 3000, rule: 'first-ids' });
  const ext = extendTokenizer(shrunk, donorFor(WORDS));
  const opt = Tokenizer.fromJson(JSON.stringify(ext.json), ext.config);
  const plan = await buildInitPlan(mistral, opt, { idMap: shrunk.idMap });
  t.is(plan.counts['id-map'], shrunk.idMap.new_size);
  shrunk.idMap.new_to_old.forEach((o, n) => {
    if (plan.rows[n]!.source !== 'id-map' || plan.rows[n]!.ids[0] !== o) t.fail(`new ${n} -> ${JSON.stringify(plan.rows[n])}, want old ${o}`);
  });
  t.is(entry(plan, opt, '▁привет').source, 'mean');
  const e = await t.throwsAsync(buildInitPlan(llama3, opt, { idMap: shrunk.idMap }));
  t.is((e as { code?: string }).code, 'LEP_ID_MAP_MISMATCH');
  t.regex(e!.message, /old_size is 32000 but the model's tokenizer has 8005 ids[\s\S]*HINT/);
});

test('rules and overrides: random / global-mean replace only re-tokenised rows; copyRows names the source row', async (t) => {
  const ext = extended(llama3);
  const random = await buildInitPlan(llama3, ext, { rule: 'random' });
  t.is(random.counts.mean, 0);
  t.true(random.counts.random > 0);
  t.is(random.counts.copy, (await buildInitPlan(llama3, ext)).counts.copy);
  const gm = await buildInitPlan(llama3, ext, { rule: 'global-mean' });
  t.is(entry(gm, ext, 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ').source, 'global-mean');
  const o = await buildInitPlan(llama3, ext, { copyRows: { 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ': '<|eot_id|>' } });
  t.like(entry(o, ext, 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ'), { source: 'override', ids: [8004] });
  const bad = await t.throwsAsync(buildInitPlan(llama3, ext, { copyRows: { 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ': '<nope>' } }));
  t.regex(bad!.message, /Expected a token of the old tokenizer for copyRows\["ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ"\] \(--copy-row\) but received "<nope>"/);
});

test('donor rules: new tokens the donor has (by surface) become omp/focus rows with their donor id and the mean ids as fallback; the rest stay mean', async (t) => {
  const ext = extended(llama3);
  // A SentencePiece-style donor that knows two of the four words (and, as Mistral's vocabulary, "▁the" etc.).
  const donor = extended(mistral, ['▁привет', '▁мир']);
  const plan = await buildInitPlan(llama3, ext, { rule: 'omp', donor });
  const mean = await buildInitPlan(llama3, ext);
  const hello = entry(plan, ext, 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ');
  t.like(hello, { source: 'omp', kind: 4, donorId: donor.tokenToId('▁привет') });
  t.deepEqual(hello.ids, entry(mean, ext, 'ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ').ids, 'the mean ids stay as the fallback');
  t.like(entry(plan, ext, 'ĠÑĩÐµÐ»Ð¾Ð²ÐµÐº'), { source: 'omp', donorId: mistral.tokenToId('▁человек') }, 'a word Mistral itself has');
  t.is(entry(plan, ext, 'ĠÑĩÐµÐ»').source, 'mean', 'a piece the donor lacks (" чел") keeps the mean');
  t.is(plan.counts.omp + plan.counts.mean, mean.counts.mean);
  // Shared tokens: old ids paired with the donor id of the same surface, across spelling styles.
  const shared = new Map(plan.shared!.old.map((o, i) => [o, plan.shared!.donor[i]!]));
  t.is(shared.get(llama3.tokenToId('Ġthe')!), donor.tokenToId('▁the'));
  t.is(shared.get(llama3.tokenToId('Ċ')!), donor.tokenToId('<0x0A>'));
  t.is(new Set(plan.shared!.donor).size, plan.shared!.donor.length, 'each donor id once');
  t.true(plan.shared!.old.length > 4000, `${plan.shared!.old.length} shared tokens`);
  const focus = await buildInitPlan(llama3, ext, { rule: 'focus', donor });
  t.is(entry(focus, ext, 'ĠÐ¼Ð¸ÑĢ').source, 'focus');
  const arrays = planArrays(plan);
  t.is(arrays.rowDonor[hello.id], hello.donorId);
  t.is(arrays.rowDonor[0], -1);
  t.deepEqual(Array.from(arrays.ids.subarray(arrays.offsets[hello.id], arrays.offsets[hello.id + 1])), hello.ids);
  const e = await t.throwsAsync(buildInitPlan(llama3, ext, { rule: 'omp' }));
  t.regex(e!.message, /rule "omp" needs donor tokenizer/);
});
