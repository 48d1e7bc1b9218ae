/**
 * The options of `lep model create` / `createModel`, written once (see options/optionSpec.ts): the TS type,
 * the validation, the CLI flags and help derive from this table. Checks that involve several options (the
 * head size, grouped-query heads, the tokenizer's size) stay in createModel.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf, SEED_SCHEMA } from '../options/optionSpec.js';

const posInt = Type.Integer({ minimum: 1 });

export const CREATE_MODEL_SPEC = defineOptions({
  tokenizerDir: { schema: Type.String({ minLength: 1 }), required: true, flag: 'tokenizer', arg: 'DIR', doc: 'Directory with tokenizer.json (and tokenizer_config.json) to carry into the model.' },
  modelType: { schema: oneOf('llama', 'mistral', 'qwen2'), default: 'llama', flag: 'arch', doc: 'Architecture (qwen2 gets q/k/v bias).' },
  hiddenSize: { schema: posInt, default: 64, doc: 'Hidden size (a multiple of 2 x heads).' },
  intermediateSize: { schema: posInt, defaultDoc: '8/3 x hidden size, rounded to a multiple of 8', doc: 'MLP size.' },
  numHiddenLayers: { schema: posInt, default: 2, flag: 'layers', doc: 'Decoder layers.' },
  numAttentionHeads: { schema: posInt, default: 4, flag: 'heads', doc: 'Attention heads.' },
  numKeyValueHeads: { schema: posInt, flag: 'kv-heads', defaultDoc: 'heads', doc: 'Key/value heads (grouped-query attention when below heads; a divisor of heads).' },
  maxPositionEmbeddings: { schema: posInt, default: 512, flag: 'max-positions', doc: 'Context length.' },
  vocabSize: { schema: posInt, defaultDoc: 'the tokenizer size', doc: 'Embedding rows, at least the tokenizer size (more: a padded vocabulary).' },
  tieWordEmbeddings: { schema: Type.Boolean(), flag: 'tie', defaultDoc: 'untied (tied for qwen2)', doc: 'Tie lm_head to the input embeddings.' },
  ropeTheta: { schema: Type.Number({ exclusiveMinimum: 0 }), default: 10000, flag: false, doc: 'RoPE base.' },
  seed: { schema: SEED_SCHEMA, default: 0, doc: 'Random seed (the same options give the same bytes).' },
  initStd: { schema: Type.Number({ minimum: 0 }), default: 0.02, doc: 'Std of the normal init of the matrices and biases (HF zeroes biases; drawn here, small test models exercise them).' },
  embedStd: {
    schema: Type.Number({ minimum: 0 }),
    default: 0.02,
    doc: 'Std of the embedding and lm_head init; larger values give peaked next-token distributions (greedy decoding then agrees across implementations).',
  },
  dtype: { schema: oneOf('f32', 'bf16', 'f16', 'f64'), default: 'f32', doc: 'Storage dtype of the weights.' },
  maxShardBytes: { schema: Type.Integer({ minimum: 0 }), default: 0, flag: 'shard-bytes', doc: 'Shard the checkpoint above this many bytes (0 = one file).' },
  chatTemplate: { schema: Type.String(), flag: false, defaultDoc: "the tokenizer's", doc: 'Chat template to put into tokenizer_config.json.' },
});
