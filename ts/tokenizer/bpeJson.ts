/**
 * Reading and writing the BPE model of a Hugging Face tokenizer.json: the vocabulary, merges and added
 * tokens that vocabulary edits (extend, shrink, the final tokenizer of propagation) read and write back,
 * keeping the file's own spelling (merges as "a b" strings or [a, b] arrays, key order).
 */
import { LepError } from '../errors.js';
import { isByteLevel } from './byteLevel.js';

export type Json = Record<string, unknown>;

/** A tokenizer.json object with its tokenizer_config.json; a loaded `Tokenizer` fits this shape. */
export interface TokenizerFiles {
  json: Json;
  config?: Json;
}

/** One entry of tokenizer.json `added_tokens`. */
export interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  [key: string]: unknown;
}

/** A BPE merge: left part, right part; the result is their concatenation. */
export type Merge = readonly [string, string];


/** The parts of a tokenizer.json BPE model that vocabulary edits touch. */
export interface BpeView {
  json: Json;
  model: Json;
  /** model.vocab: token -> id. */
  vocab: Map<string, number>;
  merges: Merge[];
  /** Whether model.merges is written as `[a, b]` arrays (newer tokenizers) rather than "a b" strings. */
  mergesAsArrays: boolean;
  added: AddedToken[];
  addedByContent: Map<string, AddedToken>;
  byteLevel: boolean;
  unkToken: string | undefined;
}

/** Parses one merge entry, "a b" or ["a", "b"]. */
export function parseMerge(m: unknown, where: string): Merge {
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
  if (typeof m === 'string') {
    const parts = m.split(' ');
    if (parts.length === 2) return [parts[0]!, parts[1]!];
  }
  throw new LepError('LEP_BAD_TOKENIZER', `${where}: merge ${JSON.stringify(m)} is neither "a b" nor ["a", "b"]`);
}

/** Writes merges in the original's form; arrays are forced when a part contains a space. */
export function formatMerges(merges: readonly Merge[], asArrays: boolean): unknown[] {
  const arrays = asArrays || merges.some(([a, b]) => a.includes(' ') || b.includes(' '));
  return merges.map(([a, b]) => (arrays ? [a, b] : `${a} ${b}`));
}

/** A key for a merge that cannot collide: length of the left part, then both parts. */
export function mergeKey([a, b]: Merge): string {
  return `${a.length}:${a}${b}`;
}

/**
 * Reads a tokenizer.json BPE model; `op` and `role` name the caller in error messages.
 * Throws LEP_UNSUPPORTED_TOKENIZER for Unigram, WordPiece, WordLevel or a BPE with word-piece affixes.
 */
export function readBpe(json: Json, role: 'original' | 'donor', op: 'extend' | 'shrink'): BpeView {
  const model = json.model as Json | undefined;
  const type = model && typeof model === 'object' ? String(model.type ?? (model.merges ? 'BPE' : 'unknown')) : 'missing';
  if (!model || type !== 'BPE') {
    const hint = type === 'Unigram'
      ? 'a Unigram vocabulary has no merges to extend or keep closed; use a BPE tokenizer (lep tokenizer train --type bpe), or the Unigram variant on its own.'
      : 'use a BPE tokenizer: SentencePiece-style with "▁" (Llama-2, Mistral) or byte-level (LLaMa-3, Qwen).';
    throw new LepError(
      'LEP_UNSUPPORTED_TOKENIZER',
      `${op}: the ${role} tokenizer.json has model type ${type}; lep can ${op} only BPE vocabularies\nHINT: ${hint}`,
    );
  }
  for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'])
    if (typeof model[key] === 'string' && model[key] !== '')
      throw new LepError(
        'LEP_UNSUPPORTED_TOKENIZER',
        `${op}: the ${role} BPE uses ${key} ${JSON.stringify(model[key])}; lep can ${op} only BPEs whose merges concatenate parts plainly (SentencePiece-style or byte-level)`,
      );
  const rawVocab = model.vocab;
  if (!rawVocab || typeof rawVocab !== 'object' || Array.isArray(rawVocab))
    throw new LepError('LEP_BAD_TOKENIZER', `${op}: the ${role} tokenizer.json has no model.vocab object`);
  const vocab = new Map<string, number>();
  for (const [t, id] of Object.entries(rawVocab as Record<string, unknown>)) {
    if (!Number.isInteger(id) || (id as number) < 0)
      throw new LepError('LEP_BAD_TOKENIZER', `${op}: the ${role} vocabulary gives ${JSON.stringify(t)} the id ${JSON.stringify(id)}`);
    vocab.set(t, id as number);
  }
  const rawMerges = (model.merges as unknown[] | undefined) ?? [];
  const merges = rawMerges.map((m) => parseMerge(m, `${op}: the ${role} tokenizer.json`));
  const added = ((json.added_tokens as AddedToken[] | undefined) ?? []).map((a) => ({ ...a }));
  const addedByContent = new Map(added.map((a) => [a.content, a]));
  return {
    json,
    model,
    vocab,
    merges,
    mergesAsArrays: Array.isArray(rawMerges[0]),
    added,
    addedByContent,
    byteLevel: isByteLevel(json),
    unkToken: typeof model.unk_token === 'string' ? model.unk_token : undefined,
  };
}

/** Highest id used by the vocabulary or the added tokens; -1 when empty. */
export function highestId(view: BpeView): number {
  let max = -1;
  for (const id of view.vocab.values()) if (id > max) max = id;
  for (const a of view.added) if (a.id > max) max = a.id;
  return max;
}

/**
 * Makes Hugging Face `tokenizers` give every added token the id written for it. On load, HF resolves an
 * added token through `model.vocab` when it is there, and otherwise hands out ids counting up from the
 * size of `model.vocab` in `added_tokens` order, ignoring the written id. So an added token that is not
 * in `model.vocab` keeps its id only when the vocabulary is exactly 0..V-1 and such tokens come in order
 * at V, V+1, ...; any other added token is also put into `vocab` under its id (the Mistral layout, where
 * `<s>` is both in the vocabulary and an added token). Sorts `added` by id; returns how many were put in.
 */
export function placeAddedTokens(vocab: Map<string, number>, added: AddedToken[]): number {
  added.sort((a, b) => a.id - b.id);
  let inserted = 0;
  for (;;) {
    let next = vocab.size;
    let misplaced: AddedToken | undefined;
    for (const a of added) {
      if (vocab.has(a.content)) continue;
      if (a.id === next) next++;
      else {
        misplaced = a;
        break;
      }
    }
    if (!misplaced) return inserted;
    vocab.set(misplaced.content, misplaced.id);
    inserted++;
  }
}

/** model.vocab as a JSON object, in id order (`Object.fromEntries` keeps a token named `__proto__` an own key). */
export function vocabObject(vocab: Map<string, number>): Record<string, number> {
  return Object.fromEntries([...vocab].sort((x, y) => x[1] - y[1]));
}

/** Copies tokenizer.json with a new model and added tokens, keeping the key order of the original. */
export function withModel(json: Json, model: Json, addedTokens: AddedToken[]): Json {
  const out: Json = {};
  for (const key of Object.keys(json)) {
    if (key === 'model') out.model = model;
    else if (key === 'added_tokens') out.added_tokens = addedTokens;
    else out[key] = structuredClone(json[key]);
  }
  if (!('added_tokens' in out)) out.added_tokens = addedTokens;
  if (!('model' in out)) out.model = model;
  return out;
}
