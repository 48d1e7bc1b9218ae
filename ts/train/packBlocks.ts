/**
 * Data packing for causal-LM training (docs/method.md §3): each document is `bos + text + eos`, tokenised
 * paragraph by paragraph and concatenated; the stream is cut into blocks of exactly `seqLen` tokens,
 * each starting at a document start or right after a paragraph boundary. The tail of a block's region
 * up to the next boundary is dropped; nothing is padded. Blocks are written as safetensors
 * (`tokens` I32 of shape (blocks, seqLen)), the layout the native trainer reads.
 */
import { LepError, optionError } from '../errors.js';
import type { NativeTensorData } from '../binding/NativeTypes.js';
import { writeSafetensors } from '../checkpoint/safetensors.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';

export interface PackOptions {
  /** Tokens per block (the model sees seqLen - 1 positions, predicting tokens 2..seqLen). */
  seqLen: number;
  /** Stop after this many blocks (0 = no limit). Defaults to `0`. */
  maxBlocks?: number;
}

export interface PackResult {
  blocks: number;
  /**
   * Per block, the characters its predicted tokens (all but the first) decode to, specials skipped: the
   * denominator of bits per character. A block that starts inside a word or a UTF-8 sequence is off by
   * a character or so.
   */
  targetChars: number[];
  seqLen: number;
  tokens: number;
  droppedTokens: number;
  documents: number;
}

/**
 * Cuts a token stream into blocks that start at boundaries. Invariant: when `buf` is non-empty it
 * starts at a boundary; after a block ends between boundaries, tokens are skipped until the next one.
 */
class BlockCutter {
  private buf: number[] = [];
  private boundaries: number[] = [];
  private skipping = false;
  readonly out: number[][] = [];
  constructor(private readonly seqLen: number) {}

  push(tokens: number[], boundaryBefore: boolean): void {
    if (boundaryBefore) {
      this.skipping = false;
      this.boundaries.push(this.buf.length);
    }
    if (this.skipping) return;
    for (const t of tokens) this.buf.push(t);
    for (;;) {
      if (this.buf.length < this.seqLen) return;
      this.out.push(this.buf.slice(0, this.seqLen));
      const next = this.boundaries.find((b) => b >= this.seqLen);
      if (next === undefined) {
        this.buf = [];
        this.boundaries = [];
        this.skipping = true;
        return;
      }
      this.buf = this.buf.slice(next);
      this.boundaries = this.boundaries.filter((b) => b >= next).map((b) => b - next);
    }
  }
}

/**
 * Paragraphs per tokenizer call. One call per document (about 5 paragraphs) spent most of `lep data pack`
 * in call overhead: the 12 MB ru.txt with the demo's Optimized tokenizer took 25.5 s (quiet machine), then
 * 14.4 s in batches of 512 paragraphs and 12.5 s with two batches in flight (both with another job on the
 * second core); the bytes written are the same.
 */
const ENCODE_BATCH = 512;

/**
 * Packs documents (each a list of paragraphs) into blocks. Paragraphs but the last get a trailing "\n".
 * Documents are tokenised several at a time (ENCODE_BATCH paragraphs) and cut in their order, so the
 * blocks are the same as one document at a time; with `maxBlocks`, at most two batches are read ahead.
 */
