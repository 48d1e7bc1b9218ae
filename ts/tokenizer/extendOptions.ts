/**
 * The options of `lep tokenizer extend` / `extendTokenizer`, written once (see options/optionSpec.ts): the TS
 * type, the validation, the CLI flags and help (also lep tokenizer shrink's extend flags), the recipe's
 * `tokenizer.mergeOrder` and the resolved run (lep_tokenizer_run.json) derive from this table.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf } from '../options/optionSpec.js';

export const MERGE_ORDERS = ['keep-ascii', 'new-first', 'original-first'] as const;
/**
 * Where the new merges go: before the original ones except on ASCII text (keep-ascii, the default), before
 * all of them (new-first, the reference code's order) or after them (original-first).
 */
export type MergeOrder = (typeof MERGE_ORDERS)[number];

export const EXTEND_SPEC = defineOptions({
  mergeOrder: {
    schema: oneOf(...MERGE_ORDERS),
    default: 'keep-ascii',
    recipe: true,
    doc: "Where the donor's merges go: before the original ones, except merges that spell ASCII text, which follow them (keep-ascii: English words, code and the chat template's role names encode as before, the target language gets the donor's segmentation); before all of them (new-first, the paper's reference code: with a SentencePiece-style original, which has no word pre-tokenizer for ignore_merges to act on, it re-segments English, e.g. \"assistant\" as \"as si stant\"); or after them (original-first: original-language text encodes as before unless a new merge joins two of its tokens, but the target language gains less).",
  },
  ignoreMerges: {
    schema: Type.Boolean(),
    flag: false,
    defaultDoc: "true under keep-ascii and new-first (as the reference code), the original's own value under original-first",
    doc: "ignore_merges of the result's BPE model: a pre-token that is a whole vocabulary entry becomes that token without merging.",
  },
  maxNewTokens: {
    schema: Type.Integer({ minimum: 0 }),
    defaultDoc: 'all',
    doc: 'At most this many new base tokens, in donor order; parts needed to build them count too.',
  },
  padToMultipleOf: { schema: Type.Integer({ minimum: 1 }), default: 1, doc: 'Pad the total size (highest id + 1) up to a multiple of N with reserved special tokens (1 = no padding).' },
  reservedToken: {
    schema: Type.String({ pattern: '\\{k\\}', title: 'a string containing "{k}"' }),
    default: '<|reserved_{k}|>',
    arg: 'PATTERN',
    doc: 'Spelling of the reserved padding tokens; {k} is replaced by 0, 1, 2, ... (skipping strings in use).',
  },
  maxSize: { schema: Type.Integer({ minimum: 1 }), defaultDoc: 'no limit', doc: 'The largest total size (highest id + 1, padding included) allowed; larger is an error.' },
});
