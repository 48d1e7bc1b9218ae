/**
 * A model directory's tokenizer: `tokenizer.json` run by Hugging Face's `tokenizers` (the reference
 * encoder), plus `tokenizer_config.json` for special tokens and the chat template.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { Template } from '@huggingface/jinja';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import { LepError } from '../errors.js';

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
    let hf: HfTokenizer;
    try {
      hf = HfTokenizer.fromString(text);
    } catch (e) {
      throw new LepError('LEP_BAD_TOKENIZER', `${file} cannot be loaded by Hugging Face tokenizers: ${(e as Error).message}`);
    }
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

  /** Number of ids, added tokens included (the highest id + 1). */
  get size(): number {
    return this.hf.getVocabSize(true);
  }

  /** Encodes text; special tokens (BOS) are added only when asked. */
  async encode(text: string, options: { addSpecialTokens?: boolean } = {}): Promise<number[]> {
    const enc = await this.hf.encode(text, null, { addSpecialTokens: options.addSpecialTokens ?? false });
    return enc.getIds();
  }

  async encodeBatch(texts: string[], options: { addSpecialTokens?: boolean } = {}): Promise<number[][]> {
    const encs = await this.hf.encodeBatch(texts, { addSpecialTokens: options.addSpecialTokens ?? false });
    return encs.map((e) => e.getIds());
  }

  async decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): Promise<string> {
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
      const d = t.find((x) => (x as Json).name === 'default') as Json | undefined;
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
