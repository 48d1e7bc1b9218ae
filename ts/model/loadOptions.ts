/**
 * The options of `LepModel.load`, written once (see options/optionSpec.ts): the TS type, the validation
 * (before the model folder is read) and the defaults the native loader gets (it has none of its own)
 * derive from this table, and the commands that load a model to run it (`lep generate`, `lep eval`) take
 * its `--device` and `--dtype` flags and help from here.
 */
import { Type } from '@sinclair/typebox';

import { defineOptions, oneOf, pickOptions } from '../options/optionSpec.js';
import { DEVICE_SCHEMA } from '../train/trainOptions.js';

/** The compute dtypes a loaded model runs in. */
export const MODEL_DTYPES = ['f32', 'bf16', 'f16', 'f64'] as const;

export const LOAD_SPEC = defineOptions({
  device: { schema: DEVICE_SCHEMA, default: 'cpu', arg: 'cpu|cuda[:N]', doc: 'Device the model runs on.' },
  dtype: { schema: oneOf(...MODEL_DTYPES), default: 'f32', doc: 'Compute dtype (f16 weights are upcast to f32 on CPU).' },
  overrides: {
    schema: Type.Array(Type.String({ minLength: 1 })),
    flag: false,
    defaultDoc: 'none',
    doc: "safetensors files whose tensors replace the model's same-named ones (e.g. a training checkpoint).",
  },
});

/** The options a command that loads a model takes as flags (`--device`, `--dtype`). */
export const LOAD_FLAGS_SPEC = pickOptions(LOAD_SPEC, ['device', 'dtype']);
