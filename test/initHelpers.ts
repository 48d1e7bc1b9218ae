/** Helpers of the embedding-initialisation tests: a hand-sized Russian donor BPE, Extended tokenizers, rows read back. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { getNative } from '../ts/binding/loadNative.js';
import { weightFilesOf } from '../ts/checkpoint/modelDir.js';
import { mistralTokenizerDir } from '../ts/data/builtinTokenizers.js';
import type { Json } from '../ts/tokenizer/bpeJson.js';
import { extendTokenizer } from '../ts/tokenizer/extend.js';
import { saveTokenizerDir } from '../ts/tokenizer/shrink.js';
import { Tokenizer } from '../ts/tokenizer/Tokenizer.js';
import { tempDir } from './helpers.js';

export const LLAMA3_DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'llama3-8k');

/**
 * A SentencePiece-style BPE (Mistral's tokenizer.json layout) that knows exactly `words` ("▁привет"):
 * their characters, and left-to-right merges building each word one character at a time.
 */
export function donorFor(words: string[]): Json {
  const mistral = JSON.parse(readFileSync(join(mistralTokenizerDir(), 'tokenizer.json'), 'utf8')) as Json;
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  const add = (t: string): void => {
    if (!(t in vocab)) vocab[t] = Object.keys(vocab).length;
  };
  const merges: [string, string][] = [];
  const seen = new Set<string>();
  for (const w of words) for (const c of w) add(c);
  for (const w of words) {
    const chars = [...w];
    let cur = chars[0]!;
    for (const c of chars.slice(1)) {
      if (!seen.has(`${cur} ${c}`)) {
        seen.add(`${cur} ${c}`);
        merges.push([cur, c]);
      }
      cur += c;
      add(cur);
    }
  }
  return { ...mistral, model: { ...(mistral.model as Json), vocab, merges } };
}

/** The Extended tokenizer of `originalDir` with `words` added, written to a new directory. */
export function extendedTokenizerDir(originalDir: string, words: string[]): string {
  const original = Tokenizer.fromDir(originalDir);
  const r = extendTokenizer(original, donorFor(words));
  const dir = join(tempDir('lep-init-tok-'), 'tokenizer');
  saveTokenizerDir(dir, r.json, r.config);
  return dir;
}

export interface Matrix {
  rows: number;
  cols: number;
  dtype: string;
  /** raw bytes as stored */
  bytes: Uint8Array;
  /** float32 values (bf16/f16 widened) */
  values: Float32Array;
}

function widen(dtype: string, bytes: Uint8Array): Float32Array {
  if (dtype === 'F32') return new Float32Array(bytes.slice().buffer);
  if (dtype === 'BF16') {
    const u16 = new Uint16Array(bytes.slice().buffer);
    const u32 = new Uint32Array(u16.length);
    for (let i = 0; i < u16.length; i++) u32[i] = u16[i]! << 16;
    return new Float32Array(u32.buffer);
  }
  throw new Error(`test helper reads F32 and BF16, not ${dtype}`);
}

/** Every 2-D tensor of a model directory by name (all files of the checkpoint). */
export function readMatrices(modelDir: string): Map<string, Matrix> {
  const out = new Map<string, Matrix>();
  for (const f of weightFilesOf(modelDir))
    for (const t of getNative().readSafetensors(f))
      if (t.shape.length === 2) out.set(t.name, { rows: t.shape[0]!, cols: t.shape[1]!, dtype: t.dtype, bytes: t.data, values: widen(t.dtype, t.data) });
  return out;
}

export function row(m: Matrix, i: number): Float32Array {
  return m.values.subarray(i * m.cols, (i + 1) * m.cols);
}

export function rowBytes(m: Matrix, i: number): Uint8Array {
  const size = m.bytes.length / (m.rows * m.cols);
  return m.bytes.subarray(i * m.cols * size, (i + 1) * m.cols * size);
}

/** Mean of rows in float32, summed in order then divided (the method's formula). */
export function meanRows(m: Matrix, ids: number[]): Float32Array {
  const out = new Float32Array(m.cols);
  for (const id of ids) {
    const r = row(m, id);
    for (let k = 0; k < m.cols; k++) out[k] = Math.fround(out[k]! + r[k]!);
  }
  for (let k = 0; k < m.cols; k++) out[k] = Math.fround(out[k]! / ids.length);
  return out;
}

/** Mean of rows in float64 (an independent global mean). */
export function meanRows64(m: Matrix, ids: Iterable<number>): Float64Array {
  const out = new Float64Array(m.cols);
  let n = 0;
  for (const id of ids) {
    const r = row(m, id);
    for (let k = 0; k < m.cols; k++) out[k]! += r[k]!;
    n++;
  }
  for (let k = 0; k < m.cols; k++) out[k]! /= n;
  return out;
}
