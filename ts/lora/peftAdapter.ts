/**
 * LoRA adapters in Hugging Face PEFT's directory layout: `adapter_config.json` (a LoraConfig) next to
 * `adapter_model.safetensors` (keys "base_model.model.<module>.lora_A.weight" / ".lora_B.weight", and
 * "base_model.model.<param>" for modules_to_save). Written so `PeftModel.from_pretrained(base, dir)` loads
 * them; read back with the subset of LoraConfig lep can apply, refusing the rest by name.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { LepError, optionError } from '../errors.js';
import type { NativeLoraOptions } from '../binding/NativeTypes.js';
import { readModelDir, storedDtype } from '../checkpoint/modelDir.js';
import { saveModelDir } from '../checkpoint/saveModelDir.js';
import { LepModel } from '../model/LepModel.js';
import { runJob, type JobOptions } from '../binding/runJob.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { writeDirAtomic } from '../util/writeDirAtomic.js';
import { LORA_PROJECTIONS } from './loraOptions.js';
import { checkOutputPath } from '../util/checkOutputPath.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** PEFT's LoraConfig fields for an adapter lep trained (peft/tuners/lora/config.py; defaults spelled out). */
export function peftConfig(lora: NativeLoraOptions, baseModel: string): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    base_model_name_or_path: baseModel,
    revision: null,
    r: lora.rank,
    lora_alpha: lora.alpha,
    lora_dropout: lora.dropout ?? 0,
    target_modules: [...lora.targets],
    layers_to_transform: lora.layers && lora.layers.length > 0 ? [...lora.layers] : null,
    layers_pattern: lora.layers && lora.layers.length > 0 ? 'layers' : null,
    modules_to_save: lora.modulesToSave && lora.modulesToSave.length > 0 ? [...lora.modulesToSave] : null,
    bias: 'none',
    fan_in_fan_out: false,
    init_lora_weights: true,
    inference_mode: true,
    use_rslora: false,
    use_dora: false,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

/** Writes the model's adapters as a PEFT adapter directory (weights in `dtype`, default f32). */
export async function saveAdapter(model: LepModel, lora: NativeLoraOptions, dir: string, baseModel: string, options: JobOptions & { dtype?: 'f32' | 'bf16' } = {}): Promise<void> {
  // Built as DIR.tmp-PID and renamed: a run killed while saving never leaves weights from one adapter next
  // to the config of another (an earlier save in the same OUT).
  await writeDirAtomic(dir, 'adapter directory', async (tmp) => {
    await runJob((p) => model.native.saveLora({ file: join(tmp, ADAPTER_WEIGHTS_FILE), dtype: options.dtype ?? 'f32' }, p), options);
    writeJsonAtomic(join(tmp, ADAPTER_CONFIG_FILE), peftConfig(lora, baseModel));
  });
}

/** Reads a PEFT LoRA adapter_config.json into the native form; settings lep does not implement are errors. */
export function readAdapterConfig(dir: string): NativeLoraOptions {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  if (!existsSync(file) || !existsSync(join(dir, ADAPTER_WEIGHTS_FILE)))
    throw new LepError('LEP_BAD_ADAPTER', `${dir} is not a PEFT adapter directory (needs ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE})`);
  let c: Record<string, unknown>;
  try {
    c = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new LepError('LEP_BAD_ADAPTER', `${file} is not valid JSON: ${(e as Error).message}`);
  }
  const bad = (what: string) =>
    new LepError(
      'LEP_BAD_ADAPTER',
      `${file}: ${what}\nHINT: lep loads plain PEFT LoRA adapters (r, lora_alpha, target_modules as a list of projection names); merge this one with PEFT itself (merge_and_unload) and give lep the merged model.`,
    );
  if (c.peft_type !== 'LORA') throw bad(`peft_type is ${JSON.stringify(c.peft_type)}; only LORA adapters are supported`);
  for (const [k, off] of [['use_rslora', false], ['use_dora', false], ['fan_in_fan_out', false]] as const)
    if (c[k] !== undefined && c[k] !== off) throw bad(`${k} = ${JSON.stringify(c[k])} is not supported`);
  if (c.bias !== undefined && c.bias !== 'none') throw bad(`bias = ${JSON.stringify(c.bias)} is not supported (only "none")`);
  for (const k of ['rank_pattern', 'alpha_pattern'])
    if (c[k] && Object.keys(c[k] as object).length > 0) throw bad(`per-module ${k} is not supported`);
  const rank = c.r ?? 8;
  if (!Number.isInteger(rank) || (rank as number) < 1) throw bad(`r must be a positive integer, got ${JSON.stringify(c.r)}`);
  const alpha = c.lora_alpha ?? 8;
  if (typeof alpha !== 'number' || !(alpha > 0)) throw bad(`lora_alpha must be a positive number, got ${JSON.stringify(c.lora_alpha)}`);
  let targets = c.target_modules;
  if (targets === 'all-linear') targets = [...LORA_PROJECTIONS];
  if (!Array.isArray(targets) || targets.some((t) => typeof t !== 'string'))
    throw bad(`target_modules must be a list of projection names (a regular expression is not supported), got ${JSON.stringify(c.target_modules)}`);
  const layersRaw = c.layers_to_transform;
  const layers = layersRaw === null || layersRaw === undefined ? [] : typeof layersRaw === 'number' ? [layersRaw] : layersRaw;
  if (!Array.isArray(layers) || layers.some((l) => !Number.isInteger(l))) throw bad(`layers_to_transform must be layer numbers, got ${JSON.stringify(layersRaw)}`);
  const modules = c.modules_to_save ?? [];
  if (!Array.isArray(modules) || modules.some((m) => typeof m !== 'string')) throw bad(`modules_to_save must be a list of names, got ${JSON.stringify(modules)}`);
  return { rank: rank as number, alpha, dropout: typeof c.lora_dropout === 'number' ? c.lora_dropout : 0, targets: targets as string[], layers: layers as number[], modulesToSave: modules as string[] };
}

