/**
 * `lep data pack`: a corpus (anything `readTexts` reads) or chat JSONL → the trainer's blocks file.
 * Text: each document (blank-line separated, or each JSONL record) becomes `bos + paragraphs + eos`, packed
 * into blocks that start at boundaries (packBlocks.ts). Chat: each JSONL record `{"messages": [...]}` is
 * rendered through the tokenizer's chat template with a loss mask on assistant tokens (packChat.ts).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

import { LepError, optionError } from '../errors.js';
import { listCorpusFiles } from '../corpus/listCorpusFiles.js';
import { readTexts, type ReadTextsOptions } from '../corpus/readCorpus.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { packChat, type ChatExample } from './packChat.js';
import { packDocuments, writeBlocks } from './packBlocks.js';

export interface PackCorpusOptions extends Pick<ReadTextsOptions, 'normalize' | 'script' | 'textField' | 'maxChars' | 'signal'> {
  /** Tokens per block. Required. */
  seqLen: number;
  /** `text` (documents of paragraphs) or `chat` (JSONL of {"messages": [...]}). Defaults to `text`. */
  kind?: 'text' | 'chat';
  /** Stop after this many blocks (0 = no limit). Defaults to `0`. */
  maxBlocks?: number;
  /** Text kind: called every 256 documents and at the end with the documents and UTF-8 bytes read so far. */
  onProgress?: (event: { documents: number; bytes: number }) => void;
}

export interface PackCorpusResult {
  out: string;
  blocks: number;
  seqLen: number;
  /** Text: tokens read; chat: assistant (loss-carrying) tokens. */
  tokens: number;
  documents: number;
  skippedTooLong?: number;
}

async function* chatRecords(files: string[]): AsyncGenerator<ChatExample> {
  for (const file of files) {
    let n = 0;
    for await (const line of createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity })) {
      n++;
      if (line.trim() === '') continue;
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch (e) {
        throw new LepError('LEP_CORPUS_BAD_JSONL', `${file}:${n}: not JSON (${(e as Error).message})`);
      }
      const messages = (rec as { messages?: unknown }).messages;
      if (!Array.isArray(messages) || !messages.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string'))
        throw new LepError('LEP_CORPUS_BAD_JSONL', `${file}:${n}: expected {"messages": [{"role": ..., "content": ...}, ...]}`);
      yield { messages };
    }
  }
}

export async function packCorpus(corpus: string | readonly string[], tokenizerDir: string, out: string, options: PackCorpusOptions): Promise<PackCorpusResult> {
  const { seqLen, kind = 'text', maxBlocks = 0 } = options;
  if (kind !== 'text' && kind !== 'chat') throw optionError('kind', '"text" or "chat"', kind, '--kind');
  const tok = Tokenizer.fromDir(tokenizerDir);
  if (kind === 'chat') {
    const r = await packChat(chatRecords(await listCorpusFiles(corpus)), tok, { seqLen });
    const n = maxBlocks > 0 ? Math.min(maxBlocks, r.blocks.length) : r.blocks.length;
    writeBlocks(out, r.blocks.slice(0, n), r.lossMask.slice(0, n));
    return { out, blocks: n, seqLen, tokens: r.targetTokens, documents: r.examples, skippedTooLong: r.skippedTooLong };
  }
  const { normalize, script, textField, maxChars, signal, onProgress } = options;
  async function* docs(): AsyncGenerator<string[]> {
    let n = 0;
    let bytes = 0;
    for await (const d of readTexts(corpus, { mode: 'document', normalize, script, textField, maxChars, signal })) {
      bytes += Buffer.byteLength(d, 'utf8');
      if (onProgress && ++n % 256 === 0) onProgress({ documents: n, bytes });
      yield d.split('\n');
    }
    onProgress?.({ documents: n, bytes });
  }
  const { blocks, result } = await packDocuments(docs(), tok, { seqLen, maxBlocks });
  writeBlocks(out, blocks, undefined, result.targetChars);
  return { out, blocks: result.blocks, seqLen, tokens: result.tokens, documents: result.documents };
}
