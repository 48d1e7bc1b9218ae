/**
 * The options of `lep generate` / `LepModel.generate`, written once (see options/optionSpec.ts): the TS
 * type, the validation, the CLI flags and help and the options the native sampler gets (every one resolved:
 * the native side has no defaults of its own) derive from this table.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, SEED_SCHEMA } from '../options/optionSpec.js';

export const GENERATE_SPEC = defineOptions({
  maxNewTokens: { schema: Type.Integer({ minimum: 1 }), default: 64, doc: 'New tokens at most (the prompt plus these must fit the context).' },
  temperature: { schema: Type.Number({ minimum: 0 }), default: 0, doc: 'Sampling temperature (0 = greedy).' },
  topK: { schema: Type.Integer({ minimum: 0 }), default: 0, doc: 'Sample among the k most likely tokens (0 = off).' },
  topP: { schema: Type.Number({ exclusiveMinimum: 0, maximum: 1 }), default: 1, doc: 'Nucleus sampling: the most likely tokens holding this probability mass (1 = off).' },
  repetitionPenalty: { schema: Type.Number({ exclusiveMinimum: 0 }), default: 1, doc: 'Hugging Face-style repetition penalty: > 1 discourages tokens already in the sequence (1 = off).' },
  stopTokens: { schema: Type.Array(Type.Integer({ minimum: 0 })), flag: false, defaultDoc: "the tokenizer's EOS", doc: 'Token ids that end a sequence.' },
  seed: {
    schema: SEED_SCHEMA,
    default: 0,
    doc: 'Sampling seed: the same seed, prompt and options give the same tokens (the library draws none, so calls stay reproducible).',
  },
});
