/**
 * Surface strings for embedding initialisation (docs/method.md §2): what text a new token stands for, and how
 * that text is spelled as one piece of the old vocabulary.
 *
 * A token's surface is kept as **bytes**, not text: a byte-fallback piece `<0xD0>` or a byte-level piece
 * holding half a UTF-8 character is one byte that is no text on its own, and must still find the old
 * vocabulary's piece for that byte.
 */
import { BYTE_TO_CHAR, byteLevelToBytes, isByteFallbackPiece, SPM_SPACE, utf8SequenceLength } from '../tokenizer/byteLevel.js';
import type { PieceStyle } from '../tokenizer/view.js';

const utf8 = new TextEncoder();
// ignoreBOM: a leading U+FEFF is part of the token, not a byte-order mark to drop.
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The surface of a base-vocabulary piece: the bytes it stands for, and whether it is a byte-fallback piece. */
export interface Surface {
  bytes: Uint8Array;
  /** `<0xNN>` piece of a SentencePiece-style vocabulary (maps to the old `<0xNN>` first, docs/method.md §2). */
  byteFallback: boolean;
}

/** "▁мир" → " мир", "ĠÐ¼Ð¸ÑĢ" → " мир", "<0x0A>" → "\n" (as bytes). */
export function pieceSurface(piece: string, style: PieceStyle): Surface {
  if (style === 'byte-level') {
    const bytes = byteLevelToBytes(piece);
    if (bytes) return { bytes, byteFallback: false };
    return { bytes: utf8.encode(piece), byteFallback: false };
  }
  if (isByteFallbackPiece(piece)) return { bytes: new Uint8Array([parseInt(piece.slice(3, 5), 16)]), byteFallback: true };
  return { bytes: utf8.encode(style === 'sentencepiece' ? piece.replaceAll(SPM_SPACE, ' ') : piece), byteFallback: false };
}

/** The bytes as text, or undefined when they are not whole UTF-8 characters. */
export function bytesToText(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}

const hexByte = (b: number): string => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;

/**
 * Old-vocabulary spellings to try, in order, for a surface that should be one old piece:
 * byte-level → each byte as its GPT-2 character; SentencePiece-style → the text with "▁" for spaces, and
 * for one byte its `<0xNN>` piece (first when the new piece was itself a byte-fallback piece: "a
 * byte-fallback piece maps to the same piece in the old vocabulary, else to the character").
 */
export function oldSpellings(surface: Surface, oldStyle: PieceStyle): string[] {
  const { bytes } = surface;
  if (oldStyle === 'byte-level') {
    let s = '';
    for (const b of bytes) s += BYTE_TO_CHAR[b]!;
    return [s];
  }
  const text = bytesToText(bytes);
  const asText = text === undefined ? [] : [oldStyle === 'sentencepiece' ? text.replaceAll(' ', SPM_SPACE) : text];
  if (bytes.length !== 1) return asText;
  const asByte = [hexByte(bytes[0]!)];
  return surface.byteFallback ? [...asByte, ...asText] : [...asText, ...asByte];
}

/** A surface cut into runs of whole UTF-8 text and single stray bytes (half characters), in order. */
export type SurfacePart = { text: string } | { byte: number };

export function splitSurface(bytes: Uint8Array): SurfacePart[] {
  const parts: SurfacePart[] = [];
  let start = 0;
  const flush = (end: number): void => {
    if (end > start) parts.push({ text: strictUtf8.decode(bytes.subarray(start, end)) });
  };
  for (let i = 0; i < bytes.length; ) {
    const len = utf8SequenceLength(bytes[i]!);
    if (bytes[i]! < 0x80 || (i + len <= bytes.length && bytesToText(bytes.subarray(i, i + len)) !== undefined && len > 1)) {
      i += bytes[i]! < 0x80 ? 1 : len;
      continue;
    }
    flush(i);
    parts.push({ byte: bytes[i]! });
    start = ++i;
  }
  flush(bytes.length);
  return parts;
}
