/**
 * Prompts longer than the model's context. A task item can be longer than a small model's context (the
 * toy families have 512 positions, and a byte-level vocabulary cut to 8000 tokens spells a Russian FAQ
 * page in 550+ tokens). lm-evaluation-harness cuts such prompts from the left; a chat prompt would then
 * lose its first turn marker and system part, so lep cuts from the middle instead: it keeps the first
 * HEAD_TOKENS tokens (BOS, the template's opening, the start of the instruction) and the end (the
 * question and the assistant header the answer follows). Every cut is counted and reported with the
 * task's result (`truncated`), so a score measured on cut prompts is never silent.
 */

/** Tokens kept from the start of a prompt that is cut. */
export const HEAD_TOKENS = 16;

/** `ids` fitted into `budget` tokens by cutting its middle; `cut` says whether it was cut. */
export function fitContext(ids: number[], budget: number): { ids: number[]; cut: boolean } {
  if (ids.length <= budget) return { ids, cut: false };
  const head = Math.min(HEAD_TOKENS, budget >> 2);
  return { ids: [...ids.slice(0, head), ...ids.slice(ids.length - (budget - head))], cut: true };
}
