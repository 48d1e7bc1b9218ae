/**
 * The propagated model's tokenizer (docs/method.md §4): the donor's tokenizer.json (its vocabulary, merges,
 * normalizer, pre-tokenizer) plus the instruct model's added tokens, special-token map and chat template.
 *
 * - An instruct added token the donor already has (as an added token or a vocabulary piece of the same
 *   string) keeps the donor's id and takes the instruct model's flags (`special`, `lstrip`, ...).
 * - Any other instruct added token (OpenChat's `<|end_of_turn|>`) is appended after the donor's highest id.
 * - tokenizer_config.json is the instruct model's (chat template, bos/eos/pad/unk, class) with
 *   `added_tokens_decoder` rewritten for the final ids.
 * - `copyRows`: every added token of the final tokenizer that the instruct model also has, by string —
 *   those embedding rows are copied unprojected from the instruct model.
 */
import type { AddedToken } from '../tokenizer/bpeJson.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';

type Json = Record<string, unknown>;

export interface FinalTokenizer {
  json: Json;
  config: Json;
  /** Ids in use (highest id + 1). */
  size: number;
  /** [final id, instruct id] pairs of rows copied from the instruct model. */
  copyRows: [number, number][];
  /** Instruct added tokens appended after the donor's ids. */
  appended: string[];
}

const FLAGS = ['single_word', 'lstrip', 'rstrip', 'normalized', 'special'] as const;

export function buildFinalTokenizer(donor: Tokenizer, instruct: Tokenizer): FinalTokenizer {
  const json = structuredClone(donor.json);
  const added = ((json.added_tokens as AddedToken[] | undefined) ?? []).map((a) => ({ ...a }));
  const byContent = new Map(added.map((a) => [a.content, a]));
  const donorVocab = ((json.model as Json | undefined)?.vocab ?? {}) as Record<string, number>;
  const vocabId = (t: string): number | undefined => {
    if (Array.isArray(donorVocab)) return undefined;  // Unigram: pieces are [piece, score] pairs, looked up below
    return Object.hasOwn(donorVocab, t) ? donorVocab[t] : undefined;
  };
  let next = donor.size;
  const appended: string[] = [];
  for (const a of (instruct.json.added_tokens as AddedToken[] | undefined) ?? []) {
    const mine = byContent.get(a.content);
    if (mine) {
      for (const f of FLAGS) if (a[f] !== undefined) mine[f] = a[f];
      continue;
    }
    const id = vocabId(a.content) ?? donor.tokenToId(a.content);
    const entry: AddedToken = { ...a, id: id ?? next++ };
    if (id === undefined) appended.push(a.content);
    added.push(entry);
    byContent.set(a.content, entry);
  }
  added.sort((x, y) => x.id - y.id);
  json.added_tokens = added;
  const size = Math.max(next, ...added.map((a) => a.id + 1));

  const decoder: Record<string, Json> = {};
  for (const a of added) {
    const entry: Json = { content: a.content };
    for (const f of FLAGS) entry[f] = a[f] ?? false;
    decoder[String(a.id)] = entry;
  }
  const config: Json = { ...structuredClone(instruct.config), added_tokens_decoder: decoder };

  const copyRows: [number, number][] = [];
  for (const a of added) {
    const from = instruct.tokenToId(a.content);
    if (from !== undefined) copyRows.push([a.id, from]);
  }
  return { json, config, size, copyRows, appended };
}
