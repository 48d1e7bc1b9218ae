/**
 * Fingerprints of a stage's inputs: what a stage record (stageRecord.ts) lists per input, and what lets a
 * resumed training run accept its model and data under another path (the project moved, another mount
 * point, a relative path given from elsewhere) while still refusing other inputs.
 *
 * What one guarantees: a fingerprint reads at most 2 MiB per file — its size plus the SHA-256 of the first
 * and last MiB — so multi-GB weights cost two reads, not a full hash. Two files with different
 * fingerprints differ; two with the same one are the same file unless they differ only in their middle,
 * which a changed corpus, seq length, tokenizer or model does not do (each changes the size or the header
 * at the start: safetensors begin with the tensor table). Modification times are left out, so a copy has
 * the fingerprint of its original.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { basename, join } from 'node:path';

const EDGE = 1 << 20;

function hashEdges(file: string, hash: Hash): number {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(size, EDGE));
    const read = (at: number): void => {
      let off = 0;
      while (off < buf.length) {
        const n = readSync(fd, buf, off, buf.length - off, at + off);
        if (n === 0) break;
        off += n;
      }
      hash.update(buf.subarray(0, off));
    };
    read(0);
    if (size > EDGE) read(Math.max(EDGE, size - EDGE));
    return size;
  } finally {
    closeSync(fd);
  }
}

/** `<bytes> bytes, sha256 <first 16 hex>` of a file's size, first and last MiB. */
export function fileFingerprint(file: string): string {
  const hash = createHash('sha256');
  const size = hashEdges(file, hash);
  return `${size} bytes, sha256 ${hash.digest('hex').slice(0, 16)}`;
}

/** The same over a model directory: config.json and every *.safetensors file (names, sizes, edges). */
export function modelFingerprint(dir: string): string {
  const hash = createHash('sha256');
  let total = 0;
  for (const name of readdirSync(dir).filter((n) => n === 'config.json' || n.endsWith('.safetensors')).sort()) {
    hash.update(`${name}\0`);
    total += hashEdges(join(dir, name), hash);
  }
  return `${total} bytes, sha256 ${hash.digest('hex').slice(0, 16)}`;
}

/**
 * The same over every regular file at the top level of a directory (a model, a tokenizer, a data folder):
 * names, sizes and edges; `skip` names files left out (a stage's own record, which holds a time).
 * Sub-directories (checkpoints) are not read.
 */
export function dirFingerprint(dir: string, skip: readonly string[] = []): string {
  const hash = createHash('sha256');
  let total = 0;
  let count = 0;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (skip.includes(e.name)) continue;
    const p = join(dir, e.name);
    if (!(e.isFile() || (e.isSymbolicLink() && statSync(p, { throwIfNoEntry: false })?.isFile()))) continue;
    hash.update(`${e.name}\0`);
    total += hashEdges(p, hash);
    count++;
  }
  return `${count} files, ${total} bytes, sha256 ${hash.digest('hex').slice(0, 16)}`;
}

/** The same over a list of files in the order given (a corpus after its specs are expanded); names without their folders, so a moved corpus keeps its fingerprint. */
export function filesFingerprint(files: readonly string[]): string {
  const hash = createHash('sha256');
  let total = 0;
  for (const f of files) {
    hash.update(`${basename(f)}\0`);
    total += hashEdges(f, hash);
  }
  return `${files.length} files, ${total} bytes, sha256 ${hash.digest('hex').slice(0, 16)}`;
}
