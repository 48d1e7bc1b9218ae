/**
 * Tokenizer metrics on a corpus, streamed (one batch of texts in memory at a time), and vocabulary
 * comparison between two tokenizers. Definitions (every count excludes special tokens that the
 * post-processor would add: texts are encoded with `addSpecialTokens: false`):
 *
 * - **symbols per token** (docs/method.md §1): total characters / total tokens. A character is a Unicode code
 *   point of the text as read (line mode: one line, without its newline); spaces count. The "▁" a
 *   SentencePiece normaliser prepends is not a character of the text and does not count.
 * - **tokens per word**: tokens / words, a word being a maximal run of non-whitespace (`\S+`).
 * - **bytes per token**: UTF-8 bytes of the text / tokens.
 * - **byte-fallback rate**: the share of tokens that stand for a raw byte rather than for text.
 *   SentencePiece-style (and Unigram) vocabularies: `<0xNN>` pieces. Byte-level vocabularies have no such
 *   pieces (every byte is a token), so the analogue is a token whose bytes are not whole UTF-8 characters
 *   (for example the first byte of "ж" alone): what BPE emits when the vocabulary lacks a character.
 * - **unknown rate**: the share of tokens that are the model's unknown token.
 * - **vocabulary overlap** (`vocabularyOverlap`): base vocabularies (added tokens left out) compared as
 *   surface strings (`surfaceKey`), so "▁the" (SentencePiece) and "Ġthe" (byte-level) are the same entry.
 * - **changed share** (`compareTokenizers`): the share of texts whose segmentation differs between the two
 *   tokenizers, tokens compared by surface string (so a shrunk tokenizer's re-packed ids do not count as a
 *   change, and an Extended tokenizer counts as changed exactly where a new token is used). Run it on
 *   original-language text to see what an Extended or Optimized vocabulary does to the old language.
 */
import { LepError, optionError } from '../errors.js';
import { byteLevelToBytes, byteLevelToText, isByteFallbackPiece, SPM_SPACE, utf8SequenceLength } from './byteLevel.js';
import { Tokenizer } from './Tokenizer.js';
import { readTokenizerView, type PieceStyle, type TokenizerView } from './view.js';

/** Texts encoded per `encodeBatch` call. */
export const DEFAULT_METRICS_BATCH_SIZE = 256;

export interface MetricsOptions {
  /** Texts encoded per `encodeBatch` call (bigger batches use HF's threads better, and more memory). Defaults to `256`. */
  batchSize?: number;
  /** Called after each batch with the texts and UTF-8 bytes measured so far. Defaults to none. */
  onProgress?: (event: { texts: number; bytes: number }) => void;
  /** Stops between batches with the signal's reason. Defaults to none. */
  signal?: AbortSignal;
}

/** Counts and ratios of one tokenizer on one corpus (see the module doc for each definition). */
export interface TokenizerMetrics {
  texts: number;
  characters: number;
  bytes: number;
  words: number;
  tokens: number;
  symbolsPerToken: number;
  tokensPerWord: number;
  bytesPerToken: number;
  byteFallbackTokens: number;
  byteFallbackRate: number;
  unknownTokens: number;
  unknownRate: number;
}

/** Base-vocabulary overlap of two tokenizers, by surface string. */
export interface VocabularyOverlap {
  /** Distinct surface strings of each base vocabulary. */
  a: number;
  b: number;
  shared: number;
  /** shared / |a ∪ b|: 1 for a tokenizer with itself. */
  jaccard: number;
  /** shared / a: the share of a's vocabulary that b also has. */
  aInB: number;
  /** shared / b. */
  bInA: number;
}

export interface TokenizerComparison {
  overlap: VocabularyOverlap;
  /** Texts compared and those whose segmentation differs. */
  texts: number;
  changedTexts: number;
  /** changedTexts / texts. */
  changedShare: number;
  a: TokenizerMetrics;
  b: TokenizerMetrics;
}

// ---- surface strings -----------------------------------------------------------------------------------

const hexByte = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
// ignoreBOM: keep a leading U+FEFF (the default strips it, and "ï»¿using" would read as "using").
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes as text, each byte that is not part of a whole UTF-8 character written `<0xNN>`. */
function bytesToSurface(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const len = utf8SequenceLength(bytes[i]!);
    if (i + len <= bytes.length) {
      try {
        out += strictUtf8.decode(bytes.subarray(i, i + len));
        i += len;
        continue;
      } catch {
        // not a whole character: spell the lead byte and go on
      }
    }
    out += hexByte(bytes[i]!);
    i++;
  }
  return out;
}

