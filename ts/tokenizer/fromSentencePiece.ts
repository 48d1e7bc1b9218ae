/**
 * A trained SentencePiece model → a Hugging Face `tokenizer.json` in the layout of Llama-2/Mistral
 * tokenizers, so that Hugging Face `tokenizers` encodes text to the same ids as SentencePiece itself.
 *
 *   1. normaliser: `Prepend("▁")` + `Replace(" " → "▁")` — SentencePiece's dummy prefix and whitespace
 *      escaping, with the `identity` normalisation rule and no whitespace collapsing (the settings lep
 *      trains with; anything else is refused, since this layout could not reproduce it);
 *   2. pre-tokeniser: none (whole text, as SentencePiece sees it);
 *   1+2 with user-defined pieces: no normaliser and a `Metaspace` pre-tokeniser (prepend_scheme "first",
 *      no split), the layout Hugging Face writes for non-legacy Llama tokenizers. Hugging Face cuts added
 *      tokens out of the text first and normalises each remaining part on its own, so `Prepend` would put a
 *      "▁" after every user-defined symbol ("км" in "50 км в час" → "▁в" became "▁", "▁в": 418 of 1006
 *      held-out lines differed from SentencePiece); Metaspace "first" prefixes only the start of the text
 *      (1 of 1006 differed: a text that begins with a user-defined symbol, where SentencePiece emits a lone
 *      "▁" before it and Hugging Face cannot);
 *   3. model: BPE with merges derived from the vocabulary (below), or Unigram with SentencePiece's scores;
 *      both with SentencePiece's byte fallback;
 *   4. post-processor: BOS (and EOS) added the way the tokenizer_config.json flags say;
 *   5. decoder: `▁` → space, byte-fallback pieces → bytes, fuse, strip the dummy-prefix space.
 *
 * Unknown and control pieces become special added tokens, user-defined pieces non-special added tokens
 * (`normalized: false`), as Hugging Face's own converter does.
 *
 * BPE merges: SentencePiece's BPE has no merge list; its encoder repeatedly joins the adjacent pair whose
 * concatenation is the piece with the highest score (BPE scores are minus the order in which training
 * added the piece). Listing, for every normal piece in descending score, each split of it into two normal
 * pieces gives Hugging Face's BPE (lowest merge rank first) the same order. Two splits of one piece share a
 * score; their relative order cannot change the result, because pieces built from that piece were added
 * later and so rank below it. Within one piece the longer left part comes first, as in Hugging Face's
 * `generate_merges`. Byte, control, unknown and user-defined pieces never take part: SentencePiece treats
 * them as atomic (user-defined symbols are cut out of the text before merging, the others never match text).
 */
import type { NativeSpmModel } from '../binding/NativeTypes.js';
import { LepError } from '../errors.js';
import { SPM_SPACE } from './byteLevel.js';
import { formatMerges, type AddedToken, type Json, type Merge } from './bpeJson.js';

/** SentencePiece's piece types (ModelProto.SentencePiece.Type). */
export const PIECE_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** Special-token roles and post-processing of the converted tokenizer. */
export interface FromSentencePieceOptions {
  /** The BOS string (a control piece of the model); none when absent. Defaults to none. */
  bosToken?: string;
  /** The EOS string. Defaults to none. */
  eosToken?: string;
  /** Prepend BOS when encoding with special tokens. Defaults to `true` when `bosToken` is given. */
  addBos?: boolean;
  /** Append EOS when encoding with special tokens. Defaults to `false`. */
  addEos?: boolean;
}

/** The parts the conversion reads; `readModel` of the SentencePiece addon returns this shape. */
export type SentencePieceModel = Pick<NativeSpmModel, 'pieces' | 'scores' | 'types' | 'modelType' | 'byteFallback' | 'normalization' | 'addDummyPrefix' | 'removeExtraWhitespaces'>;

