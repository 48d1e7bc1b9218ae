// Fuzz target: lep's view of tokenizer.json (Tokenizer.fromJson and the properties every stage reads:
// model type, byte level, size, vocabulary, special ids, chat template) and the GGUF tokenizer keys built
// from it. Seeds: two tiny BPE tokenizers (SentencePiece-style with byte fallback, byte-level), written
// by hand in the layout `tokenizers` saves, plus the two cases issue 15 found. Run: fuzz/run.sh 30 tokenizer_json
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import fc from 'fast-check';

import { dist, fuzz, jsonText, mutated } from './fuzzTarget.mjs';

const { Tokenizer } = await import(dist('ts/tokenizer/Tokenizer.js'));
const { tokenizerMetadata } = await import(dist('ts/checkpoint/gguf.js'));

const seed = (f) => JSON.parse(readFileSync(join(import.meta.dirname, 'corpus', 'tokenizer_json', f), 'utf8'));
const bases = [seed('spm_bpe.json'), seed('byte_level.json')];
const token = fc.record({ id: fc.oneof(fc.nat({ max: 20 }), fc.jsonValue()), content: fc.oneof(fc.string({ maxLength: 4 }), fc.jsonValue()), special: fc.boolean() }, { requiredKeys: [] });
const variant = fc.constantFrom(...bases).chain((b) =>
  fc.oneof(
    mutated(b),
    mutated(b.model).map((model) => ({ ...b, model })),
    fc.dictionary(fc.string({ maxLength: 3 }), fc.oneof(fc.nat({ max: 12 }), fc.jsonValue())).map((vocab) => ({ ...b, model: { ...b.model, vocab } })),
    fc.array(token, { maxLength: 4 }).map((added) => ({ ...b, added_tokens: [...b.added_tokens, ...added] })),
  ),
);
const config = fc.oneof(
  fc.constant({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', chat_template: '{{ messages }}' }),
  mutated({ bos_token: '<s>', eos_token: { content: '</s>' }, add_bos_token: true, chat_template: [{ name: 'default', template: 'x' }] }),
);

await fuzz('tokenizer_json', fc.oneof(fc.tuple(jsonText(variant), config), jsonText(variant)), (input) => {
  const [text, cfg] = typeof input === 'string' ? [input, {}] : input;
  const tok = Tokenizer.fromJson(text, cfg);
  void [tok.modelType, tok.byteLevel, tok.addBos, tok.chatTemplate];
  const vocab = tok.vocab();
  for (const [t, id] of Object.entries(vocab))
    if (!Number.isInteger(id) || id < 0 || id >= tok.size) throw new Error(`token ${JSON.stringify(t)} has id ${id} outside 0..${tok.size - 1}`);
  for (const kind of ['bos', 'eos', 'unk', 'pad']) tok.specialId(kind);
  tokenizerMetadata(tok, tok.size);
});