/**
 * The text a base-vocabulary token stands for, in one spelling for all styles: a space is " " (not "▁"
 * or "Ġ"), a byte that is not part of a whole UTF-8 character is `<0xNN>`, an ASCII byte piece is its
 * character. So SentencePiece "▁мир", byte-level "ĠÐ¼Ð¸ÑĢ" and plain " мир" all give " мир".
 */
export function surfaceKey(token: string, style: PieceStyle): string {
  if (style === 'byte-level') {
    const bytes = byteLevelToBytes(token);
    return bytes ? bytesToSurface(bytes) : token;
  }
  if (isByteFallbackPiece(token)) return bytesToSurface(new Uint8Array([parseInt(token.slice(3, 5), 16)]));
  return style === 'sentencepiece' ? token.replaceAll(SPM_SPACE, ' ') : token;
}

/** Surface strings of the base vocabulary (added tokens left out). */
function baseSurfaces(view: TokenizerView): Set<string> {
  const added = new Set(view.added.map((a) => a.content));
  const out = new Set<string>();
  for (const t of view.vocab.keys()) if (!added.has(t)) out.add(surfaceKey(t, view.style));
  return out;
}

/** Base-vocabulary overlap by surface string (see `surfaceKey`); symmetric, 1 for a tokenizer with itself. */
export function vocabularyOverlap(a: Tokenizer, b: Tokenizer): VocabularyOverlap {
  const sa = baseSurfaces(readTokenizerView(a));
  const sb = baseSurfaces(readTokenizerView(b));
  let shared = 0;
  for (const k of sa) if (sb.has(k)) shared++;
  const union = sa.size + sb.size - shared;
  return { a: sa.size, b: sb.size, shared, jaccard: union ? shared / union : 1, aInB: sa.size ? shared / sa.size : 1, bInA: sb.size ? shared / sb.size : 1 };
}

// ---- per-id classes -----------------------------------------------------------------------------------

const FALLBACK = 1;
const UNKNOWN = 2;

/** What the metrics need per id: class flags and the surface string. */
interface IdTable {
  flags: Uint8Array;
  surface: string[];
}

function idTable(tokenizer: Tokenizer): IdTable {
  const view = readTokenizerView(tokenizer);
  const size = Math.max(view.size, tokenizer.size);
  const flags = new Uint8Array(size);
  const surface: string[] = new Array<string>(size).fill('');
  const added = new Set(view.added.map((a) => a.content));
  for (const [t, id] of view.vocab) {
    surface[id] = surfaceKey(t, view.style);
    if (added.has(t)) continue;
    if (view.style === 'byte-level') {
      if (byteLevelToBytes(t) && byteLevelToText(t) === undefined) flags[id]! |= FALLBACK;
    } else if (isByteFallbackPiece(t)) flags[id]! |= FALLBACK;
  }
  for (const a of view.added) surface[a.id] = a.content;
  if (view.unkToken !== undefined) {
    const id = view.vocab.get(view.unkToken) ?? view.added.find((a) => a.content === view.unkToken)?.id;
    if (id !== undefined) flags[id]! |= UNKNOWN;
  }
  return { flags, surface };
}

// ---- streaming measurement -------------------------------------------------------------------------

function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
}

/** JavaScript's `\s` set (all in the BMP), tested per UTF-16 unit: a regex per character is slow on large corpora. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** Maximal runs of non-whitespace (`\S+`). */
function countWords(s: string): number {
  let n = 0;
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const space = isSpace(s.charCodeAt(i));
    if (!space && !inWord) n++;
    inWord = !space;
  }
  return n;
}

interface Counter {
  tokens: number;
  fallback: number;
  unknown: number;
}

/** Text-side counts shared by every tokenizer measured in one pass. */
interface TextCounts {
  texts: number;
  characters: number;
  bytes: number;
  words: number;
}

function finish(t: TextCounts, c: Counter): TokenizerMetrics {
  const per = (x: number, y: number): number => (y > 0 ? x / y : 0);
  return {
    ...t,
    tokens: c.tokens,
    symbolsPerToken: per(t.characters, c.tokens),
    tokensPerWord: per(c.tokens, t.words),
    bytesPerToken: per(t.bytes, c.tokens),
    byteFallbackTokens: c.fallback,
    byteFallbackRate: per(c.fallback, c.tokens),
    unknownTokens: c.unknown,
    unknownRate: per(c.unknown, c.tokens),
  };
}

