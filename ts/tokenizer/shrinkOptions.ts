/**
 * The options of `lep tokenizer shrink` / `shrinkTokenizer` and `shrinkTokenizerDir`, written once (see
 * options/optionSpec.ts): the TS types, the validation, the CLI flags and help, the recipe's
 * `tokenizer.keep` and the resolved run (lep_tokenizer_run.json) derive from these tables. How the corpus
 * is read is READ_TEXTS_SPEC's (corpus/readTextsOptions.ts), the extend step's EXTEND_SPEC's (extendOptions.ts).
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf } from '../options/optionSpec.js';

export const SHRINK_RULES = ['frequency', 'first-ids'] as const;
export type ShrinkRule = (typeof SHRINK_RULES)[number];

export const SHRINK_SPEC = defineOptions({
  keep: {
    schema: Type.Integer({ minimum: 1 }),
    required: true,
    doc: 'Base tokens kept, the alphabet included (added tokens are kept on top).',
  },
  rule: {
    schema: oneOf(...SHRINK_RULES),
    default: 'frequency',
    doc: 'Which tokens are kept: frequency (the most used on --corpus, the paper) or first-ids (the lowest ids, the reference code).',
  },
  batchSize: { schema: Type.Integer({ minimum: 1 }), default: 256, flag: false, doc: 'Texts per encode call while counting frequencies.' },
});

/** shrinkTokenizerDir's own options, over SHRINK_SPEC's. */
export const SHRINK_DIR_SPEC = defineOptions({
  ...SHRINK_SPEC,
  corpus: {
    schema: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }))], { title: 'a corpus path or a list of them' }),
    flag: false,
    defaultDoc: 'none',
    doc: 'Target-language corpus (files, globs, directories; see readTexts); required by rule frequency.',
  },
  donorDir: {
    schema: Type.String({ minLength: 1 }),
    flag: 'donor',
    arg: 'DIR',
    defaultDoc: 'none: shrink only',
    doc: 'A donor tokenizer directory: the shrunk tokenizer is then extended with it (Optimized).',
  },
});