export interface MergeOptions {
  /**
   * Divide the adapter's lora_alpha by this (`--alpha-scale`): W += (alpha / S) / r · B·A. The ruadapt
   * recipe merges a LoRA trained during continued pretraining of the base into an instruct model this
   * way, with S > 1 so the instruct model keeps more of its own behaviour. Defaults to `1`.
   */
  alphaScale?: number;
  /**
   * Merge only the adapters, leaving the model's own modules to save (`--skip-modules-to-save`): for a
   * propagated model, whose embeddings and head came through LEP from the adapter's trained ones.
   * Defaults to `false` (the adapter's modules to save replace the model's, unscaled).
   */
  skipModulesToSave?: boolean;
}

/** The alpha scale, checked; `flag` names where it came from. */
export function checkAlphaScale(s: number | undefined, flag = '--alpha-scale'): number {
  const v = s ?? 1;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw optionError('alphaScale', 'a positive number', s, flag);
  return v;
}

/** Loads the adapter at `adapterDir` into `model` (alpha divided by the scale) and merges it. */
export async function mergeAdapterInto(model: LepModel, adapterDir: string, options: JobOptions & MergeOptions = {}): Promise<NativeLoraOptions> {
  const lora = readAdapterConfig(adapterDir);
  const scaled = { ...lora, alpha: lora.alpha / checkAlphaScale(options.alphaScale) };
  await runJob((p) => model.native.mergeLoraFile({ ...scaled, file: join(adapterDir, ADAPTER_WEIGHTS_FILE), skipModulesToSave: options.skipModulesToSave ?? false }, p), options);
  return scaled;
}

/** What `mergeAdapter` merged: the adapter's rank and alpha, the alpha scale, and W += mergedScale · B·A. */
export interface MergeResult {
  out: string;
  rank: number;
  alpha: number;
  alphaScale: number;
  mergedScale: number;
}

/** How a merge is reported by `lep lora merge` and `lep propagate --lora`: "(rank 4, alpha 8 / 2): W += 1.000 B·A". */
export function describeMerge(m: Pick<MergeResult, 'rank' | 'alpha' | 'alphaScale' | 'mergedScale'>): string {
  return `(rank ${m.rank}, alpha ${m.alpha} / ${m.alphaScale}): W += ${m.mergedScale.toPrecision(4)} B·A`;
}

/** `lep lora merge`: the model at `modelDir` with the adapter at `adapterDir` merged in, as a model directory. */
export async function mergeAdapter(modelDir: string, adapterDir: string, outDir: string, options: JobOptions & MergeOptions & { dtype?: 'f32' | 'bf16' } = {}): Promise<MergeResult> {
  const alphaScale = checkAlphaScale(options.alphaScale);
  checkOutputPath(outDir, '--out', { MODEL_DIR: modelDir, ADAPTER_DIR: adapterDir });
  const lora = readAdapterConfig(adapterDir);  // a bad adapter fails before the model is loaded
  // A bf16 model written in bf16 is loaded in bf16: mergeLoraFile sums in float32 and rounds once to the
  // weights' dtype, the bits a float32 load gives, which took twice the memory (32 GB at 8B). Any other
  // (a float32 model, or an output in f32) is loaded in float32: loading a float32 model in bf16 would
  // round its weights before the merge.
  const stored = storedDtype(readModelDir(modelDir).rawConfig);
  const dtype = stored === 'bf16' && (options.dtype ?? stored) === 'bf16' ? 'bf16' : 'f32';
  const model = await LepModel.load(modelDir, { dtype, signal: options.signal });
  try {
    const scaled = await mergeAdapterInto(model, adapterDir, options);
    await saveModelDir(model, modelDir, outDir, options);
    return { out: outDir, rank: lora.rank, alpha: lora.alpha, alphaScale, mergedScale: scaled.alpha / scaled.rank };
  } finally {
    model.dispose();
  }
}
