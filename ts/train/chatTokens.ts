/**
 * Gives a tokenizer the chat markup of a real instruct family: special added tokens for the turn markers
 * (appended after the highest id when the tokenizer lacks them) and a chat template that uses them.
 * Added tokens are matched before the model splits text and `lep tokenizer train --like`, `extend` and
 * `shrink` all keep them, so the template survives a full vocabulary replacement, which text markup such
 * as `[INST]` does not (a new vocabulary spells it with pieces the instruct model never saw).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import type { AddedToken, Json } from '../tokenizer/bpeJson.js';
import { saveTokenizerDir } from '../tokenizer/shrink.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';

export interface ChatTokensOptions {
  /** Turn markers, made special added tokens if the tokenizer lacks them (e.g. `<|im_start|>`, `<|im_end|>`). */
  specials: readonly string[];
  /** The chat template to write into tokenizer_config.json. */
  chatTemplate: string;
}

/** Writes `srcDir`'s tokenizer with `options.specials` and `options.chatTemplate` into `outDir`; returns the ids of the specials. */
export async function writeChatTokenizer(srcDir: string, outDir: string, options: ChatTokensOptions): Promise<Record<string, number>> {
  const json = JSON.parse(readFileSync(join(srcDir, 'tokenizer.json'), 'utf8')) as Json;
  const config = JSON.parse(readFileSync(join(srcDir, 'tokenizer_config.json'), 'utf8')) as Json;
  const src = Tokenizer.fromDir(srcDir);
  const added = [...((json.added_tokens as AddedToken[] | undefined) ?? [])];
  const decoder = { ...((config.added_tokens_decoder as Json | undefined) ?? {}) };
  let next = src.size;
  for (const content of options.specials) {
    const have = added.find((a) => a.content === content);
    if (have) {
      if (have.special !== true) throw new LepError('LEP_TOKEN_CLASH', `${srcDir}: ${JSON.stringify(content)} is an added token but not a special one\nHINT: use a tokenizer without it or with it marked special`);
      continue;
    }
    if (src.tokenToId(content) !== undefined)
      throw new LepError('LEP_TOKEN_CLASH', `${srcDir}: ${JSON.stringify(content)} is a plain vocabulary piece\nHINT: pick turn markers the tokenizer does not have`);
    // Ids counting up from the size with nothing in between: Hugging Face `tokenizers` keeps them as written.
    const entry: AddedToken = { id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
    added.push(entry);
    decoder[String(entry.id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  saveTokenizerDir(outDir, { ...json, added_tokens: added }, { ...config, added_tokens_decoder: decoder, chat_template: options.chatTemplate });
  const out = Tokenizer.fromDir(outDir);
  const ids: Record<string, number> = {};
  for (const s of options.specials) {
    const id = out.tokenToId(s);
    if (id === undefined || !(await out.encode(`a${s}b`, { addSpecialTokens: false })).includes(id))
      throw new LepError('LEP_INTERNAL', `the written tokenizer does not keep ${JSON.stringify(s)} as one token\nHINT: this is a bug in lep; please report it`);
    ids[s] = id;
  }
  return ids;
}
