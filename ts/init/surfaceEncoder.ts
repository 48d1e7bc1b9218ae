/**
 * The old tokenizer as docs/method.md §2 runs it on a new token's surface string: "the old tokenizer's
 * pre-tokenizer and model only (no BOS, no extra prefix space)".
 *
 * Hugging Face `tokenizers` is still the encoder (it is the reference for every model type lep reads);
 * only the tokenizer.json is edited so that it adds nothing to the text:
 *   - `Prepend "▁"` normalizers are removed (SentencePiece-style conversions prepend a space to every input,
 *     which would turn the surface " мир" into "▁▁мир");
 *   - Metaspace pre-tokenizers get `prepend_scheme: "never"` / `add_prefix_space: false`, ByteLevel ones
 *     `add_prefix_space: false`;
 *   - the post-processor (BOS/EOS templates) is dropped.
 * Other normalizers (Replace " " → "▁", NFKC, ...) stay: they are part of how the old model saw text.
 */
import { Tokenizer } from '../tokenizer/Tokenizer.js';

type Json = Record<string, unknown>;

function withoutPrefix(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutPrefix).filter((n) => n !== null);
  if (!node || typeof node !== 'object') return node;
  const o = { ...(node as Json) };
  if (o.type === 'Prepend') return null;
  if (o.type === 'Metaspace') {
    if ('prepend_scheme' in o) o.prepend_scheme = 'never';
    if ('add_prefix_space' in o) o.add_prefix_space = false;
  }
  if (o.type === 'ByteLevel' && 'add_prefix_space' in o) o.add_prefix_space = false;
  for (const key of ['normalizers', 'pretokenizers']) if (Array.isArray(o[key])) o[key] = withoutPrefix(o[key]);
  return o;
}

/** The tokenizer.json of `old` edited as the module doc says. */
export function surfaceEncoderJson(old: { json: Json }): Json {
  const json: Json = { ...old.json, post_processor: null };
  json.normalizer = json.normalizer ? withoutPrefix(json.normalizer) : null;
  json.pre_tokenizer = json.pre_tokenizer ? withoutPrefix(json.pre_tokenizer) : null;
  return json;
}

/** Encodes surface strings with the old tokenizer's pre-tokenizer and model only. */
export class SurfaceEncoder {
  private readonly tok: Tokenizer;

  constructor(old: { json: Json }) {
    this.tok = Tokenizer.fromJson(JSON.stringify(surfaceEncoderJson(old)), {}, 'the old tokenizer.json (surface encoder)');
  }

  /** Old ids of each text (no special tokens added). */
  async encodeAll(texts: string[], batchSize = 4096): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += batchSize) out.push(...(await this.tok.encodeBatch(texts.slice(i, i + batchSize))));
    return out;
  }
}