/** Converts a SentencePiece BPE or Unigram model to a tokenizer.json object. */
export function sentencePieceToTokenizerJson(model: SentencePieceModel, options: FromSentencePieceOptions = {}): Json {
  checkConvertible(model);
  const { pieces, types } = model;
  const unkId = types.indexOf(PIECE_TYPE.unknown);
  if (unkId < 0) throw new LepError('LEP_SPM_MODEL', 'the SentencePiece model has no unknown piece; SentencePiece always defines one, so the file is not a trained model');
  const added: AddedToken[] = [];
  pieces.forEach((content, id) => {
    const t = types[id];
    if (t === PIECE_TYPE.unknown || t === PIECE_TYPE.control || t === PIECE_TYPE.userDefined)
      added.push({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: t !== PIECE_TYPE.userDefined });
  });
  for (const [role, token] of [['bosToken', options.bosToken], ['eosToken', options.eosToken]] as const)
    if (token !== undefined && !added.some((a) => a.content === token && a.special))
      throw new LepError('LEP_SPM_MODEL', `${role} ${JSON.stringify(token)} is not a control piece of the SentencePiece model`);

  const userDefined = types.includes(PIECE_TYPE.userDefined);
  const normalizers: Json[] = [];
  if (model.addDummyPrefix) normalizers.push({ type: 'Prepend', prepend: SPM_SPACE });
  normalizers.push({ type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE });
  const metaspace = { type: 'Metaspace', replacement: SPM_SPACE, prepend_scheme: model.addDummyPrefix ? 'first' : 'never', split: false };

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: userDefined ? null : { type: 'Sequence', normalizers },
    pre_tokenizer: userDefined ? metaspace : null,
    post_processor: postProcessor(pieces, options),
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(model.addDummyPrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: model.modelType === 'bpe' ? bpeModel(model, unkId) : unigramModel(model, unkId),
  };
}

function checkConvertible(model: SentencePieceModel): void {
  if (model.modelType !== 'bpe' && model.modelType !== 'unigram')
    throw new LepError('LEP_UNSUPPORTED_TOKENIZER', `SentencePiece model type ${model.modelType} has no Hugging Face tokenizer.json counterpart here\nHINT: train with type "bpe" or "unigram"`);
  if (model.normalization !== 'identity' || model.removeExtraWhitespaces)
    throw new LepError(
      'LEP_UNSUPPORTED_TOKENIZER',
      `the SentencePiece model normalises text (rule ${JSON.stringify(model.normalization)}, remove_extra_whitespaces ${model.removeExtraWhitespaces}); ` +
        'the Llama/Mistral tokenizer.json layout cannot reproduce that, so ids would differ\n' +
        'HINT: train with normalization_rule_name=identity and remove_extra_whitespaces=false (what lep tokenizer train does); normalise the corpus instead (--normalize NFKC)',
    );
}

/** BPE model with merges derived from the scores (see the module comment). */
function bpeModel(model: SentencePieceModel, unkId: number): Json {
  const { pieces, scores, types } = model;
  const normalId = new Map<string, number>();
  pieces.forEach((p, id) => {
    if (types[id] === PIECE_TYPE.normal) normalId.set(p, id);
  });
  const byScore = [...normalId.values()].sort((a, b) => scores[b]! - scores[a]! || a - b);
  const merges: Merge[] = [];
  for (const id of byScore) {
    const piece = pieces[id]!;
    const chars = Array.from(piece); // split between code points, never inside a surrogate pair
    for (let cut = chars.length - 1; cut >= 1; cut--) {
      const left = chars.slice(0, cut).join('');
      const right = chars.slice(cut).join('');
      if (normalId.has(left) && normalId.has(right)) merges.push([left, right]);
    }
  }
  const vocab: Record<string, number> = {};
  pieces.forEach((p, id) => {
    vocab[p] = id;
  });
  return {
    type: 'BPE',
    dropout: null,
    unk_token: pieces[unkId],
    continuing_subword_prefix: null,
    end_of_word_suffix: null,
    fuse_unk: true,
    byte_fallback: model.byteFallback,
    vocab,
    merges: formatMerges(merges, false),
  };
}

function unigramModel(model: SentencePieceModel, unkId: number): Json {
  return {
    type: 'Unigram',
    unk_id: unkId,
    vocab: model.pieces.map((p, id) => [p, model.scores[id]!]),
    byte_fallback: model.byteFallback,
  };
}

/** TemplateProcessing that adds BOS/EOS as tokenizer_config.json's add_bos_token/add_eos_token say. */
function postProcessor(pieces: readonly string[], o: FromSentencePieceOptions): Json | null {
  const bos = o.bosToken !== undefined && (o.addBos ?? true) ? o.bosToken : undefined;
  const eos = o.eosToken !== undefined && (o.addEos ?? false) ? o.eosToken : undefined;
  if (bos === undefined && eos === undefined) return null;
  const special = (token: string, typeId: number) => ({ SpecialToken: { id: token, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number) => ({ Sequence: { id, type_id: typeId } });
  const wrap = (id: 'A' | 'B', typeId: number) => [
    ...(bos !== undefined ? [special(bos, typeId)] : []),
    seq(id, typeId),
    ...(eos !== undefined ? [special(eos, typeId)] : []),
  ];
  const specialTokens: Json = {};
  for (const t of [bos, eos]) if (t !== undefined) specialTokens[t] = { id: t, ids: [pieces.indexOf(t)], tokens: [t] };
  return { type: 'TemplateProcessing', single: wrap('A', 0), pair: [...wrap('A', 0), ...wrap('B', 1)], special_tokens: specialTokens };
}
