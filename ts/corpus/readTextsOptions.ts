/**
 * The options of `readTexts` (how a corpus is read), written once (see options/optionSpec.ts): the TS type,
 * the validation, the corpus flags of the commands that read text (cli/corpusFlags.ts, lep data pack) and
 * the recipe's `corpus` keys derive from this table.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf } from '../options/optionSpec.js';

export const CORPUS_MODES = ['line', 'document'] as const;
export const CORPUS_FORMATS = ['auto', 'text', 'jsonl'] as const;
export const CORPUS_NORMALIZATIONS = ['none', 'NFC', 'NFKC'] as const;

/** A cap: 0 for none. */
const cap = Type.Integer({ minimum: 0 });

export const READ_TEXTS_SPEC = defineOptions({
  mode: {
    schema: oneOf(...CORPUS_MODES),
    default: 'line',
    doc: 'What one text is: each non-blank line, or each document (a block of non-blank lines between blank lines, joined by newlines; one JSONL record).',
  },
  format: { schema: oneOf(...CORPUS_FORMATS), default: 'auto', doc: 'How a file is read; auto: JSONL for .jsonl/.ndjson names (also .gz), plain text otherwise.' },
  textField: {
    // A dotted path (a.b) reaches into nested objects; no part may be empty.
    schema: Type.String({ pattern: '^[^.]+(\\.[^.]+)*$', title: 'a field name such as "text"' }),
    default: 'text',
    arg: 'NAME',
    doc: 'The JSONL field that holds the text (a.b reaches into nested objects).',
  },
  normalize: { schema: oneOf(...CORPUS_NORMALIZATIONS), default: 'none', recipe: true, doc: 'Unicode normalisation of every line, before the script filter.' },
  script: {
    schema: Type.String({ minLength: 1 }),
    arg: 'NAME',
    recipe: true,
    defaultDoc: 'no filter',
    doc: 'Keep only lines whose letters are mostly in this Unicode script (e.g. Cyrillic); lines without letters are dropped, and so is a document left empty.',
  },
  scriptShare: { schema: Type.Number({ exclusiveMinimum: 0, maximum: 1 }), default: 0.5, flag: false, doc: 'The share of a line\'s letters that must be in the script for it to be kept.' },
  maxItems: { schema: cap, default: 0, flag: 'max-lines', doc: 'Stop after this many texts (lines or documents; 0 = no cap).' },
  maxChars: { schema: cap, default: 0, recipe: true, doc: 'Stop once the texts read hold this many characters (UTF-16 code units; the text that reaches the cap is kept whole; 0 = no cap).' },
  maxItemChars: {
    schema: Type.Integer({ minimum: 2 }),
    default: 1_000_000,
    flag: false,
    doc: 'The longest text yielded, in characters: a longer one comes as pieces cut near a line break or space.',
  },
});
