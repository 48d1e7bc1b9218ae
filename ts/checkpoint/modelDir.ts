/**
 * A model directory in Hugging Face layout: config.json, model.safetensors or shards with
 * model.safetensors.index.json, tokenizer files, generation_config.json.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { callNative, LepError, optionError } from '../errors.js';
import { getNative } from '../binding/loadNative.js';
import type { NativeTensorInfo } from '../binding/NativeTypes.js';
import { type ModelConfig, parseConfig } from './config.js';

/** Tokenizer-side files carried along whenever lep writes a model directory. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
  'added_tokens.json',
  'chat_template.jinja',
] as const;

export interface ModelDir {
  dir: string;
  config: ModelConfig;
  /** config.json as found (unknown fields are kept when lep rewrites it) */
  rawConfig: Record<string, unknown>;
  /** absolute paths of the safetensors files */
  weightFiles: string[];
  generationConfig?: Record<string, unknown>;
}

function readJson(path: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new LepError('LEP_BAD_JSON', `${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new LepError('LEP_BAD_JSON', `${path} holds JSON but not an object\nHINT: the file is damaged; restore it from the model's source.`);
  return value as Record<string, unknown>;
}

/** Which safetensors files hold the weights of `dir`. */
export function weightFilesOf(dir: string): string[] {
  const index = join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    const map = readJson(index).weight_map;
    if (!map || typeof map !== 'object' || Array.isArray(map))
      throw new LepError('LEP_BAD_CHECKPOINT', `${index} has no weight_map object`);
    const files = [...new Set(Object.values(map as Record<string, unknown>))].sort();
    for (const f of files) {
      // Shards sit beside the index: a path ("../x", "/etc/x", "sub/x") would read outside the model directory.
      if (typeof f !== 'string' || f === '' || f === '.' || f === '..' || /[/\\]/.test(f) || f.includes('\0'))
        throw new LepError(
          'LEP_BAD_CHECKPOINT',
          `${index}: weight_map names ${JSON.stringify(f)}, which is not a file name in ${dir}` +
            '\nHINT: every shard must be a plain file name beside the index (model-00001-of-00002.safetensors).',
        );
    }
    for (const f of files as string[])
      if (!existsSync(join(dir, f)))
        throw new LepError('LEP_BAD_CHECKPOINT', `${index} names ${f}, which is missing from ${dir}`);
    return (files as string[]).map((f) => join(dir, f));
  }
  const single = join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  const hint = existsSync(join(dir, 'pytorch_model.bin')) || existsSync(join(dir, 'pytorch_model.bin.index.json'))
    ? '\nHINT: this checkpoint is in PyTorch pickle format; convert it with `model.save_pretrained(dir, safe_serialization=True)`.'
    : '';
  throw new LepError('LEP_BAD_CHECKPOINT', `${dir} has neither model.safetensors nor model.safetensors.index.json${hint}`);
}

/** Reads and checks a model directory (config, weight files; tensors are not loaded). */
export function readModelDir(dir: string): ModelDir {
  if (typeof dir !== 'string' || dir === '') throw optionError('model directory', 'a path', dir);
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath))
    throw new LepError('LEP_BAD_CHECKPOINT', `${dir} has no config.json; is it a Hugging Face model directory?\nHINT: give a model's folder: config.json beside its *.safetensors weights (a Hugging Face download, or a folder lep wrote).`);
  const rawConfig = readJson(cfgPath);
  const config = parseConfig(rawConfig, cfgPath);
  const weightFiles = weightFilesOf(dir);
  // Every tensor's shape against config.json, from the headers, before any stage allocates or writes.
  callNative(() => getNative().checkModelWeights({ config, files: weightFiles, where: dir }));
  const genPath = join(dir, 'generation_config.json');
  return {
    dir,
    config,
    rawConfig,
    weightFiles,
    ...(existsSync(genPath) ? { generationConfig: readJson(genPath) } : {}),
  };
}

/** Header info of every tensor in the checkpoint (validates every file). */
export function inspectWeights(m: ModelDir): Map<string, NativeTensorInfo> {
  const out = new Map<string, NativeTensorInfo>();
  for (const f of m.weightFiles) for (const t of callNative(() => getNative().inspectSafetensors(f)).tensors) out.set(t.name, t);
  return out;
}

/**
 * Checks embedding rows against config.vocab_size and the tokenizer size. Padded vocabularies (more
 * rows than tokens) are legal; fewer rows than tokens is not.
 */
export function checkVocab(m: ModelDir, tokenizerSize: number | undefined): void {
  const tensors = inspectWeights(m);
  const embed = tensors.get('model.embed_tokens.weight');
  if (!embed) throw new LepError('LEP_MISSING_TENSOR', `${m.dir}: checkpoint lacks model.embed_tokens.weight`);
  const rows = embed.shape[0];
  if (rows !== m.config.vocabSize)
    throw new LepError(
      'LEP_VOCAB_MISMATCH',
      `${m.dir}: model.embed_tokens.weight has ${rows} rows but config.json vocab_size is ${m.config.vocabSize}`,
    );
  const head = tensors.get('lm_head.weight');
  if (head && !m.config.tieWordEmbeddings && head.shape[0] !== rows)
    throw new LepError('LEP_VOCAB_MISMATCH', `${m.dir}: lm_head.weight has ${head.shape[0]} rows but embed_tokens has ${rows}`);
  if (tokenizerSize !== undefined && tokenizerSize > rows)
    throw new LepError(
      'LEP_VOCAB_MISMATCH',
      `${m.dir}: the tokenizer has ${tokenizerSize} tokens but the model has only ${rows} embedding rows` +
        '\nHINT: the tokenizer belongs to another model; after changing the vocabulary run `lep init` to resize the embeddings.',
    );
}

/**
 * The dtype lep writes a model's weights in by default: bf16 for a bfloat16 checkpoint, f32 otherwise
 * (lep computes in f32 or bf16 and stores no f16).
 */
export function storedDtype(rawConfig: Record<string, unknown>): 'f32' | 'bf16' {
  return (rawConfig.torch_dtype ?? rawConfig.dtype) === 'bfloat16' ? 'bf16' : 'f32';
}

/** Copies tokenizer files (those present) from one model directory to another. */
export function copyTokenizerFiles(from: string, to: string): string[] {
  mkdirSync(to, { recursive: true });
  const copied: string[] = [];
  for (const f of TOKENIZER_FILES) {
    if (existsSync(join(from, f))) {
      copyFileSync(join(from, f), join(to, f));
      copied.push(f);
    }
  }
  return copied;
}
