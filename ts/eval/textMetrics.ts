/**
 * Language-modelling metrics of a model on held-out text, comparable across vocabularies:
 *   - bits per character = Σ −log₂ p(token) over every predicted token / Σ characters;
 *   - symbols per token  = Σ characters / Σ tokens (docs/method.md §1: no special tokens).
 * Each text (a line, or a document) is scored on its own as `BOS + tokens`, so the first real token is
 * predicted too and nothing leaks across texts; texts longer than the model's context are cut into
 * windows (each window starts with BOS), which costs a little context at window starts. Characters are
 * Unicode code points of the text as read.
 */
import { optionError } from '../errors.js';
import { readTexts, type ReadTextsOptions } from '../corpus/readCorpus.js';
import type { LepModel } from '../model/LepModel.js';

export interface TextMetricsOptions extends Pick<ReadTextsOptions, 'mode' | 'maxItems' | 'maxChars' | 'normalize' | 'script' | 'signal'> {
  /** Texts scored per native call. Defaults to `64`. */
  batchSize?: number;
}

export interface TextMetrics {
  bitsPerChar: number;
  symbolsPerToken: number;
  /** Mean negative log-likelihood per token, in nats. */
  lossPerToken: number;
  texts: number;
  tokens: number;
  chars: number;
}

export async function textMetrics(model: LepModel, corpus: string | readonly string[], options: TextMetricsOptions = {}): Promise<TextMetrics> {
  const tok = model.tokenizer;
  if (!tok) throw optionError('model', 'a model directory with a tokenizer', model.dir.dir, 'MODEL_DIR');
  const bos = tok.specialId('bos');
  const window = model.config.maxPositionEmbeddings - (bos === undefined ? 0 : 1);
  const batchSize = options.batchSize ?? 64;
  let nll = 0;
  let tokens = 0;
  let chars = 0;
  let texts = 0;
  let predicted = 0;
  let batch: number[][] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    for (const s of await model.score(batch, { signal: options.signal })) for (const lp of s.tokenLogprobs) nll -= lp;
    batch = [];
  };
  const { batchSize: _b, ...read } = options;
  for await (const text of readTexts(corpus, read)) {
    const ids = await tok.encode(text);
    texts++;
    chars += [...text].length;
    tokens += ids.length;
    // Without a BOS the first token of each window is context only, not predicted.
    predicted += bos === undefined ? ids.length - Math.ceil(ids.length / window) : ids.length;
    for (let i = 0; i < ids.length; i += window) batch.push([...(bos === undefined ? [] : [bos]), ...ids.slice(i, i + window)]);
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  return { bitsPerChar: nll / Math.LN2 / chars, symbolsPerToken: chars / tokens, lossPerToken: nll / predicted, texts, tokens, chars };
}
