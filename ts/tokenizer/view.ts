/**
 * A typed, read-only view of the parts of a `tokenizer.json` that the method edits (docs/method.md §1): the
 * model type, its vocabulary and merges, added and special tokens, and which piece spelling the
 * pipeline uses. Metrics, `stats` and `compare` read tokenizers through it; extend and shrink read the
 * same BPE fields through `readBpe` (extend.ts), which this view reuses for BPE models.
 *
 * Hugging Face's pipeline, in order (the stages named here are the `type`s of its JSON nodes):
 *
 *   1. normalizer      (SentencePiece-style: Prepend "▁" + Replace " " → "▁"; or none)
 *   2. pre_tokenizer   (byte-level: Split regex + ByteLevel; newer SentencePiece conversions: Metaspace)
 *   3. model           (BPE with merges, or Unigram with scores; WordPiece and WordLevel are not supported)
 *   4. post_processor  (BOS insertion: TemplateProcessing, or ByteLevel)
 *   5. decoder         (Replace "▁" → " " + ByteFallback + Fuse + Strip; or ByteLevel)
 */
import { LepError } from '../errors.js';
import { isByteLevel, SPM_SPACE } from './byteLevel.js';
import { readBpe, type AddedToken, type Json, type Merge, type TokenizerFiles } from './bpeJson.js';

export type { AddedToken, Merge } from './bpeJson.js';

/** The model types lep reads. */
export type ModelKind = 'BPE' | 'Unigram';
export const SUPPORTED_MODEL_KINDS: readonly ModelKind[] = ['BPE', 'Unigram'];

/**
 * How pieces spell text:
 * - `sentencepiece`: text pieces with "▁" (U+2581) for a space, `<0xNN>` byte-fallback pieces (Llama-2, Mistral);
 * - `byte-level`: GPT-2 byte characters, "Ġ" for a space (LLaMa-3, Qwen);
 * - `plain`: neither marker found in the pipeline (pieces are plain text).
 */
export type PieceStyle = 'sentencepiece' | 'byte-level' | 'plain';

/** A special token of tokenizer_config.json (`bos_token` ...) and its id. */
export interface SpecialToken {
  content: string;
  id: number | undefined;
}

export interface TokenizerView {
  modelType: ModelKind;
  style: PieceStyle;
  /** model.vocab: token -> id (Unigram: piece -> its index). Added tokens appear only where tokenizer.json lists them here too. */
  vocab: Map<string, number>;
  /** Unigram log-probabilities by id; empty for BPE. */
  scores: number[];
  /** BPE merges in rank order; empty for Unigram. */
  merges: Merge[];
  /** tokenizer.json `added_tokens`, in file order. */
  added: AddedToken[];
  /** bos/eos/unk/pad of tokenizer_config.json, where set. */
  specials: Partial<Record<'bos' | 'eos' | 'unk' | 'pad', SpecialToken>>;
  /** The model's unknown token (BPE `unk_token`, Unigram `unk_id`), if any. */
  unkToken: string | undefined;
  /** Whether the model falls back to `<0xNN>` pieces for characters it lacks. */
  byteFallback: boolean;
  /** Kinds of the pipeline nodes: `Sequence(Prepend, Replace)`, `ByteLevel`, `none`, ... */
  normalizer: string;
  preTokenizer: string;
  decoder: string;
  /** Highest id in use (base or added) + 1. */
  size: number;
}

/** `Sequence(Prepend, Replace)`-style description of a pipeline node; `none` when absent. */
export function nodeKind(node: unknown): string {
  if (!node || typeof node !== 'object') return 'none';
  const o = node as Json;
  for (const key of ['normalizers', 'pretokenizers', 'decoders', 'processors'])
    if (Array.isArray(o[key])) return `${String(o.type)}(${(o[key] as unknown[]).map(nodeKind).join(', ')})`;
  return String(o.type ?? 'unknown');
}

/** True when a normalizer or pre-tokenizer writes spaces as "▁" (Metaspace, or Replace " " → "▁"). */
function writesMetaspace(node: unknown): boolean {
  if (!node || typeof node !== 'object') return false;
  const o = node as Json;
  if (o.type === 'Metaspace') return true;
  if (o.type === 'Replace' && o.content === SPM_SPACE) return true;
  for (const key of ['normalizers', 'pretokenizers'])
    if (Array.isArray(o[key]) && (o[key] as unknown[]).some(writesMetaspace)) return true;
  return false;
}