function checkBatchSize(o: MetricsOptions): number {
  const n = o.batchSize ?? DEFAULT_METRICS_BATCH_SIZE;
  if (!(Number.isInteger(n) && n >= 1)) throw optionError('batchSize', 'a positive integer', o.batchSize, '--batch-size');
  return n;
}

/**
 * Streams `corpus` once, encoding each batch with every tokenizer; `onBatch` sees each batch's texts and
 * ids (per tokenizer) after they are counted. Throws LEP_CORPUS_EMPTY when the corpus yields no text.
 */
async function measure(
  tokenizers: readonly Tokenizer[],
  corpus: AsyncIterable<string> | Iterable<string>,
  options: MetricsOptions,
  onBatch?: (ids: number[][][]) => void,
): Promise<TokenizerMetrics[]> {
  const batchSize = checkBatchSize(options);
  const tables = tokenizers.map(idTable);
  const text: TextCounts = { texts: 0, characters: 0, bytes: 0, words: 0 };
  const counters: Counter[] = tokenizers.map(() => ({ tokens: 0, fallback: 0, unknown: 0 }));
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    const all = await Promise.all(tokenizers.map((t) => t.encodeBatch(batch)));
    all.forEach((ids, k) => {
      const c = counters[k]!;
      const flags = tables[k]!.flags;
      for (const seq of ids) {
        c.tokens += seq.length;
        for (const id of seq) {
          const f = flags[id] ?? 0;
          if (f & FALLBACK) c.fallback++;
          if (f & UNKNOWN) c.unknown++;
        }
      }
    });
    onBatch?.(all);
    batch = [];
    options.onProgress?.({ texts: text.texts, bytes: text.bytes });
    options.signal?.throwIfAborted();
  };
  for await (const t of corpus) {
    if (typeof t !== 'string') throw new LepError('LEP_BAD_CORPUS', `metrics: the corpus yielded ${typeof t}, expected strings`);
    text.texts++;
    text.characters += codePoints(t);
    text.bytes += Buffer.byteLength(t, 'utf8');
    text.words += countWords(t);
    batch.push(t);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  if (text.characters === 0)
    throw new LepError(
      'LEP_CORPUS_EMPTY',
      `metrics: the corpus gave no text (${text.texts} texts, 0 characters)\nHINT: pass a corpus of text in the language to measure (files, globs, directories, JSONL; see readTexts).`,
    );
  return counters.map((c) => finish(text, c));
}

/** Metrics of several tokenizers on one corpus, read once. */
export async function measureTokenizers(
  tokenizers: readonly Tokenizer[],
  corpus: AsyncIterable<string> | Iterable<string>,
  options: MetricsOptions = {},
): Promise<TokenizerMetrics[]> {
  if (tokenizers.length === 0) throw optionError('tokenizers', 'at least one tokenizer', tokenizers);
  return measure(tokenizers, corpus, options);
}

/** Metrics of one tokenizer on a corpus (see the module doc). */
export async function measureTokenizer(
  tokenizer: Tokenizer,
  corpus: AsyncIterable<string> | Iterable<string>,
  options: MetricsOptions = {},
): Promise<TokenizerMetrics> {
  return (await measure([tokenizer], corpus, options))[0]!;
}

/**
 * Compares `a` (usually the original) with `b` (Extended, Optimized, another tokenizer) on `corpus`:
 * vocabulary overlap, the share of texts whose segmentation changed, and each one's metrics.
 */
export async function compareTokenizers(
  a: Tokenizer,
  b: Tokenizer,
  corpus: AsyncIterable<string> | Iterable<string>,
  options: MetricsOptions = {},
): Promise<TokenizerComparison> {
  const [sa, sb] = [idTable(a).surface, idTable(b).surface];
  let texts = 0;
  let changedTexts = 0;
  const [ma, mb] = await measure([a, b], corpus, options, ([idsA, idsB]) => {
    for (let i = 0; i < idsA!.length; i++) {
      const x = idsA![i]!;
      const y = idsB![i]!;
      texts++;
      if (x.length !== y.length || x.some((id, j) => sa[id] !== sb[y[j]!])) changedTexts++;
    }
  });
  return { overlap: vocabularyOverlap(a, b), texts, changedTexts, changedShare: texts ? changedTexts / texts : 0, a: ma!, b: mb! };
}
