/**
 * The options of `lep propagate` / `propagate`, written once (see options/optionSpec.ts): the TS type, the
 * validation, the CLI flags and help, the recipe's `propagate` keys and the resolved options derive from it.
 * `instruct` and `out` (one or several, repeated flags) are checked with the targets in propagate.ts.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf } from '../options/optionSpec.js';
import { DEVICE_SCHEMA } from '../train/trainOptions.js';

const dir = Type.String({ minLength: 1 });

export const PROPAGATE_METHODS = ['swap', 'overlap', 'conversion'] as const;
export type PropagateMethod = (typeof PROPAGATE_METHODS)[number];
export const LSTSQ_SOLVERS = ['normal', 'qr'] as const;
export type LstsqSolverName = (typeof LSTSQ_SOLVERS)[number];

export const PROPAGATE_SPEC = defineOptions({
  base: { schema: dir, required: true, arg: 'DIR', doc: 'The base model directory the donor was trained from.' },
  donor: { schema: dir, required: true, arg: 'DIR', doc: 'The donor: the base after lep init + embedding training, with its tokenizer.' },
  method: { schema: oneOf(...PROPAGATE_METHODS), default: 'conversion', doc: "Propagation method (conversion is the paper's best)." },
  solver: { schema: oneOf(...LSTSQ_SOLVERS), default: 'normal', recipe: true, doc: 'Least-squares solver: normal (AᵀA, fast) or qr (streaming QR, for ill-conditioned systems).' },
  device: { schema: DEVICE_SCHEMA, default: 'cpu', arg: 'cpu|cuda[:N]', recipe: true, doc: 'Where the float64 products run.' },
  chunkRows: { schema: Type.Integer({ minimum: 1 }), default: 4096, doc: 'Rows converted to float64 at a time.' },
  // Hugging Face's default max_shard_size ("5GB").
  maxShardBytes: { schema: Type.Integer({ minimum: 0 }), default: 5_000_000_000, doc: 'Shard the written checkpoint above this many bytes (0 = one file).' },
  // Fine-tuning keeps base/instruct embeddings above 0.9; unrelated models give about 0.
  minCorrelation: { schema: Type.Number({ minimum: -1, maximum: 1 }), default: 0.5, doc: 'Warn below this base/instruct embedding correlation (the instruct model is probably not derived from the base).' },
  keepOverlapRows: {
    schema: Type.Boolean(),
    default: false,
    recipe: true,
    doc: "Keep the instruct model's rows for tokens the old vocabulary has; only new tokens get the method's rows (not in the paper; helps Extended vocabularies).",
  },
  lora: {
    schema: dir,
    arg: 'ADAPTER_DIR',
    doc: "A PEFT LoRA trained with the embeddings (DONOR/adapter of lep train --params lora): its body adapters are merged into each output, W += (alpha / S) / r · B·A; its modules to save are not.",
  },
  alphaScale: { schema: Type.Number({ exclusiveMinimum: 0 }), recipe: true, arg: 'S', defaultDoc: '1', doc: "Divide the adapter's lora_alpha by S when merging (only with lora)." },
});
