/**
 * The lines of one text file, streamed: plain or gzip (`.gz`, through node:zlib), UTF-8 checked strictly,
 * never more than one read chunk plus one line in memory. A leading byte-order mark is dropped and a
 * line's trailing `\r` (CRLF files) is removed.
 *
 * Decoding: the bytes up to the last newline of each chunk are decoded at once with a fatal
 * `TextDecoder` (a newline byte never occurs inside a multi-byte UTF-8 sequence, so complete lines are
 * complete characters); when that fails, the block is decoded line by line to name the bad line exactly.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { LepError } from '../errors.js';

const CHUNK = 1 << 20;
const NL = 0x0a;
/** The longest line read, in bytes: a file without newlines must not be gathered into memory whole. */
export const MAX_LINE_BYTES = 64 << 20;

/** Opens a file as a byte stream, gunzipping `.gz`. */
export function openBytes(file: string): Readable {
  const raw = createReadStream(file, { highWaterMark: CHUNK });
  if (!file.endsWith('.gz')) return raw;
  const gunzip = createGunzip({ chunkSize: CHUNK });
  raw.on('error', (e) => gunzip.destroy(e));
  return raw.pipe(gunzip);
}

/** A run of consecutive lines of a file; `first` is the 1-based number of `lines[0]`. */
export interface LineBatch {
  lines: string[];
  first: number;
}

/**
 * Yields the lines of `file` (without newlines) in batches, one per read chunk — one await per chunk
 * rather than per line. Throws `LEP_CORPUS_BAD_UTF8` naming the file and line on invalid UTF-8,
 * `LEP_CORPUS_READ` on an unreadable file or a broken gzip stream.
 */
export async function* readLineBatches(file: string, signal?: AbortSignal): AsyncGenerator<LineBatch> {
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const stream = openBytes(file);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let offset = 0; // offset (in the decompressed bytes) of the first pending byte
  let lineNo = 0; // lines yielded so far
  let first = true;
  const batch = (block: Buffer): LineBatch => {
    let text = decodeBlock(decoder, block, file, lineNo, offset);
    if (first) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    const lines = text.split('\n');
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (l.charCodeAt(l.length - 1) === 0x0d) lines[i] = l.slice(0, -1);
    }
    const b = { lines, first: lineNo + 1 };
    lineNo += lines.length;
    return b;
  };
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      signal?.throwIfAborted();
      const lastNl = chunk.lastIndexOf(NL);
      if (lastNl < 0) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        if (pendingBytes > MAX_LINE_BYTES)
          throw new LepError(
            'LEP_CORPUS_LINE_TOO_LONG',
            `${file}:${lineNo + 1}: a line longer than ${MAX_LINE_BYTES} bytes (it starts at byte ${offset}${file.endsWith('.gz') ? ' of the decompressed stream' : ''})\n` +
              'HINT: lep reads text line by line; break the file into lines (or JSONL records) of at most 64 MiB.',
          );
        continue;
      }
      const head = chunk.subarray(0, lastNl);
      const block = pending.length ? Buffer.concat([...pending, head], pendingBytes + head.length) : head;
      const b = batch(block);
      offset += block.length + 1;
      const tail = chunk.subarray(lastNl + 1);
      pending = tail.length ? [tail] : [];
      pendingBytes = tail.length;
      yield b;
    }
    if (pendingBytes > 0) yield batch(Buffer.concat(pending, pendingBytes));
  } catch (e) {
    if (e instanceof LepError || (e as Error).name === 'AbortError' || signal?.aborted) throw e;
    const err = e as NodeJS.ErrnoException;
    const what = file.endsWith('.gz') && err.code?.startsWith('Z_') ? 'is not a valid gzip stream' : 'cannot be read';
    throw new LepError('LEP_CORPUS_READ', `corpus file "${file}" ${what}: ${err.message}`, { cause: e });
  } finally {
    stream.destroy();
  }
}

function decodeBlock(decoder: TextDecoder, block: Uint8Array, file: string, linesBefore: number, offset: number): string {
  try {
    return decoder.decode(block);
  } catch {
    // Find the line: decode line by line.
    let start = 0;
    let line = linesBefore;
    for (;;) {
      const nl = block.indexOf(NL, start);
      const end = nl < 0 ? block.length : nl;
      line++;
      try {
        decoder.decode(block.subarray(start, end));
      } catch {
        throw badUtf8(file, line, offset + start);
      }
      if (nl < 0) break;
      start = nl + 1;
    }
    throw badUtf8(file, linesBefore + 1, offset);
  }
}

function badUtf8(file: string, line: number, byteOffset: number): LepError {
  return new LepError(
    'LEP_CORPUS_BAD_UTF8',
    `${file}:${line}: invalid UTF-8 (the line starts at byte ${byteOffset}${file.endsWith('.gz') ? ' of the decompressed stream' : ''})\n` +
      'HINT: convert the file to UTF-8 first, e.g. `iconv -f KOI8-R -t UTF-8 in.txt > out.txt` (use the encoding it is really in)',
  );
}
