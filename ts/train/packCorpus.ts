/**
 * `lep data pack`: a corpus (anything `readTexts` reads) or chat JSONL → the trainer's blocks file.
 * Text: each document (blank-line separated, or each JSONL record) becomes `bos + paragraphs + eos`, packed
 * into blocks that start at boundaries (packBlocks.ts). Chat: each JSONL record `{"messages": [...]}` is
 * rendered through the tokenizer's chat template with a loss mask on assistant tokens (packChat.ts).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

import { LepError } from '../errors.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { PACK_SPEC } from './packCorpusOptions.js';
import { listCorpusFiles } from '../corpus/listCorpusFiles.js';
import { readTexts } from '../corpus/readCorpus.js';
import { Tokenizer } from '../tokenizer/Tokenizer.js';
import { packChat, type ChatExample } from './packChat.js';
import { packDocuments, writeBlocks } from './packBlocks.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { prepareFileOutput } from '../util/prepareFileOutput.js';

/** The packing options: PACK_SPEC (packCorpusOptions.ts) gives each one's type, bounds, default and doc. */
export type PackCorpusOptions = OptionsOf<typeof PACK_SPEC> & {
  /** Aborts reading between lines with the signal's reason. Defaults to none. */
  signal?: AbortSignal;
  /** Text kind: called every 256 documents and at the end with the documents and UTF-8 bytes read so far. */
  onProgress?: (event: { documents: number; bytes: number }) => void;
};

/** The keys of PackCorpusOptions that are not options of the spec. */
const PACK_NON_SPEC_KEYS = ['signal', 'onProgress'];

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
  checkOptions(PACK_SPEC, options, { kind: 'options' }, PACK_NON_SPEC_KEYS);
  const { seqLen, kind, maxBlocks } = withDefaults(PACK_SPEC, options);
  checkOutputPath(out, '--out', { CORPUS: corpus, '--tokenizer': tokenizerDir }, 'file');
  const release = prepareFileOutput(out, '--out');
  try {
    const tok = Tokenizer.fromDir(tokenizerDir);
    if (kind === 'chat') {
      const r = await packChat(chatRecords(await listCorpusFiles(corpus)), tok, { seqLen });
      const n = maxBlocks > 0 ? Math.min(maxBlocks, r.blocks.length) : r.blocks.length;
      writeBlocks(out, r.blocks.slice(0, n), r.lossMask.slice(0, n), undefined, tok);
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
    writeBlocks(out, blocks, undefined, result.targetChars, tok);
    return { out, blocks: result.blocks, seqLen, tokens: result.tokens, documents: result.documents };
  } finally {
    release();
  }
}
