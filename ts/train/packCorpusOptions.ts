/**
 * The options of `lep data pack` / `packCorpus`, written once (see options/optionSpec.ts): the TS type, the
 * validation, the CLI flags and help derive from this table. How the text is read is the corpus reader's
 * (READ_TEXTS_SPEC): the keys taken from it are its options, with its defaults.
 */
import { Type } from '@sinclair/typebox';

import { READ_TEXTS_SPEC } from '../corpus/readTextsOptions.js';
import { defineOptions, oneOf, pickOptions } from '../options/optionSpec.js';

export const PACK_KINDS = ['text', 'chat'] as const;

export const PACK_SPEC = defineOptions({
  // A block predicts its tokens 2..seqLen, so it needs two at least.
  seqLen: { schema: Type.Integer({ minimum: 2 }), required: true, doc: 'Tokens per block.' },
  kind: {
    schema: oneOf(...PACK_KINDS),
    default: 'text',
    doc: 'text: documents (blank-line separated, or JSONL records) packed into blocks; chat: JSONL of {"messages": [...]} rendered by the chat template, loss on assistant tokens only.',
  },
  maxBlocks: { schema: Type.Integer({ minimum: 0 }), default: 0, doc: 'Stop after this many blocks (0 = no limit).' },
  // Text kind: how the corpus is read (chat reads each JSONL line as it is).
  ...pickOptions(READ_TEXTS_SPEC, ['maxChars', 'normalize', 'script', 'textField']),
});
