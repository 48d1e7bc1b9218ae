/**
 * A model directory's tokenizer: `tokenizer.json` run by Hugging Face's `tokenizers` (the reference
 * encoder), plus `tokenizer_config.json` for special tokens and the chat template.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import { LepError, optionError } from '../errors.js';
import { checkPlainOptions } from '../options/checkPlainOptions.js';
import { checkTokenIds } from './checkTokenIds.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | string;
  content: string;
}

type Json = Record<string, unknown>;

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}

/**
 * `tokenizers` (0.23) strips a BPE's continuing_subword_prefix from the second part of every merge without
 * checking that it is there, and panics, which aborts the whole process (found by fuzz/tokenizer_json).
 * Refuse such a file with a named error first.
 */
function checkSubwordPrefix(json: Json, file: string): void {
  const model = json.model as Json | undefined;
  const prefix = model?.continuing_subword_prefix;
  // A model without "type" is read as BPE too (tokenizers tries each model kind in turn).
  if (!model || (model.type !== 'BPE' && model.type !== undefined) || typeof prefix !== 'string' || prefix === '' || !Array.isArray(model.merges)) return;
  for (const m of model.merges as unknown[]) {
    const second = Array.isArray(m) ? m[1] : typeof m === 'string' ? m.split(' ')[1] : undefined;
    if (typeof second === 'string' && !second.startsWith(prefix))
      throw new LepError(
        'LEP_BAD_TOKENIZER',
        `${file}: merge ${JSON.stringify(m)} does not continue with the model's continuing_subword_prefix ${JSON.stringify(prefix)}` +
          '\nHINT: the tokenizer.json is damaged or hand-edited; re-save it with tokenizer.save_pretrained().',
      );
  }
}

/**
 * The ids must be 0 .. n-1 without gaps: stages size embedding matrices by the highest id, or (as
 * `tokenizers`' vocabulary size does) by the count, and a token beyond the count would be dropped; one
 * added token with id 10^9 would make `lep init` write 10^9 rows.
 */
function checkIds(hf: HfTokenizer, json: Json, file: string): void {
  const size = hf.getVocabSize(true);
  if (size === 0)
    throw new LepError('LEP_BAD_TOKENIZER', `${file} has an empty vocabulary\nHINT: the file is damaged or was saved without its model; re-save the tokenizer.`);
  // `tokenizers` quietly renumbers an added token whose id does not follow the vocabulary; lep's stages
  // read the ids from the JSON, so both must agree.
  const added = Array.isArray(json.added_tokens) ? (json.added_tokens as unknown[]) : [];
  for (const a of added) {
    const { id, content } = (a ?? {}) as Json;
    const actual = typeof content === 'string' ? hf.tokenToId(content) : undefined;
    if (actual !== id)
      throw new LepError(
        'LEP_BAD_TOKENIZER',
        `${file}: added token ${JSON.stringify(content)} has id ${JSON.stringify(id)}, but the tokenizer gives it id ${actual}; ` +
          'token ids must run from 0 without gaps\nHINT: give added tokens the ids right after the vocabulary.',
      );
  }
  const vocab = hf.getVocab(true);
  const ids = new Set(Object.values(vocab));  // one entry per token: never sized by a hostile id
  const [maxToken, maxId] = Object.entries(vocab).reduce((a, b) => (b[1] > a[1] ? b : a));
  if (maxId + 1 === ids.size) return;
  let missing = 0;
  while (ids.has(missing)) missing++;
  throw new LepError(
    'LEP_BAD_TOKENIZER',
    `${file}: token ${JSON.stringify(maxToken)} has id ${maxId} but only ${ids.size} ids are used (the first unused one is ${missing}); ` +
      'token ids must run from 0 without gaps\nHINT: give added tokens the ids right after the vocabulary.',
  );
}

export class Tokenizer {
  /** Parsed tokenizer.json. */
  readonly json: Json;
  /** Parsed tokenizer_config.json ({} when absent). */
  readonly config: Json;
  private readonly hf: HfTokenizer;
  /** tokenizer.json's path, for messages. */
  private readonly file: string;

