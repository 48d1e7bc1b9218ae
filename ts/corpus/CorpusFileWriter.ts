/**
 * Writes one corpus output file atomically and streaming (a temporary name in the same folder, fsync,
 * rename), counting what it writes for the manifest: bytes, sha256, documents, paragraphs, characters.
 *
 * Text layout: a document is its paragraphs, one per line; documents are separated by one blank line;
 * the file ends with a newline. JSONL: one record per line, each counted as a document of one paragraph.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';

import { tempPathFor, trackTemp, untrackTemp } from '../util/tempPaths.js';
import { withPath } from '../util/atomicWrite.js';

export interface CorpusFileStats {
  bytes: number;
  sha256: string;
  documents: number;
  paragraphs: number;
  /** Characters (code points) of paragraph text, without newlines; for JSONL, of the text fields. */
  chars: number;
}

const FLUSH_AT = 1 << 20;

export class CorpusFileWriter {
  private readonly tmp: string;
  private fd: number;
  private readonly hash: Hash = createHash('sha256');
  private buf: string[] = [];
  private bufLen = 0;
  private bytes = 0;
  private documents = 0;
  private paragraphs = 0;
  private chars = 0;

  constructor(readonly path: string) {
    // The shared temporary name: an interrupted command removes it, a later one removes it as an orphan.
    this.tmp = tempPathFor(path);
    trackTemp(this.tmp);
    this.fd = openSync(this.tmp, 'w');
  }

  /** Appends a document of paragraphs (each non-empty and without newlines). */
  writeDocument(paragraphs: readonly string[]): void {
    if (paragraphs.length === 0) return;
    this.put(`${this.documents > 0 ? '\n' : ''}${paragraphs.join('\n')}\n`);
    this.documents++;
    this.paragraphs += paragraphs.length;
    for (const p of paragraphs) this.chars += codePoints(p);
  }

  /** Appends one JSONL record; `chars` counts the record's text for the statistics. */
  writeRecord(record: unknown, textChars: number): void {
    this.put(`${JSON.stringify(record)}\n`);
    this.documents++;
    this.paragraphs++;
    this.chars += textChars;
  }

  private put(s: string): void {
    this.buf.push(s);
    this.bufLen += s.length;
    if (this.bufLen >= FLUSH_AT) this.flush();
  }

  private flush(): void {
    if (!this.buf.length) return;
    const data = Buffer.from(this.buf.join(''), 'utf8');
    this.buf = [];
    this.bufLen = 0;
    this.hash.update(data);
    this.bytes += data.length;
    try {
      for (let off = 0; off < data.length; ) off += writeSync(this.fd, data, off);
    } catch (e) {
      throw withPath(e, this.path);
    }
  }

  /** Flushes, syncs and renames over the target; returns what was written. */
  commit(): CorpusFileStats {
    try {
      this.flush();
      fsyncSync(this.fd);
    } catch (e) {
      this.abort();
      throw e;
    }
    closeSync(this.fd);
    this.fd = -1;
    renameSync(this.tmp, this.path);
    untrackTemp(this.tmp);
    return { bytes: this.bytes, sha256: this.hash.digest('hex'), documents: this.documents, paragraphs: this.paragraphs, chars: this.chars };
  }

  /** Drops the temporary file; the target is left as it was. */
  abort(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    rmSync(this.tmp, { force: true });
    untrackTemp(this.tmp);
  }
}

/** Code points in a string (UTF-16 length minus surrogate pairs). */
export function codePoints(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) n--;
  }
  return n;
}
