/**
 * Extended vocabulary (docs/method.md §1, "Extended"): merge a target-language BPE (the donor) into an
 * original BPE tokenizer so that every original token, added token and special token keeps its id.
 *
 * The steps, in order:
 *
 * 1. Read both `tokenizer.json` BPE models (`readBpe`, `bpeJson.ts`); anything but BPE is refused.
 * 2. Donor added tokens: one whose string is an original added token with the other `special` flag is a
 *    clash (error), and so is a plain donor piece spelled like an original added token; donor specials
 *    are never carried (the original's specials stay); donor non-special added tokens (SentencePiece
 *    user-defined symbols) absent from the original are appended.
 * 3. Donor pieces, in donor id order (SentencePiece orders pieces by score, which stands in for
 *    frequency), minus `<0xNN>` byte-fallback pieces and added tokens, converted to the original's
 *    spelling: as-is for a SentencePiece-style original, "▁" → space → UTF-8 → GPT-2 byte characters
 *    for a byte-level one (`byteLevel.ts`). Merges are converted part by part.
 * 4. Selection closed under merges (`selectClosed`, `mergeClosure.ts`): a new token is added together with every part it
 *    needs to be built by a merge, recursively ("closure by adding parts"); a piece that no chain of
 *    donor merges can build from single characters is dropped. In a byte-level result a multi-byte
 *    character the original lacks (for example "Ð¶" = "ж") is built byte by byte with synthesised merges
 *    (`Ð ¶`), because the donor's characters are leaves there but bytes are the leaves here.
 * 5. Ids: new tokens get ids after the highest id in use (base or added), in selection order; then
 *    appended donor added tokens; then reserved padding tokens. Original added tokens that sit only in
 *    `added_tokens` below the new ids (LLaMa-3's specials) also enter `model.vocab` under their ids,
 *    because Hugging Face would otherwise renumber them on load (`placeAddedTokens`).
 * 6. Merges: the reference code's order (`new-first`) puts the donor's merges (and synthesised ones) first,
 *    then the original merges that are not duplicates, and sets `ignore_merges`, so that a word the original
 *    has whole keeps its token. That holds for a byte-level original, whose pre-tokenizer cuts text into
 *    words; a SentencePiece-style one (Mistral) has no pre-tokenizer, so every English word the donor's
 *    merges reach is re-segmented (the toy family's chat header `▁assistant` became `▁as si stant`, and an
 *    instruct model given its own rows stopped answering). `keep-ascii` (the default) therefore moves the
 *    donor merges whose result spells ASCII text behind the original merges; `original-first` keeps all
 *    original merges first. A donor merge is dropped when a part or its result is not in the result vocabulary (its piece
 *    was skipped or left over `maxNewTokens`): Hugging Face refuses such a merge and it could never fire,
 *    and the parts every kept new token needs were already added in step 4.
 *
 * tokenizer_config.json is copied unchanged (chat template, special-token map), except that appended
 * added tokens also enter its `added_tokens_decoder` when it has one.
 */
import { LepError } from '../errors.js';
import {
  formatMerges,
  highestId,
  mergeKey,
  placeAddedTokens,
  readBpe,
  vocabObject,
  withModel,
  type AddedToken,
  type Json,
  type Merge,
  type TokenizerFiles,
} from './bpeJson.js';
import { checkOptions, defaultsOf, withDefaults, type OptionsOf, type ResolvedOf } from '../options/optionSpec.js';
import { EXTEND_SPEC, type MergeOrder } from './extendOptions.js';
import { byteLevelToBytes, byteLevelToSentencePiece, isByteFallbackPiece, isWithinOneUtf8Char, sentencePieceToByteLevel } from './byteLevel.js';
import { isByteLevelLeaf, isSentencePieceLeaf, reachableTokens, selectClosed, type MergeGraph } from './mergeClosure.js';

export { MERGE_ORDERS, type MergeOrder } from './extendOptions.js';
/** The defaults of EXTEND_SPEC (extendOptions.ts). */
export const EXTEND_DEFAULTS = defaultsOf(EXTEND_SPEC);
export const DEFAULT_MERGE_ORDER: MergeOrder = EXTEND_DEFAULTS.mergeOrder;

