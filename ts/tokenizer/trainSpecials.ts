/**
 * Special and user-defined tokens of a tokenizer to train, as SentencePiece trainer flags and as the
 * tokenizer_config.json the result carries.
 *
 * Without a model to imitate: `<unk>` 0, `<s>` 1, `</s>` 2, as in Llama-2 and Mistral.
 * With `like` (a model directory): that model's added tokens, in its id order, become SentencePiece meta
 * pieces at the start of the vocabulary — special ones as control pieces (bos/eos/unk/pad in their roles),
 * non-special ones as user-defined pieces — so the new tokenizer carries the same strings, usually at the
 * same ids, and its tokenizer_config.json (chat template, flags) is the model's with the new ids. A model
 * without an unknown token (LLaMa-3) gets `<unk>` after its added tokens, because SentencePiece requires one.
 * The specials live inside the SentencePiece model, so `tokenizer.model` and `tokenizer.json` agree.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { LepError, optionError } from '../errors.js';
import type { AddedToken, Json } from './bpeJson.js';

/** A token string from tokenizer_config.json: a string or an AddedToken object with `content`. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

export interface SpecialsPlan {
  unk: string;
  bos: string | undefined;
  eos: string | undefined;
  pad: string | undefined;
  addBos: boolean;
  addEos: boolean;
  /** SentencePiece flags: unk/bos/eos/pad ids and pieces, control_symbols, user_defined_symbols. */
  args: Record<string, string>;
  /** tokenizer_config.json before ids are filled in (`added_tokens_decoder` is rebuilt after training). */
  config: Json;
  /** Every meta string, in the order SentencePiece is asked to place them. */
  metaPieces: string[];
}

/** Llama-2/Mistral tokenizer_config.json fields for a tokenizer trained without `like`. */
const DEFAULT_CONFIG: Json = {
  add_bos_token: true,
  add_eos_token: false,
  bos_token: '<s>',
  eos_token: '</s>',
  unk_token: '<unk>',
  pad_token: null,
  clean_up_tokenization_spaces: false,
  legacy: true,
  model_max_length: 1000000000000000019884624838656,
  sp_model_kwargs: {},
  spaces_between_special_tokens: false,
  tokenizer_class: 'LlamaTokenizer',
};

/** Tokenizer classes whose fast form loads our tokenizer.json unchanged; others are replaced. */
const KEPT_CLASSES = new Set(['LlamaTokenizer', 'LlamaTokenizerFast', 'PreTrainedTokenizerFast']);

interface LikeModel {
  dir: string;
  json: Json;
  config: Json;
}

function readLike(dir: string): LikeModel {
  const file = join(dir, 'tokenizer.json');
  if (!existsSync(file))
    throw new LepError('LEP_NO_TOKENIZER', `like (--like): ${dir} has no tokenizer.json\nHINT: point --like at a Hugging Face model directory whose special tokens and chat template the new tokenizer should carry`);
  const parse = (f: string): Json => {
    try {
      return JSON.parse(readFileSync(f, 'utf8')) as Json;
    } catch (e) {
      throw new LepError('LEP_BAD_TOKENIZER', `like (--like): ${f} is not valid JSON: ${(e as Error).message}`);
    }
  };
  const cfg = join(dir, 'tokenizer_config.json');
  return { dir, json: parse(file), config: existsSync(cfg) ? parse(cfg) : {} };
}

/**
 * Plans the meta pieces. `userDefinedSymbols` are the caller's extra symbols; throws LEP_TOKEN_CLASH when
 * one equals a special token or a byte-fallback piece, or repeats.
 */