  private constructor(json: Json, config: Json, hf: HfTokenizer, file: string) {
    this.json = json;
    this.config = config;
    this.hf = hf;
    this.file = file;
  }

  /** Loads `dir/tokenizer.json` (required) and `dir/tokenizer_config.json` (optional). */
  static fromDir(dir: string): Tokenizer {
    if (typeof dir !== 'string' || dir === '') throw optionError('tokenizer directory', 'a path', dir);
    const file = join(dir, 'tokenizer.json');
    if (!existsSync(file))
      throw new LepError('LEP_NO_TOKENIZER', `${dir} has no tokenizer.json\nHINT: lep reads Hugging Face "fast" tokenizers; save one with tokenizer.save_pretrained().`);
    const cfgFile = join(dir, 'tokenizer_config.json');
    let config: Json = {};
    if (existsSync(cfgFile)) {
      try {
        config = JSON.parse(readFileSync(cfgFile, 'utf8')) as Json;
      } catch (e) {
        throw new LepError('LEP_BAD_TOKENIZER', `${cfgFile} is not valid JSON: ${(e as Error).message}\nHINT: restore the file from the model it came from, or delete it (lep then uses no special tokens and no chat template).`);
      }
      if (config === null || typeof config !== 'object' || Array.isArray(config))
        throw new LepError('LEP_BAD_TOKENIZER', `${cfgFile} holds ${Array.isArray(config) ? 'an array' : String(config)}, not a JSON object\nHINT: restore the file from the model it came from.`);
    }
    return Tokenizer.fromJson(readFileSync(file, 'utf8'), config, file);
  }

  static fromJson(text: string, config: Json = {}, file = 'tokenizer.json'): Tokenizer {
    let json: Json;
    try {
      json = JSON.parse(text) as Json;
    } catch (e) {
      throw new LepError('LEP_BAD_TOKENIZER', `${file} is not valid JSON: ${(e as Error).message}`);
    }
    checkSubwordPrefix(json, file);
    let hf: HfTokenizer;
    try {
      hf = HfTokenizer.fromString(text);
    } catch (e) {
      throw new LepError('LEP_BAD_TOKENIZER', `${file} cannot be loaded by Hugging Face tokenizers: ${(e as Error).message}`);
    }
    checkIds(hf, json, file);
    return new Tokenizer(json, config, hf, file);
  }

  /** Model kind of tokenizer.json: BPE, Unigram, WordPiece, WordLevel. */
  get modelType(): string {
    return String((this.json.model as Json | undefined)?.type ?? 'unknown');
  }

  /** True for GPT-2 style byte-level tokenizers (Ġ for space), false for SentencePiece-style (▁). */
  get byteLevel(): boolean {
    const has = (o: unknown): boolean =>
      !!o && typeof o === 'object' &&
      ((o as Json).type === 'ByteLevel' || (Array.isArray((o as Json).pretokenizers) && ((o as Json).pretokenizers as unknown[]).some(has)) ||
        (Array.isArray((o as Json).decoders) && ((o as Json).decoders as unknown[]).some(has)));
    return has(this.json.pre_tokenizer) || has(this.json.decoder);
  }

  /**
   * A short hash of the id -> token table (added tokens included): two tokenizers that map every id to
   * the same token share it, whatever else their files hold (merges order, formatting, chat template).
   * Packed data records it, so training refuses blocks packed with another vocabulary (packBlocks.ts).
   */
  get vocabFingerprint(): string {
    const byId: string[] = [];
    for (const [token, id] of Object.entries(this.hf.getVocab(true))) byId[id] = token;
    return createHash('sha256').update(JSON.stringify(byId)).digest('hex').slice(0, 16);
  }

  /** Number of ids, added tokens included (the highest id + 1). */
  get size(): number {
    return this.hf.getVocabSize(true);
  }