/** The extend options: EXTEND_SPEC (extendOptions.ts) gives each one's type, bounds, default and doc. */
export type ExtendOptions = OptionsOf<typeof EXTEND_SPEC>;

export interface ExtendStats {
  /** Highest original id + 1. */
  originalSize: number;
  /** Id of the first new token (= originalSize). */
  firstNewId: number;
  /** New base tokens added (ids firstNewId ..). */
  newTokens: number;
  /** Of the new tokens, those that are not donor pieces (byte-level intermediates of multi-byte characters). */
  partsAdded: number;
  /** Donor pieces already in the original (after conversion). */
  donorPiecesPresent: number;
  /** Donor pieces left out, by reason. */
  donorPiecesSkipped: { byteFallback: number; addedTokens: number; notConvertible: number; unreachable: number; overLimit: number };
  /** Merges written: from the donor, synthesised (byte-level characters), and donor merges dropped because a part or the result is not in the vocabulary. */
  merges: { total: number; fromDonor: number; synthesised: number; dropped: number };
  /** Donor non-special added tokens appended as added tokens. */
  donorAddedTokens: number;
  /** Reserved padding tokens appended. */
  reservedTokens: number;
  /** Total size after extension (highest id + 1). */
  size: number;
}

export interface ExtendResult {
  /** The new tokenizer.json. */
  json: Json;
  /** tokenizer_config.json of the original (copied; appended added tokens enter added_tokens_decoder). */
  config: Json;
  stats: ExtendStats;
}

/** ExtendOptions after validation, defaults filled in. */
export type ResolvedExtendOptions = ResolvedOf<typeof EXTEND_SPEC>;

/** ExtendOptions checked against EXTEND_SPEC, defaults filled in (what lep_tokenizer_run.json records). */
export function resolveExtendOptions(o: ExtendOptions): ResolvedExtendOptions {
  checkOptions(EXTEND_SPEC, o, { kind: 'options' });
  return withDefaults(EXTEND_SPEC, o);
}

function jsonOf(t: Json | TokenizerFiles): Json {
  return 'model' in t || !('json' in t) ? (t as Json) : ((t as TokenizerFiles).json);
}

/** Whether a piece in the original's spelling stands for ASCII text only ("▁" and byte-level "Ġ" are spaces). */
function asciiTest(byteLevel: boolean): (piece: string) => boolean {
  if (byteLevel)
    return (p) => {
      const bytes = byteLevelToBytes(p);
      return bytes !== undefined && bytes.every((b) => b < 0x80);
    };
  return (p) => /^[\x00-\x7f\u2581]*$/.test(p);
}

/** Converts a donor piece to the original's spelling; undefined when it has no such spelling. */
function pieceConverter(donorByteLevel: boolean, originalByteLevel: boolean): (p: string) => string | undefined {
  if (donorByteLevel === originalByteLevel) return (p) => p;
  return originalByteLevel ? sentencePieceToByteLevel : byteLevelToSentencePiece;
}

function clash(message: string): LepError {
  return new LepError(
    'LEP_SPECIAL_TOKEN_CLASH',
    `${message}\nHINT: the extended tokenizer keeps the original's added and special tokens; train the donor with the original's specials (lep tokenizer train --like MODEL_DIR) or remove the conflicting token from the donor.`,
  );
}

/**
 * Merges `donor`'s vocabulary into `original` (docs/method.md §1, "Extended"); the steps are in this module's
 * doc. `original` is a tokenizer.json + tokenizer_config.json (a loaded `Tokenizer` will do); `donor` is a
 * BPE tokenizer.json (or a `Tokenizer`), usually a SentencePiece-style BPE trained on the target language.
 */
