/**
 * Packs a chat JSONL calibration set into the trainer's blocks: the existing chat packing (packChat:
 * chat template, loss on assistant tokens only, whole examples per block) and block writer (writeBlocks:
 * `tokens` + `loss_mask` safetensors), reading the file line by line through `readChatLines` so bad lines
 * fail with their file and line number before any block is written.
 */
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import { packChat } from '../train/packChat.js';
import { writeBlocks } from '../train/packBlocks.js';
import { readChatLines } from './readChatDataset.js';

export interface PackCalibrationResult {
  /** The blocks file written. */
  file: string;
  blocks: number;
  seqLen: number;
  examples: number;
  /** Examples longer than one block, left out (never cut). */
  skippedTooLong: number;
  /** Tokens that carry loss (assistant answers and their end-of-turn tokens). */
  targetTokens: number;
}

export async function packCalibrationSet(file: string, tokenizer: Tokenizer, seqLen: number, out: string, options: { signal?: AbortSignal } = {}): Promise<PackCalibrationResult> {
  const packed = await packChat(readChatLines(file, options), tokenizer, { seqLen });
  writeBlocks(out, packed.blocks, packed.lossMask, undefined, tokenizer);
  return { file: out, blocks: packed.blocks.length, seqLen, examples: packed.examples, skippedTooLong: packed.skippedTooLong, targetTokens: packed.targetTokens };
}
