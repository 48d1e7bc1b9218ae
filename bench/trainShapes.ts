/** What the training benchmarks (train-torch, train-rows) share: model shapes and the step's batch. */
import type { CreateModelOptions } from '../ts/index.js';

/** Model shapes. toy is the toy family's base shape (LLaMA layout, Mistral's 32000-token vocabulary). */
export const SIZES = {
  toy: { hiddenSize: 96, numHiddenLayers: 6, numAttentionHeads: 4, numKeyValueHeads: 4, intermediateSize: 256 },
  small: { hiddenSize: 256, numHiddenLayers: 8, numAttentionHeads: 8, numKeyValueHeads: 4, intermediateSize: 704 },
} as const satisfies Record<string, Partial<CreateModelOptions>>;
/** Sequences per step and tokens per sequence. */
export const BATCH = 16;
export const SEQ = 128;

/** Seeded token ids (a fixed LCG), `n` rows of `length` (a training block by default); throughput does
 *  not depend on the text. */
export function seededBlocks(n: number, vocab: number, seed: number, length = SEQ + 1): number[][] {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % vocab;
  return Array.from({ length: n }, () => Array.from({ length }, next));
}