export async function packDocuments(
  documents: AsyncIterable<string[]> | Iterable<string[]>,
  tokenizer: Tokenizer,
  options: PackOptions,
): Promise<{ blocks: number[][]; result: PackResult }> {
  const { seqLen } = options;
  if (!Number.isInteger(seqLen) || seqLen < 2) throw optionError('seqLen', 'an integer >= 2', seqLen, '--seq-len');
  const bos = tokenizer.specialId('bos');
  const eos = tokenizer.specialId('eos');
  const cutter = new BlockCutter(seqLen);
  let tokens = 0;
  let docs = 0;
  const maxBlocks = options.maxBlocks ?? 0;
  const full = () => maxBlocks > 0 && cutter.out.length >= maxBlocks;
  // Two batches in flight: the tokenizer encodes a batch on one thread, off the main thread, so the
  // next batch encodes on the other core while this one is cut.
  let pending: string[][] = [];
  let pendingParagraphs = 0;
  const inflight: { docs: string[][]; encoded: Promise<number[][]> }[] = [];
  const start = (): void => {
    const texts = pending.flatMap((doc) => doc.map((p, i) => (i < doc.length - 1 ? `${p}\n` : p)));
    inflight.push({ docs: pending, encoded: tokenizer.encodeBatch(texts) });
    pending = [];
    pendingParagraphs = 0;
  };
  const cutOldest = async (): Promise<void> => {
    const { docs: batch, encoded } = inflight.shift()!;
    const ids = await encoded;
    let k = 0;
    for (const texts of batch) {
      if (full()) return;
      docs++;
      texts.forEach((_, i) => {
        const piece = [...(i === 0 && bos !== undefined ? [bos] : []), ...ids[k++]!, ...(i === texts.length - 1 && eos !== undefined ? [eos] : [])];
        tokens += piece.length;
        cutter.push(piece, true);
      });
    }
  };
  try {
    for await (const paragraphs of documents) {
      const texts = paragraphs.filter((p) => p.length > 0);
      if (texts.length === 0) continue;
      pending.push(texts);
      pendingParagraphs += texts.length;
      if (pendingParagraphs >= ENCODE_BATCH) {
        start();
        if (inflight.length >= 2) await cutOldest();
      }
      if (full()) break;
    }
    if (pending.length > 0 && !full()) start();
    while (inflight.length > 0 && !full()) await cutOldest();
  } finally {
    // Batches read ahead past maxBlocks (or past an error) are settled, never left to reject unhandled.
    await Promise.allSettled(inflight.map((x) => x.encoded));
  }
  const blocks = maxBlocks > 0 ? cutter.out.slice(0, maxBlocks) : cutter.out;
  const targetChars: number[] = [];
  for (const b of blocks) targetChars.push([...(await tokenizer.decode(b.slice(1), { skipSpecialTokens: true }))].length);
  return { blocks, result: { blocks: blocks.length, seqLen, tokens, droppedTokens: tokens - blocks.length * seqLen, documents: docs, targetChars } };
}

/**
 * Writes blocks (and an optional per-token loss mask, and per-block target characters for bits per
 * character) as the trainer's safetensors file.
 */
export function writeBlocks(path: string, blocks: number[][], lossMask?: number[][], targetChars?: number[], tokenizer?: Tokenizer): void {
  if (blocks.length === 0)
    throw new LepError('LEP_CORPUS_EMPTY', `no complete block to write to ${path}\nHINT: the corpus is shorter than one block; add text or lower --seq-len.`);
  const seqLen = blocks[0]!.length;
  const tokens = new Int32Array(blocks.length * seqLen);
  blocks.forEach((b, i) => tokens.set(b, i * seqLen));
  const tensors: NativeTensorData[] = [{ name: 'tokens', dtype: 'I32', shape: [blocks.length, seqLen], data: new Uint8Array(tokens.buffer) }];
  if (lossMask) {
    const mask = new Uint8Array(blocks.length * seqLen);
    lossMask.forEach((m, i) => mask.set(m, i * seqLen));
    tensors.push({ name: 'loss_mask', dtype: 'U8', shape: [blocks.length, seqLen], data: mask });
  }
  if (targetChars) {
    if (targetChars.length !== blocks.length) throw new LepError('LEP_BAD_DATA', `${targetChars.length} target character counts for ${blocks.length} blocks`);
    tensors.push({ name: 'target_chars', dtype: 'I32', shape: [blocks.length], data: new Uint8Array(Int32Array.from(targetChars).buffer) });
  }
  writeSafetensors(path, tensors, { format: 'lep-blocks', seq_len: String(seqLen), ...(tokenizer ? { [VOCAB_KEY]: tokenizer.vocabFingerprint } : {}) });
}

/** The metadata key of the packing tokenizer's vocabFingerprint (files packed before lep 0.1.x lack it). */
const VOCAB_KEY = 'tokenizer_vocab';

/**
 * Refuses blocks packed with another vocabulary than `tokenizer`'s: their ids would name other tokens,
 * and training on them runs without an error and learns nothing useful. Files without the record pass
 * (`tokenizer` is then not loaded: the trainer itself never needs it).
 */
export function checkBlocksVocabulary(path: string, header: { metadata: Record<string, string> }, tokenizer: () => Tokenizer, flag: string, modelDir: string): void {
  const packed = header.metadata[VOCAB_KEY];
  if (packed === undefined) return;
  const own = tokenizer().vocabFingerprint;
  if (packed === own) return;
  throw new LepError(
    'LEP_VOCAB_MISMATCH',
    `${flag} ${path} was packed with another tokenizer than ${modelDir}'s (vocabulary ${packed}, the model's ${own}): its token ids name other tokens` +
      `\nHINT: pack the corpus again with the model's tokenizer: lep data pack --tokenizer ${modelDir} ...`,
  );
}
