// Readers under hostile input (issue 15), without the addon: one corpus line must not become one huge
// item, and tokenizer.json cases the fuzzers found (fuzz/corpus/tokenizer_json/crash-*) stay named errors.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { readRecipe } from '../../ts/adapt/recipe.js';
import { boundedPieces, readTexts } from '../../ts/corpus/readCorpus.js';
import { MAX_LINE_BYTES } from '../../ts/corpus/readLineBatches.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('lep-hostile-');
const code = (e: unknown): string | undefined => (e as { code?: string }).code;

async function all(file: string, options: Parameters<typeof readTexts>[1] = {}): Promise<string[]> {
  const out: string[] = [];
  for await (const t of readTexts(file, options)) out.push(t);
  return out;
}

test('one 3-million-character line is read as pieces of at most maxItemChars, cut at spaces, nothing lost', async (t) => {
  const words = Array.from({ length: 300_000 }, (_, i) => `слово${i % 10}`);  // 3.0 M characters
  const line = words.join(' ');
  const file = join(dir, 'long.txt');
  writeFileSync(file, `short line\n${line}\n`);
  const items = await all(file);
  t.is(items[0], 'short line');
  const pieces = items.slice(1);
  t.true(pieces.length >= 3, `${pieces.length} pieces`);
  t.true(pieces.every((p) => p.length <= 1_000_000));
  t.true(pieces.slice(0, -1).every((p) => p.endsWith(' ')), 'cut after a space');
  t.is(pieces.join(''), line);
  // maxChars now stops within one piece of the cap instead of after the whole line.
  const capped = await all(file, { maxChars: 50_000, maxItemChars: 10_000 });
  t.is(capped.join('').length <= 60_000, true);
});

test('a document without blank lines is flushed at the bound', async (t) => {
  const file = join(dir, 'doc.txt');
  writeFileSync(file, Array.from({ length: 50 }, (_, i) => `line ${i} ${'x'.repeat(90)}`).join('\n'));
  const docs = await all(file, { mode: 'document', maxItemChars: 1000 });
  t.true(docs.length >= 5);
  t.true(docs.every((d) => d.length <= 1000));
  t.is(docs.join('\n').split('\n').length, 50);
});

test('boundedPieces never splits a surrogate pair', (t) => {
  const text = '😀'.repeat(10);  // 20 code units, no spaces
  const pieces = [...boundedPieces(text, 5)];
  t.is(pieces.join(''), text);
  t.true(pieces.every((p) => !/^[\udc00-\udfff]/.test(p) && p.length <= 5));
});

test('a line longer than MAX_LINE_BYTES is refused with file and line, not gathered into memory', async (t) => {
  const file = join(dir, 'nonl.txt');
  writeFileSync(file, `ok\n${'a'.repeat(MAX_LINE_BYTES + (2 << 20))}`);
  const e = await t.throwsAsync(all(file));
  t.is(code(e), 'LEP_CORPUS_LINE_TOO_LONG');
  t.regex(e!.message, /nonl\.txt:2: a line longer than 67108864 bytes \(it starts at byte 3\)/);
});

const seeds = join(import.meta.dirname, '..', '..', '..', 'fuzz', 'corpus', 'tokenizer_json');

test('fuzz regression: a chat_template list with a null entry is skipped, not dereferenced', (t) => {
  const [text, config] = JSON.parse(readFileSync(join(seeds, 'crash-chat-template-null-entry.input.json'), 'utf8')) as [string, Record<string, unknown>];
  t.is(Tokenizer.fromJson(text, config).chatTemplate, undefined);
  t.is(Tokenizer.fromJson(text, { chat_template: [null, 3, { name: 'default', template: 'T' }] }).chatTemplate, 'T');
});

test('fuzz regression: a merge lacking the continuing_subword_prefix is a named error (tokenizers would abort the process)', (t) => {
  const [text] = JSON.parse(readFileSync(join(seeds, 'crash-subword-prefix-panic.input.json'), 'utf8')) as [string];
  const e = t.throws(() => Tokenizer.fromJson(text));
  t.is(code(e), 'LEP_BAD_TOKENIZER');
  t.regex(e!.message, /merge "▁ a" does not continue with the model's continuing_subword_prefix "\.MR3nac"/);
});

test('fuzz regression: a BPE model without "type" gets the same check (tokenizers reads it as BPE and would abort)', (t) => {
  const [text] = JSON.parse(readFileSync(join(seeds, 'crash-untyped-bpe-prefix-panic.input.json'), 'utf8')) as [string];
  t.is((JSON.parse(text) as { model: { type?: string } }).model.type, undefined);
  const e = t.throws(() => Tokenizer.fromJson(text));
  t.is(code(e), 'LEP_BAD_TOKENIZER');
  t.regex(e!.message, /does not continue with the model's continuing_subword_prefix "\}OFlz\]"/);
});

test('fuzz regression: a recipe key named like an Object.prototype method is an unknown key, not a TypeError', (t) => {
  const [kind, text] = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'fuzz', 'corpus', 'recipe', 'crash-prototype-key.input.json'), 'utf8')) as [string, string];
  const file = join(dir, `recipe.${kind}`);
  writeFileSync(file, text);
  const e = t.throws(() => readRecipe(file));
  t.is(code(e), 'LEP_BAD_RECIPE');
  t.regex(e!.message, /recipe\.tokenizer\.valueOf: unknown key/);
});
