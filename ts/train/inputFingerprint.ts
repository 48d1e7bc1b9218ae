/**
 * Fingerprints of a training run's inputs, so that resuming a run accepts its model and data under another
 * path (the project moved, another mount point, a relative path given from elsewhere) and still refuses
 * other inputs. A fingerprint reads at most 2 MiB per file: size plus the SHA-256 of the first and last
 * MiB — a block file or model that differs only in its middle would pass, which a changed corpus, seq
 * length, tokenizer or model does not do (each changes the size or the header at the start).
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { join } from 'node:path';

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
