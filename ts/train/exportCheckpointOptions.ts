/**
 * The options of `lep export checkpoint` / `exportCheckpoint`, written once (see options/optionSpec.ts): the
 * TS type, the validation, the CLI flags and help derive from this table.
 */
import { defineOptions, oneOf } from '../options/optionSpec.js';

export const EXPORT_CHECKPOINT_SPEC = defineOptions({
  dtype: { schema: oneOf('f32', 'bf16'), defaultDoc: "the model's torch_dtype (bf16 or f32)", doc: 'Storage dtype of the written weights.' },
});
