/**
 * Shrunk vocabulary, the first half of "Optimized" (docs/method.md §1): keep N base tokens of an original BPE
 * tokenizer, closed under merges, re-pack ids densely, and return the map old id -> new id that the
 * embedding stages need. `extendTokenizer` then adds the target-language tokens (Optimized = shrink + extend).
 *
 * What N counts: **base tokens**, the entries of `model.vocab` that are not added tokens. The base
 * alphabet (all 256 byte characters of a byte-level vocabulary; the `<0xNN>` pieces and "▁" of a
 * SentencePiece-style one; the unknown token when it is a base token) is always kept and counts in N.
 * Every added token (specials such as `<s>`, `<|eot_id|>`) is kept on top of N. The result has exactly
 * N base tokens + all added tokens, so its size is N + (number of added tokens).
 *
 * The algorithm:
 *
 * 1. Priority. `frequency` (the paper): encode the corpus with the original tokenizer (Hugging Face
 *    `tokenizers`, no special tokens) and order base tokens by count, most frequent first, ties and
 *    unseen tokens by original id (low ids are the early, common merges). `first-ids` (the reference
 *    code): order by original id, so the result is ids < N when that prefix is already closed.
 * 2. Closed selection (`selectClosed`, in extend.ts): start from the alphabet; take tokens in priority
 *    order, each together with the parts it needs, recursively. A token's parts are those of the last
 *    merge BPE applies when it encodes the token's own string (`lastMerge`), so every token on that path
 *    is kept too; only for a token whose own string does not encode to it (possible under
 *    `ignore_merges`) any merge building it will do (one whose parts are already kept, else the earliest).
 *    Consequence: the kept merges are a subset of the original's in the same order, and each kept token's
 *    path survives, so any text whose original tokens are all kept encodes to the same tokens after
 *    shrinking. A token whose closure does not fit the remaining room is skipped and retried in a later
 *    pass. This never exceeds N and fills it exactly (see `selectClosed`). Tokens the original itself
 *    cannot build from its leaves through its merges are never kept.
 * 3. Re-pack: kept base tokens and added tokens in original id order get ids 0, 1, 2, ...; merges whose
 *    parts and result are kept stay, in original order; added-token ids, post-processor ids and
 *    tokenizer_config.json `added_tokens_decoder` are remapped.
 */
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { writeFileAtomic, writeJsonAtomic } from '../util/atomicWrite.js';
import { BYTE_TO_CHAR, isByteFallbackPiece, SPM_SPACE } from './byteLevel.js';
import { formatMerges, mergeKey, placeAddedTokens, readBpe, vocabObject, withModel, type AddedToken, type Json, type Merge, type TokenizerFiles } from './bpeJson.js';
import { isByteLevelLeaf, isSentencePieceLeaf, reachableTokens, selectClosed, type MergeGraph } from './mergeClosure.js';
import { Tokenizer } from './Tokenizer.js';
import { checkOptions, defaultsOf, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { SHRINK_SPEC, type ShrinkRule } from './shrinkOptions.js';

/** `frequency`: the N base tokens most used on the corpus (the paper); `first-ids`: the N lowest ids (the reference code). */
export { SHRINK_RULES, type ShrinkRule } from './shrinkOptions.js';
/** The defaults of SHRINK_SPEC (shrinkOptions.ts). */
export const SHRINK_DEFAULTS = defaultsOf(SHRINK_SPEC);
/** Texts encoded per `encodeBatch` call while counting. */
export const DEFAULT_SHRINK_BATCH_SIZE = SHRINK_DEFAULTS.batchSize;
/** File name of the id map written next to a shrunk tokenizer. */
export const ID_MAP_FILE = 'id_map.json';

/** The shrink options: SHRINK_SPEC (shrinkOptions.ts) gives each one's type, bounds, default and doc. */
export type ShrinkOptions = OptionsOf<typeof SHRINK_SPEC>;

/** The map between old and new ids, as written to id_map.json. */
export interface IdMap {
  /** Size of the original (highest id + 1). */
  old_size: number;
  /** Size of the shrunk tokenizer (highest id + 1). */
  new_size: number;
  /** new_to_old[newId] = oldId, for every new id (dense). */
  new_to_old: number[];
  /** old_to_new[oldId] = newId for every kept old id; absent old ids were dropped. */
  old_to_new: Record<string, number>;
}

export interface ShrinkStats {
  rule: ShrinkRule;
  /** Base tokens before and after (after = N). */
  baseBefore: number;
  baseAfter: number;
  /** Always-kept alphabet tokens (counted in N). */
  alphabet: number;
  /** Added tokens kept on top of N. */
  addedTokens: number;
  /** Kept tokens that are not among the N first by priority: parts pulled in by closure. */
  closureParts: number;
  /** Original base tokens the original cannot build through its own merges (never kept). */
  unreachable: number;
  /** Texts and tokens counted (0 under `first-ids`). */
  corpusTexts: number;
  corpusTokens: number;
  /** Total size (N + added tokens). */
  size: number;
}

export interface ShrinkResult {
  json: Json;
  config: Json;
  idMap: IdMap;
  stats: ShrinkStats;
}

/** Counts, per original id, how often encoding the corpus (no special tokens) produces it. */
export async function countTokens(
  tokenizer: Tokenizer,
  corpus: AsyncIterable<string> | Iterable<string>,
  batchSize = DEFAULT_SHRINK_BATCH_SIZE,
): Promise<{ counts: Map<number, number>; texts: number; tokens: number }> {
  const counts = new Map<number, number>();
  let texts = 0;
  let tokens = 0;
  let batch: string[] = [];
  const flush = async (): Promise<void> => {
    if (!batch.length) return;
    for (const ids of await tokenizer.encodeBatch(batch))
      for (const id of ids) {
        counts.set(id, (counts.get(id) ?? 0) + 1);
        tokens++;
      }
    batch = [];
  };
  for await (const text of corpus) {
    if (typeof text !== 'string') throw new LepError('LEP_BAD_CORPUS', `shrink: the corpus yielded ${typeof text}, expected strings`);
    texts++;
    batch.push(text);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return { counts, texts, tokens };
}

/**
 * Runs BPE on `symbols` (merges by rank, leftmost first among equal ranks, as Hugging Face does) and
 * returns the last merge applied when the result is one symbol; undefined otherwise. For a token's own
 * characters this is the merge that builds the token when BPE encodes it.
 */
export function lastMerge(symbols: string[], rank: ReadonlyMap<string, number>): Merge | undefined {
  const s = [...symbols];
  let last: Merge | undefined;
  while (s.length > 1) {
    let best = -1;
    let bestRank = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < s.length; i++) {
      const r = rank.get(mergeKey([s[i]!, s[i + 1]!]));
      if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
    }
    if (best < 0) return undefined;
    last = [s[best]!, s[best + 1]!];
    s.splice(best, 2, s[best]! + s[best + 1]!);
  }
  return last;
}

/** Remaps `ids` inside a post_processor (TemplateProcessing special_tokens; Bert/Roberta sep and cls) by token string. */
function remapPostProcessor(node: unknown, newId: (token: string) => number | undefined): unknown {
  if (Array.isArray(node)) return node.map((n) => remapPostProcessor(n, newId));
  if (!node || typeof node !== 'object') return node;
  const o = { ...(node as Json) };
  const lookup = (t: string): number => {
    const id = newId(t);
    if (id === undefined) throw new LepError('LEP_BAD_TOKENIZER', `shrink: the post_processor uses ${JSON.stringify(t)}, which is not kept`);
    return id;
  };
  if (o.type === 'TemplateProcessing' && o.special_tokens && typeof o.special_tokens === 'object') {
    const st: Json = {};
    for (const [k, v] of Object.entries(o.special_tokens as Json)) {
      const e = v as { tokens?: string[]; ids?: number[] };
      st[k] = { ...e, ids: (e.tokens ?? []).map(lookup) };
    }
    o.special_tokens = st;
  }
  for (const key of ['sep', 'cls'])
    if (Array.isArray(o[key]) && typeof (o[key] as unknown[])[0] === 'string') o[key] = [(o[key] as unknown[])[0], lookup((o[key] as string[])[0]!)];
  if (Array.isArray(o.processors)) o.processors = o.processors.map((p) => remapPostProcessor(p, newId));
  return o;
}

/**
 * Shrinks `original` to `options.keep` base tokens (see the module doc for what is kept and how).
 * `corpus` is target-language text, streamed; it is not read under `rule: 'first-ids'`.
 */
export async function shrinkTokenizer(
  original: TokenizerFiles | Tokenizer,
  corpus: AsyncIterable<string> | Iterable<string> | null,
  options: ShrinkOptions,
): Promise<ShrinkResult> {
  checkOptions(SHRINK_SPEC, options, { kind: 'options' });
  const { rule, batchSize } = withDefaults(SHRINK_SPEC, options);
  const view = readBpe(original.json, 'original', 'shrink');

  // Base tokens and the always-kept alphabet.
  const base = [...view.vocab].filter(([t]) => !view.addedByContent.has(t)).sort((x, y) => x[1] - y[1]);
  const alphabet = new Set<string>();
  if (view.byteLevel) {
    for (const c of BYTE_TO_CHAR) if (view.vocab.has(c) && !view.addedByContent.has(c)) alphabet.add(c);
  } else {
    for (const [t] of base) if (isByteFallbackPiece(t) || t === SPM_SPACE) alphabet.add(t);
  }
  if (view.unkToken !== undefined && view.vocab.has(view.unkToken) && !view.addedByContent.has(view.unkToken)) alphabet.add(view.unkToken);
  const keep = options.keep;
  if (!(Number.isInteger(keep) && keep >= alphabet.size && keep <= base.length))
    throw optionError('keep', `an integer from ${alphabet.size} (the base alphabet) to ${base.length} (the original base vocabulary)`, keep, '--keep');

  // Merge graph of the original: a token's own BPE path when there is one, else any merge building it.
  const producers = new Map<string, Merge[]>();
  const rank = new Map<string, number>();
  view.merges.forEach((m, i) => {
    let list = producers.get(m[0] + m[1]);
    if (!list) producers.set(m[0] + m[1], (list = []));
    list.push(m);
    if (!rank.has(mergeKey(m))) rank.set(mergeKey(m), i);
  });
  const isLeaf = view.byteLevel ? isByteLevelLeaf : isSentencePieceLeaf;
  const split = view.byteLevel ? (t: string): string[] => t.split('') : (t: string): string[] => [...t];
  const memo = new Map<string, readonly Merge[]>();
  const graph: MergeGraph = {
    isLeaf,
    producers: (t) => {
      let list = memo.get(t);
      if (!list) {
        const own = isLeaf(t) ? undefined : lastMerge(split(t), rank);
        memo.set(t, (list = own && own[0] + own[1] === t ? [own] : (producers.get(t) ?? [])));
      }
      return list;
    },
  };
  const baseTokens = base.map(([t]) => t);
  const reachable = reachableTokens(baseTokens, graph, alphabet);

  // 1. Priority.
  let corpusTexts = 0;
  let corpusTokens = 0;
  let priority = baseTokens;
  if (rule === 'frequency') {
    const tokenizer = original instanceof Tokenizer ? original : Tokenizer.fromJson(JSON.stringify(original.json), original.config ?? {});
    const counted = await countTokens(tokenizer, corpus ?? [], batchSize);
    corpusTexts = counted.texts;
    corpusTokens = counted.tokens;
    if (corpusTokens === 0)
      throw new LepError(
        'LEP_CORPUS_EMPTY',
        `shrink: the corpus gave no tokens (${corpusTexts} texts)\nHINT: pass target-language text, or use rule "first-ids" (--rule first-ids), which needs no corpus.`,
      );
    const count = (id: number): number => counted.counts.get(id) ?? 0;
    priority = [...base].sort((x, y) => count(y[1]) - count(x[1]) || x[1] - y[1]).map(([t]) => t);
  }

  // 2. Closed selection.
  const selected = new Set(alphabet);
  selectClosed(priority, selected, keep - alphabet.size, graph, reachable);
  if (selected.size !== keep)
    throw new LepError(
      'LEP_SHRINK_TOO_FEW',
      `shrink: only ${selected.size} base tokens can be kept closed under merges, fewer than keep (--keep) ${keep}` +
        `\nHINT: ${base.length - reachable.size} of the original's ${base.length} base tokens cannot be built through its merges; lower keep.`,
    );
  const firstN = new Set(priority.filter((t) => !alphabet.has(t)).slice(0, keep - alphabet.size));
  const closureParts = [...selected].filter((t) => !alphabet.has(t) && !firstN.has(t)).length;

  // 3. Re-pack.
  const oldIdOf = new Map<string, number>();
  for (const [t, id] of view.vocab) oldIdOf.set(t, id);
  for (const a of view.added) oldIdOf.set(a.content, a.id);
  const keptOld = new Set<number>();
  for (const t of selected) keptOld.add(view.vocab.get(t)!);
  for (const a of view.added) keptOld.add(a.id);
  const newToOld = [...keptOld].sort((a, b) => a - b);
  const oldToNew = new Map(newToOld.map((o, n) => [o, n]));
  const newIdOf = (t: string): number | undefined => {
    const o = oldIdOf.get(t);
    return o === undefined ? undefined : oldToNew.get(o);
  };
  const vocab = new Map<string, number>();
  for (const [t, id] of view.vocab) if (selected.has(t) || view.addedByContent.has(t)) vocab.set(t, oldToNew.get(id)!);
  const merges = view.merges.filter(([a, b]) => vocab.has(a) && vocab.has(b) && vocab.has(a + b));
  const addedTokens: AddedToken[] = view.added.map((a) => ({ ...a, id: oldToNew.get(a.id)! }));
  placeAddedTokens(vocab, addedTokens);
  const model: Json = { ...view.model, vocab: vocabObject(vocab), merges: formatMerges(merges, view.mergesAsArrays) };
  const json = withModel(view.json, model, addedTokens);
  if (json.post_processor) json.post_processor = remapPostProcessor(json.post_processor, newIdOf);

  const config = structuredClone(original.config ?? {});
  const decoder = config.added_tokens_decoder;
  if (decoder && typeof decoder === 'object' && !Array.isArray(decoder)) {
    const remapped: Json = {};
    const entries = Object.entries(decoder as Json)
      .map(([k, v]) => [oldToNew.get(Number(k)), v] as const)
      .filter((e): e is readonly [number, unknown] => e[0] !== undefined)
      .sort((x, y) => x[0] - y[0]);
    for (const [k, v] of entries) remapped[String(k)] = v;
    config.added_tokens_decoder = remapped;
  }

  let oldSize = 0;
  for (const id of oldIdOf.values()) oldSize = Math.max(oldSize, id + 1);
  const idMap: IdMap = {
    old_size: oldSize,
    new_size: newToOld.length,
    new_to_old: newToOld,
    old_to_new: Object.fromEntries(newToOld.map((o, n) => [String(o), n])),
  };
  return {
    json,
    config,
    idMap,
    stats: {
      rule,
      baseBefore: base.length,
      baseAfter: selected.size,
      alphabet: alphabet.size,
      addedTokens: view.added.length,
      closureParts,
      unreachable: base.length - reachable.size,
      corpusTexts,
      corpusTokens,
      size: newToOld.length,
    },
  };
}

/**
 * Writes `dir/tokenizer.json`, `dir/tokenizer_config.json` and each of `extraFiles` (file name -> JSON
 * value, or a string written as is; for example `{ [ID_MAP_FILE]: idMap }`), each atomically
 * (temporary file, fsync, rename). Creates `dir` if needed.
 */
export function saveTokenizerDir(dir: string, json: Json, config: Json, extraFiles: Record<string, unknown> = {}): void {
  for (const name of Object.keys(extraFiles))
    if (!name || basename(name) !== name || name === '.' || name === '..' || name === 'tokenizer.json' || name === 'tokenizer_config.json')
      throw optionError('extraFiles', 'plain file names other than tokenizer.json and tokenizer_config.json', name);
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(join(dir, 'tokenizer.json'), json);
  writeJsonAtomic(join(dir, 'tokenizer_config.json'), config);
  for (const [name, value] of Object.entries(extraFiles)) {
    if (typeof value === 'string') writeFileAtomic(join(dir, name), value);
    else writeJsonAtomic(join(dir, name), value);
  }
}