/** The piece spelling of a tokenizer.json (see `PieceStyle`). */
export function pieceStyle(json: Json): PieceStyle {
  if (isByteLevel(json)) return 'byte-level';
  return writesMetaspace(json.normalizer) || writesMetaspace(json.pre_tokenizer) ? 'sentencepiece' : 'plain';
}

function unsupported(type: string, where: string): LepError {
  return new LepError(
    'LEP_UNSUPPORTED_TOKENIZER',
    `${where} has model type ${type}; lep reads only BPE and Unigram tokenizers\n` +
      'HINT: the method works on SentencePiece-style (Llama-2, Mistral) or byte-level (LLaMa-3, Qwen) BPE and on Unigram vocabularies; WordPiece and WordLevel (BERT-style) tokenizers are not supported.',
  );
}

function readUnigram(model: Json, where: string): { vocab: Map<string, number>; scores: number[]; unkToken: string | undefined } {
  if (!Array.isArray(model.vocab)) throw new LepError('LEP_BAD_TOKENIZER', `${where}: the Unigram model.vocab is not a list of [piece, score]`);
  const vocab = new Map<string, number>();
  const scores: number[] = [];
  (model.vocab as unknown[]).forEach((entry, id) => {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'number')
      throw new LepError('LEP_BAD_TOKENIZER', `${where}: Unigram vocabulary entry ${id} is ${JSON.stringify(entry)?.slice(0, 60)}, not [piece, score]`);
    if (!vocab.has(entry[0])) vocab.set(entry[0], id);
    scores.push(entry[1]);
  });
  const unkId = model.unk_id;
  const unkToken = typeof unkId === 'number' ? (model.vocab as [string, number][])[unkId]?.[0] : undefined;
  return { vocab, scores, unkToken };
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

/**
 * Reads the view of a tokenizer.json (+ tokenizer_config.json for the special-token map); a loaded
 * `Tokenizer` fits the argument. `where` names the tokenizer in error messages.
 * Throws LEP_UNSUPPORTED_TOKENIZER for WordPiece, WordLevel, an unknown model type, or a BPE whose merges
 * use word-piece affixes (continuing_subword_prefix, end_of_word_suffix).
 */
export function readTokenizerView(files: TokenizerFiles, where = 'tokenizer.json'): TokenizerView {
  const json = files.json;
  const model = json.model as Json | undefined;
  const type = model && typeof model === 'object' ? String(model.type ?? (model.merges ? 'BPE' : 'unknown')) : 'missing';
  if (!SUPPORTED_MODEL_KINDS.includes(type as ModelKind)) throw unsupported(type, where);
  const added = ((json.added_tokens as AddedToken[] | undefined) ?? []).map((a) => ({ ...a }));
  let vocab: Map<string, number>;
  let scores: number[] = [];
  let merges: Merge[] = [];
  let unkToken: string | undefined;
  if (type === 'BPE') {
    for (const key of ['continuing_subword_prefix', 'end_of_word_suffix'])
      if (typeof model![key] === 'string' && model![key] !== '')
        throw new LepError(
          'LEP_UNSUPPORTED_TOKENIZER',
          `${where}: the BPE uses ${key} ${JSON.stringify(model![key])}; lep reads only BPEs whose merges concatenate parts plainly\nHINT: use a SentencePiece-style or byte-level BPE tokenizer.`,
        );
    const bpe = readBpe(json, 'original', 'extend');
    ({ vocab, merges, unkToken } = bpe);
  } else {
    ({ vocab, scores, unkToken } = readUnigram(model!, where));
  }
  let size = 0;
  for (const id of vocab.values()) size = Math.max(size, id + 1);
  for (const a of added) size = Math.max(size, a.id + 1);
  const idOf = (t: string): number | undefined => vocab.get(t) ?? added.find((a) => a.content === t)?.id;
  const specials: TokenizerView['specials'] = {};
  for (const kind of ['bos', 'eos', 'unk', 'pad'] as const) {
    const content = tokenString(files.config?.[`${kind}_token`]);
    if (content !== undefined) specials[kind] = { content, id: idOf(content) };
  }
  return {
    modelType: type as ModelKind,
    style: pieceStyle(json),
    vocab,
    scores,
    merges,
    added,
    specials,
    unkToken,
    byteFallback: model!.byte_fallback === true,
    normalizer: nodeKind(json.normalizer),
    preTokenizer: nodeKind(json.pre_tokenizer),
    decoder: nodeKind(json.decoder),
    size,
  };
}