export function planSpecials(likeDir: string | undefined, userDefinedSymbols: readonly string[], byteFallback: boolean): SpecialsPlan {
  const like = likeDir === undefined ? undefined : readLike(likeDir);
  const config: Json = like ? { ...like.config } : { ...DEFAULT_CONFIG };
  let metas: { content: string; special: boolean }[];
  let unk: string;
  let bos: string | undefined;
  let eos: string | undefined;
  let pad: string | undefined;
  let addBos: boolean;
  let addEos: boolean;
  if (!like) {
    [unk, bos, eos, pad] = ['<unk>', '<s>', '</s>', undefined];
    metas = [unk, bos, eos].map((content) => ({ content, special: true }));
    [addBos, addEos] = [true, false];
  } else {
    const added = Array.isArray(like.json.added_tokens) ? (like.json.added_tokens as AddedToken[]) : [];
    metas = [...added].sort((a, b) => a.id - b.id).map((a) => ({ content: a.content, special: a.special === true }));
    const role = (k: string) => tokenString(like.config[`${k}_token`]);
    [bos, eos, pad] = [role('bos'), role('eos'), role('pad')];
    // A role named in tokenizer_config.json but missing from added_tokens is still a special token.
    for (const t of [role('unk'), bos, eos, pad]) if (t !== undefined && !metas.some((m) => m.content === t)) metas.push({ content: t, special: true });
    unk = role('unk') ?? '<unk>';
    if (!metas.some((m) => m.content === unk)) metas.push({ content: unk, special: true });
    const post = JSON.stringify(like.json.post_processor ?? null);
    addBos = typeof like.config.add_bos_token === 'boolean' ? like.config.add_bos_token : bos !== undefined && post.includes(JSON.stringify(bos));
    addEos = typeof like.config.add_eos_token === 'boolean' ? like.config.add_eos_token : false;
    if (typeof config.tokenizer_class === 'string' && !KEPT_CLASSES.has(config.tokenizer_class)) config.tokenizer_class = 'PreTrainedTokenizerFast';
    // Files of the like model that do not describe the new tokenizer.
    delete config.tokenizer_file;
    delete config.vocab_file;
    delete config.merges_file;
  }

  // The caller's user-defined symbols: each once, none equal to a special or byte piece.
  const specials = new Map(metas.filter((m) => m.special).map((m) => [m.content, true]));
  const seen = new Set<string>();
  for (const s of userDefinedSymbols) {
    if (typeof s !== 'string' || s === '') throw optionError('userDefinedSymbols', 'non-empty strings', s, '--user-defined-symbol');
    if (specials.has(s))
      throw new LepError(
        'LEP_TOKEN_CLASH',
        `user-defined symbol ${JSON.stringify(s)} (--user-defined-symbol) is already a special token${like ? ` of ${like.dir}` : ''}\nHINT: drop it; special tokens are in the vocabulary already`,
      );
    if (byteFallback && /^<0x[0-9A-F]{2}>$/.test(s))
      throw new LepError('LEP_TOKEN_CLASH', `user-defined symbol ${JSON.stringify(s)} (--user-defined-symbol) is the name of a byte-fallback piece\nHINT: drop it, or train with --no-byte-fallback`);
    if (seen.has(s)) throw new LepError('LEP_TOKEN_CLASH', `user-defined symbol ${JSON.stringify(s)} (--user-defined-symbol) is given twice\nHINT: list each symbol once`);
    seen.add(s);
    if (!metas.some((m) => m.content === s)) metas.push({ content: s, special: false });
  }
  for (const m of metas) {
    // SentencePiece takes these lists comma-separated.
    if (m.content.includes(','))
      throw new LepError('LEP_TOKEN_CLASH', `token ${JSON.stringify(m.content)} contains a comma, which SentencePiece's symbol lists cannot hold\nHINT: ${m.special ? 'use a like model whose special tokens have no commas' : 'drop that user-defined symbol'}`);
    if (byteFallback && /^<0x[0-9A-F]{2}>$/.test(m.content))
      throw new LepError('LEP_TOKEN_CLASH', `${likeDir ?? 'the'} special token ${JSON.stringify(m.content)} is spelled like a byte-fallback piece\nHINT: train with --no-byte-fallback`);
  }
  const bosDistinct = bos !== undefined && bos !== unk ? bos : undefined;
  const eosDistinct = eos !== undefined && eos !== unk && eos !== bos ? eos : undefined;
  const padDistinct = pad !== undefined && pad !== unk && pad !== bos && pad !== eos ? pad : undefined;
  const at = (t: string | undefined) => (t === undefined ? -1 : metas.findIndex((m) => m.content === t));
  const roles = new Set([unk, bosDistinct, eosDistinct, padDistinct].filter((t) => t !== undefined));
  const args: Record<string, string> = {
    unk_id: String(at(unk)),
    unk_piece: unk,
    bos_id: String(at(bosDistinct)),
    eos_id: String(at(eosDistinct)),
    pad_id: String(at(padDistinct)),
  };
  // SentencePiece requires these pieces to be non-empty even when their id is -1.
  if (bosDistinct) args.bos_piece = bosDistinct;
  if (eosDistinct) args.eos_piece = eosDistinct;
  if (padDistinct) args.pad_piece = padDistinct;
  const control = metas.filter((m) => m.special && !roles.has(m.content)).map((m) => m.content);
  const userDefined = metas.filter((m) => !m.special).map((m) => m.content);
  if (control.length) args.control_symbols = control.join(',');
  if (userDefined.length) args.user_defined_symbols = userDefined.join(',');
  return { unk, bos, eos, pad, addBos, addEos, args, config, metaPieces: metas.map((m) => m.content) };
}

/** tokenizer_config.json of the trained tokenizer: the plan's config with the new ids of every added token. */
export function trainedConfig(plan: SpecialsPlan, addedTokens: readonly AddedToken[]): Json {
  const decoder: Json = {};
  for (const a of addedTokens)
    decoder[String(a.id)] = { content: a.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: a.special === true };
  return { ...plan.config, added_tokens_decoder: decoder };
}