  /** Encodes text; special tokens (BOS) are added only when asked. */
  async encode(text: string, options: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    if (typeof text !== 'string') throw optionError('text', 'a string', text);
    checkPlainOptions(options, { addSpecialTokens: 'boolean' }, 'encode');
    const enc = await this.hf.encode(text, null, { addSpecialTokens: options.addSpecialTokens ?? false });
    return enc.getIds();
  }

  async encodeBatch(texts: string[], options: { addSpecialTokens?: boolean } = {}): Promise<number[][]> {
    if (!Array.isArray(texts) || texts.some((x) => typeof x !== 'string')) throw optionError('texts', 'an array of strings', texts);
    checkPlainOptions(options, { addSpecialTokens: 'boolean' }, 'encodeBatch');
    const encs = await this.hf.encodeBatch(texts, { addSpecialTokens: options.addSpecialTokens ?? false });
    return encs.map((e) => e.getIds());
  }

  async decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
    // Integers that fit the Rust binding's u32: 1.5, NaN and 2^32 + 5 were read as 1, 0 and 5. An id past
    // the vocabulary decodes to nothing, as in Hugging Face tokenizers (a padded model head can emit one).
    checkTokenIds(ids, 2 ** 32, 'ids');
    checkPlainOptions(options, { skipSpecialTokens: 'boolean' }, 'decode');
    return this.hf.decode(Array.from(ids), options.skipSpecialTokens ?? false);
  }

  idToToken(id: number): string | undefined {
    return this.hf.idToToken(id) ?? undefined;
  }

  tokenToId(token: string): number | undefined {
    return this.hf.tokenToId(token) ?? undefined;
  }

  /** Vocabulary with added tokens: token string -> id. */
  vocab(): Record<string, number> {
    return this.hf.getVocab(true);
  }

  /** Special token string from tokenizer_config.json (`bos_token`, `eos_token`, `unk_token`, `pad_token`). */
  specialToken(kind: 'bos' | 'eos' | 'unk' | 'pad'): string | undefined {
    return tokenString(this.config[`${kind}_token`]);
  }

  specialId(kind: 'bos' | 'eos' | 'unk' | 'pad'): number | undefined {
    const t = this.specialToken(kind);
    return t === undefined ? undefined : this.tokenToId(t);
  }

  /** Whether encoding with special tokens prepends BOS (tokenizer_config add_bos_token, default true for llama-style). */
  get addBos(): boolean {
    const v = this.config.add_bos_token;
    return typeof v === 'boolean' ? v : this.specialId('bos') !== undefined;
  }

  get chatTemplate(): string | undefined {
    const t = this.config.chat_template;
    if (typeof t === 'string') return t;
    if (Array.isArray(t)) {
      // Entries are {name, template}; anything else in a hand-edited file is skipped, not dereferenced.
      const d = t.find((x) => !!x && typeof x === 'object' && (x as Json).name === 'default') as Json | undefined;
      return typeof d?.template === 'string' ? d.template : undefined;
    }
    return undefined;
  }

  /** Renders messages through the chat template (the Jinja subset HF uses). */
  applyChatTemplate(messages: ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    const tpl = this.chatTemplate;
    if (!tpl)
      throw new LepError('LEP_NO_CHAT_TEMPLATE', 'the tokenizer has no chat_template in tokenizer_config.json\nHINT: use a plain prompt, or copy the chat template from the instruct model.');
    const where = join(dirname(this.file), 'tokenizer_config.json');
    let template: Template;
    try {
      template = new Template(tpl);
    } catch (e) {
      throw new LepError('LEP_BAD_CHAT_TEMPLATE', `the chat_template in ${where} is not a valid Jinja template: ${(e as Error).message}\nHINT: fix chat_template there, or copy it from the instruct model.`);
    }
    return template.render({
      messages,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      bos_token: this.specialToken('bos') ?? '',
      eos_token: this.specialToken('eos') ?? '',
      unk_token: this.specialToken('unk') ?? '',
      pad_token: this.specialToken('pad') ?? '',
    });
  }
}
