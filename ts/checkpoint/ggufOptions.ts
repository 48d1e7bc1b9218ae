/**
 * The options of `lep export gguf` / `exportGguf`, written once (see options/optionSpec.ts): the TS type, the
 * validation, the CLI flags and help derive from this table.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf } from '../options/optionSpec.js';

export const GGUF_OUT_TYPES = ['f32', 'f16', 'bf16'] as const;
export type GgufOutType = (typeof GGUF_OUT_TYPES)[number];

export const GGUF_SPEC = defineOptions({
  outType: { schema: oneOf(...GGUF_OUT_TYPES), default: 'f16', flag: 'outtype', doc: 'Storage type of the matrices (norms and biases stay f32, as llama.cpp\'s converter does).' },
  name: { schema: Type.String({ minLength: 1 }), arg: 'NAME', defaultDoc: 'the directory name', doc: 'general.name of the GGUF.' },
  checkText: {
    schema: Type.String({ minLength: 1 }),
    arg: 'FILE',
    doc: 'Held-out text (one text per line) on which the tokenizer agreement is measured too, besides the built-in English and Russian sample.',
  },
  force: { schema: Type.Boolean(), default: false, doc: 'Write the GGUF even when llama.cpp cannot tokenise exactly as lep (with a warning naming the agreement).' },
});
