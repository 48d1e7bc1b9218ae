/**
 * config.json of a Hugging Face model directory: parse and validate into lep's ModelConfig, and write
 * one back. Supported `model_type`s: llama (incl. Llama 3.1 `rope_scaling` of type llama3), mistral and
 * qwen2 (q/k/v bias, usually tied embeddings).
 */
import { LepError } from '../errors.js';
import type { NativeModelConfig } from '../binding/NativeTypes.js';

export type ModelConfig = NativeModelConfig;
export const SUPPORTED_MODEL_TYPES = ['llama', 'mistral', 'qwen2'] as const;

type Json = Record<string, unknown>;

function bad(field: string, expected: string, actual: unknown, file: string): LepError {
  return new LepError(
    'LEP_BAD_CONFIG',
    `${file}: expected ${expected} for "${field}" but found ${JSON.stringify(actual)}`,
  );
}

function int(j: Json, key: string, file: string, fallback?: number): number {
  const v = j[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw bad(key, 'a positive integer', v, file);
  return v;
}

function num(j: Json, key: string, file: string, fallback: number): number {
  const v = j[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(key, 'a positive number', v, file);
  return v;
}

/** Parses a config.json object. `file` names the file in error messages. */
export function parseConfig(json: unknown, file = 'config.json'): ModelConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new LepError('LEP_BAD_CONFIG', `${file}: expected a JSON object`);
  const j = json as Json;
  const modelType = j.model_type;
  if (!SUPPORTED_MODEL_TYPES.includes(modelType as never))
    throw new LepError(
      'LEP_UNSUPPORTED_MODEL',
      `${file}: model_type ${JSON.stringify(modelType)} is not supported; lep handles ${SUPPORTED_MODEL_TYPES.join(', ')}` +
        '\nHINT: LEP needs a LLaMA-family decoder (LLaMA 2/3/3.1, Mistral, Qwen2).',
    );
  const hiddenSize = int(j, 'hidden_size', file);
  const numAttentionHeads = int(j, 'num_attention_heads', file);
  const numKeyValueHeads = int(j, 'num_key_value_heads', file, numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0)
    throw bad('num_key_value_heads', `a divisor of num_attention_heads (${numAttentionHeads})`, numKeyValueHeads, file);
  const headDim = j.head_dim == null ? hiddenSize / numAttentionHeads : int(j, 'head_dim', file);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0)
    throw bad('head_dim', 'an even integer (hidden_size / num_attention_heads)', headDim, file);
  const cfg: ModelConfig = {
    modelType: modelType as ModelConfig['modelType'],
    vocabSize: int(j, 'vocab_size', file),
    hiddenSize,
    intermediateSize: int(j, 'intermediate_size', file),
    numHiddenLayers: int(j, 'num_hidden_layers', file),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    maxPositionEmbeddings: int(j, 'max_position_embeddings', file, 2048),
    rmsNormEps: num(j, 'rms_norm_eps', file, 1e-6),
    ropeTheta: num(j, 'rope_theta', file, 10000),
    tieWordEmbeddings: j.tie_word_embeddings === true,
    // qwen2 always has q/k/v bias; llama exposes it as attention_bias.
    attentionBias: modelType === 'qwen2' ? true : j.attention_bias === true,
  };
  if (j.mlp_bias === true) throw bad('mlp_bias', 'false (MLP biases are not supported)', true, file);
  if (j.hidden_act !== undefined && j.hidden_act !== 'silu') throw bad('hidden_act', '"silu"', j.hidden_act, file);
  const rs = j.rope_scaling;
  if (rs != null) {
    if (typeof rs !== 'object') throw bad('rope_scaling', 'an object or null', rs, file);
    const r = rs as Json;
    const type = r.rope_type ?? r.type;
    if (type === 'default') {
      // no scaling
    } else if (type === 'llama3') {
      cfg.ropeScaling = {
        type: 'llama3',
        factor: num(r, 'factor', file, 8),
        lowFreqFactor: num(r, 'low_freq_factor', file, 1),
        highFreqFactor: num(r, 'high_freq_factor', file, 4),
        originalMaxPositionEmbeddings: int(r, 'original_max_position_embeddings', file, 8192),
      };
    } else {
      throw new LepError(
        'LEP_UNSUPPORTED_MODEL',
        `${file}: rope_scaling type ${JSON.stringify(type)} is not supported (only llama3)`,
      );
    }
  }
  return cfg;
}

/** Writes a config.json object for `cfg`, keeping unknown fields of `base` (e.g. torch_dtype, ids). */
export function toHfConfig(cfg: ModelConfig, base: Json = {}): Json {
  const out: Json = {
    ...base,
    architectures: [
      { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' }[cfg.modelType],
    ],
    model_type: cfg.modelType,
    vocab_size: cfg.vocabSize,
    hidden_size: cfg.hiddenSize,
    intermediate_size: cfg.intermediateSize,
    num_hidden_layers: cfg.numHiddenLayers,
    num_attention_heads: cfg.numAttentionHeads,
    num_key_value_heads: cfg.numKeyValueHeads,
    head_dim: cfg.headDim,
    max_position_embeddings: cfg.maxPositionEmbeddings,
    rms_norm_eps: cfg.rmsNormEps,
    rope_theta: cfg.ropeTheta,
    rope_scaling: cfg.ropeScaling
      ? {
          rope_type: 'llama3',
          factor: cfg.ropeScaling.factor,
          low_freq_factor: cfg.ropeScaling.lowFreqFactor,
          high_freq_factor: cfg.ropeScaling.highFreqFactor,
          original_max_position_embeddings: cfg.ropeScaling.originalMaxPositionEmbeddings,
        }
      : null,
    tie_word_embeddings: cfg.tieWordEmbeddings,
    hidden_act: 'silu',
  };
  if (cfg.modelType === 'llama') {
    out.attention_bias = cfg.attentionBias;
    out.mlp_bias = false;
  }
  return out;
}

/** Parameters of the model: embeddings, head (untied) and decoder layers. */
export function parameterCounts(c: ModelConfig): { embeddings: number; all: number } {
  const q = c.numAttentionHeads * c.headDim;
  const kv = c.numKeyValueHeads * c.headDim;
  const layer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize + (c.attentionBias ? q + 2 * kv : 0);
  const embeddings = c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2);
  return { embeddings, all: embeddings + c.numHiddenLayers * layer + c.hiddenSize };
}