export function extendTokenizer(original: TokenizerFiles, donor: Json | TokenizerFiles, options: ExtendOptions = {}): ExtendResult {
  const opts = resolveExtendOptions(options);
  const orig = readBpe(original.json, 'original', 'extend');
  const don = readBpe(jsonOf(donor), 'donor', 'extend');
  const convert = pieceConverter(don.byteLevel, orig.byteLevel);
  const isLeaf = orig.byteLevel ? isByteLevelLeaf : isSentencePieceLeaf;
  const present = (t: string): boolean => orig.vocab.has(t) || orig.addedByContent.has(t);
  const skipped = { byteFallback: 0, addedTokens: 0, notConvertible: 0, unreachable: 0, overLimit: 0 };

  // 2. Donor added tokens.
  const donorAdded: AddedToken[] = [];
  for (const d of don.added) {
    const o = orig.addedByContent.get(d.content);
    if (o) {
      if (!!o.special !== !!d.special)
        throw clash(
          `extend: the donor's added token ${JSON.stringify(d.content)} is ${d.special ? 'special' : 'not special'} but the original's (id ${o.id}) is ${o.special ? 'special' : 'not special'}`,
        );
      continue;
    }
    if (!d.special && !orig.vocab.has(d.content)) donorAdded.push(d);
  }

  // 3. Donor pieces and merges in the original's spelling.
  const candidates: string[] = [];
  const candidateSet = new Set<string>();
  let donorPiecesPresent = 0;
  for (const [piece] of [...don.vocab].sort((x, y) => x[1] - y[1])) {
    if (don.addedByContent.has(piece) || piece === don.unkToken) {
      skipped.addedTokens++;
      continue;
    }
    if (isByteFallbackPiece(piece)) {
      skipped.byteFallback++;
      continue;
    }
    const c = convert(piece);
    if (c === undefined || c === '') {
      skipped.notConvertible++;
      continue;
    }
    const o = orig.addedByContent.get(c);
    if (o)
      throw clash(
        `extend: the donor's vocabulary piece ${JSON.stringify(piece)} is plain text there but ${JSON.stringify(c)} is an added${o.special ? ' special' : ''} token of the original (id ${o.id})`,
      );
    if (candidateSet.has(c)) continue;
    candidateSet.add(c);
    if (present(c)) donorPiecesPresent++;
    else candidates.push(c);
  }
  const donorMerges: Merge[] = [];
  const producers = new Map<string, Merge[]>();
  for (const [a, b] of don.merges) {
    const ca = convert(a);
    const cb = convert(b);
    if (ca === undefined || cb === undefined || !ca || !cb) continue;
    const m: Merge = [ca, cb];
    donorMerges.push(m);
    let list = producers.get(ca + cb);
    if (!list) producers.set(ca + cb, (list = []));
    list.push(m);
  }
  // A byte-level result builds a multi-byte character the donor treats as a leaf byte by byte.
  const synthetic = (t: string): Merge[] =>
    orig.byteLevel && isWithinOneUtf8Char(t) ? [[t.slice(0, -1), t.slice(-1)]] : [];
  const graph: MergeGraph = {
    isLeaf,
    producers: (t) => producers.get(t) ?? synthetic(t),
  };

  // 4. Selection closed under merges.
  const universe = new Set<string>([...orig.vocab.keys(), ...candidates]);
  if (orig.byteLevel)
    for (const c of candidates) if (!producers.has(c) && isWithinOneUtf8Char(c)) for (let k = 2; k < c.length; k++) universe.add(c.slice(0, k));
  const selected = new Set<string>([...orig.vocab.keys(), ...orig.addedByContent.keys()]);
  const reachable = reachableTokens(universe, graph, selected);
  const budget = opts.maxNewTokens ?? Number.POSITIVE_INFINITY;
  const added = selectClosed(candidates, selected, budget, graph, reachable);
  for (const c of candidates) {
    if (selected.has(c)) continue;
    if (reachable.has(c)) skipped.overLimit++;
    else skipped.unreachable++;
  }

  // 5. Ids.
  const originalSize = highestId(orig) + 1;
  let nextId = originalSize;
  const vocab = new Map(orig.vocab);
  for (const t of added) vocab.set(t, nextId++);
  const addedTokens: AddedToken[] = orig.added.map((a) => ({ ...a }));
  const appended: AddedToken[] = [];
  for (const d of donorAdded) appended.push({ ...d, id: nextId++ });
  const multiple = opts.padToMultipleOf;
  const padded = Math.ceil(nextId / multiple) * multiple;
  const inUse = new Set<string>([...vocab.keys(), ...addedTokens.map((a) => a.content), ...appended.map((a) => a.content)]);
  let reserved = 0;
  for (let k = 0; nextId < padded; k++) {
    const content = opts.reservedToken.replaceAll('{k}', String(k));
    if (inUse.has(content)) continue;
    appended.push({ id: nextId++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
    reserved++;
  }
  const size = nextId;
  if (opts.maxSize !== undefined && size > opts.maxSize) {
    const room = Math.floor(opts.maxSize / multiple) * multiple - originalSize - donorAdded.length;
    throw new LepError(
      'LEP_VOCAB_TOO_LARGE',
      `extend: the extended vocabulary would have ${size} tokens (${originalSize} original + ${added.length} new` +
        `${donorAdded.length ? ` + ${donorAdded.length} donor added` : ''}${reserved ? ` + ${reserved} reserved` : ''}), more than maxSize (--max-size) ${opts.maxSize}` +
        `\nHINT: ${room > 0 ? `set maxNewTokens (--max-new-tokens) to at most ${room}` : `the original alone needs ${originalSize} ids`}, or raise maxSize.`,
    );
  }
  addedTokens.push(...appended);

  // 6. Merges.
  const has = (t: string): boolean => vocab.has(t);
  const valid = ([a, b]: Merge): boolean => has(a) && has(b) && has(a + b);
  const seen = new Set<string>();
  const newMerges: Merge[] = [];
  let synthesised = 0;
  let fromDonor = 0;
  let dropped = 0;
  for (const t of added) {
    if (producers.has(t)) continue;
    for (const m of synthetic(t)) {
      if (!valid(m) || seen.has(mergeKey(m))) continue;
      seen.add(mergeKey(m));
      newMerges.push(m);
      synthesised++;
    }
  }
  for (const m of donorMerges) {
    if (!valid(m)) {
      dropped++;
      continue;
    }
    if (seen.has(mergeKey(m))) continue;
    seen.add(mergeKey(m));
    newMerges.push(m);
    fromDonor++;
  }
  // Each order is "these new merges first, then the original merges they do not repeat, then the other new
  // merges the original lacks": all of them (new-first), none (original-first), or those that spell
  // non-ASCII text (keep-ascii).
  const spellsAscii = asciiTest(orig.byteLevel);
  const first = opts.mergeOrder === 'new-first' ? newMerges : opts.mergeOrder === 'keep-ascii' ? newMerges.filter(([a, b]) => !spellsAscii(a + b)) : [];
  const firstKeys = new Set(first.map(mergeKey));
  const origKeys = new Set(orig.merges.map(mergeKey));
  const late = newMerges.filter((m) => !firstKeys.has(mergeKey(m)) && !origKeys.has(mergeKey(m)));
  const merges: Merge[] = [...first, ...orig.merges.filter((m) => !firstKeys.has(mergeKey(m))), ...late];
  const ignoreMerges = opts.ignoreMerges ?? (opts.mergeOrder === 'original-first' ? orig.model.ignore_merges === true : true);

  placeAddedTokens(vocab, addedTokens);
  const model: Json = { ...orig.model, ignore_merges: ignoreMerges, vocab: vocabObject(vocab), merges: formatMerges(merges, orig.mergesAsArrays) };
  const json = withModel(orig.json, model, addedTokens);
  const config = structuredClone(original.config ?? {});
  const decoder = config.added_tokens_decoder;
  if (appended.length && decoder && typeof decoder === 'object' && !Array.isArray(decoder)) {
    for (const a of appended)
      (decoder as Json)[String(a.id)] = {
        content: a.content,
        lstrip: a.lstrip ?? false,
        normalized: a.normalized ?? false,
        rstrip: a.rstrip ?? false,
        single_word: a.single_word ?? false,
        special: a.special ?? false,
      };
  }
  return {
    json,
    config,
    stats: {
      originalSize,
      firstNewId: originalSize,
      newTokens: added.length,
      partsAdded: added.filter((t) => !candidateSet.has(t)).length,
      donorPiecesPresent,
      donorPiecesSkipped: skipped,
      merges: { total: merges.length, fromDonor, synthesised, dropped },
      donorAddedTokens: donorAdded.length,
      reservedTokens: reserved,
      size,
    },
  };
}
