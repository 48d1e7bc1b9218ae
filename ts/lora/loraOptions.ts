/**
 * LoRA settings as users give them, the method's two presets (docs/method.md §5), and their resolution into the
 * native form for a given model (layers by name, e.g. "first-last").
 */
import { optionError } from '../errors.js';
import type { NativeLoraOptions } from '../binding/NativeTypes.js';

export const LORA_PROJECTIONS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;
export type LoraProjection = (typeof LORA_PROJECTIONS)[number];
export const LORA_MODULES_TO_SAVE = ['embed_tokens', 'lm_head'] as const;

export interface LoraOptions {
  /** Adapter rank r. */
  rank?: number;
  /** Scale numerator: the update is (alpha / r)·B·A. */
  alpha?: number;
  /** Dropout on the adapters' input (training only). Defaults to `0`. */
  dropout?: number;
  /** Adapted projections. */
  targets?: LoraProjection[];
  /** Decoder layers with adapters: `all`, `first-last`, or layer numbers. */
  layers?: 'all' | 'first-last' | number[];
  /** Modules trained in full next to the adapters. */
  modulesToSave?: ('embed_tokens' | 'lm_head')[];
  /** Seed of the adapters' initialisation. Defaults to `0`. */
  seed?: number;
}

/**
 * docs/method.md §5. `self`: self-calibration (rank 8, alpha 1, first and last layers, embed_tokens and lm_head
 * trained, lr 2.5e-5, weight decay 0.1). `sft`: instruction-tuning calibration (rank 32, alpha 16, every
 * projection of every layer, lm_head trained, lr 5e-5, weight decay 0.05, 10 warm-up steps). The method
 * does not name q/k/v/o/gate/up/down for `self`; its code adapts all seven, as here.
 */
export const LORA_PRESETS = {
  self: {
    lora: { rank: 8, alpha: 1, dropout: 0, targets: [...LORA_PROJECTIONS], layers: 'first-last', modulesToSave: ['embed_tokens', 'lm_head'] },
    train: { lr: 2.5e-5, weightDecay: 0.1 },
  },
  sft: {
    lora: { rank: 32, alpha: 16, dropout: 0, targets: [...LORA_PROJECTIONS], layers: 'all', modulesToSave: ['lm_head'] },
    train: { lr: 5e-5, weightDecay: 0.05, warmupSteps: 10 },
  },
} as const satisfies Record<string, { lora: Required<Omit<LoraOptions, 'seed'>>; train: Record<string, number> }>;
export type LoraPreset = keyof typeof LORA_PRESETS;

/** The native form for a model with `numLayers` decoder layers; bad values are option errors naming the flag. */
export function resolveLora(options: LoraOptions, numLayers: number, preset: LoraPreset = 'sft'): NativeLoraOptions {
  const o = { ...LORA_PRESETS[preset].lora, ...options };
  if (!Number.isInteger(o.rank) || o.rank < 1) throw optionError('lora.rank', 'a positive integer', o.rank, '--lora-rank');
  if (!(o.alpha > 0)) throw optionError('lora.alpha', 'a positive number', o.alpha, '--lora-alpha');
  if (!(o.dropout >= 0 && o.dropout < 1)) throw optionError('lora.dropout', 'a number in [0, 1)', o.dropout, '--lora-dropout');
  for (const t of o.targets)
    if (!(LORA_PROJECTIONS as readonly string[]).includes(t)) throw optionError('lora.targets', `projections among ${LORA_PROJECTIONS.join(', ')}`, t, '--lora-targets');
  for (const m of o.modulesToSave)
    if (!(LORA_MODULES_TO_SAVE as readonly string[]).includes(m)) throw optionError('lora.modulesToSave', 'embed_tokens and/or lm_head', m, '--lora-train-modules');
  let layers: number[];
  if (o.layers === 'all') layers = [];
  else if (o.layers === 'first-last') layers = numLayers > 1 ? [0, numLayers - 1] : [0];
  else if (Array.isArray(o.layers) && o.layers.every((l) => Number.isInteger(l))) layers = [...o.layers];
  else throw optionError('lora.layers', '"all", "first-last" or layer numbers', o.layers, '--lora-layers');
  return { rank: o.rank, alpha: o.alpha, dropout: o.dropout, targets: [...o.targets], layers, modulesToSave: [...o.modulesToSave], seed: options.seed ?? 0 };
}

/** "0,5" / "all" / "first-last" as given on the command line. */
export function parseLoraLayers(text: string): LoraOptions['layers'] {
  if (text === 'all' || text === 'first-last') return text;
  return text.split(',').map((s) => Number(s.trim()));
}
