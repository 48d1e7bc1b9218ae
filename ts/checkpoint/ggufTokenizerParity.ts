/**
 * Does llama.cpp tokenise an exported GGUF exactly as lep (Hugging Face `tokenizers`) does?
 *
 * SentencePiece-style vocabularies go to llama.cpp's SPM tokenizer (`tokenizer.ggml.model` "llama"). It
 * starts from characters and repeatedly merges the adjacent pair whose concatenation is a vocabulary entry
 * with the highest *score* (left-most on ties), whereas Hugging Face's BPE merges only the pairs listed in
 * `merges`, lowest rank first. lep writes score = -(rank of the first merge that builds the token) and the
 * lowest score for every entry no merge builds, so both agree exactly when (checked statically here):
 *
 * 1. every split of an entry into two parts that llama.cpp can hold as symbols (single characters or
 *    entries) is a listed merge — otherwise llama.cpp builds the entry where lep cannot;
 * 2. the merges that build one entry are adjacent in the merge list — one score per entry cannot place
 *    another entry's merge between them;
 * 3. no two merges building the same entry overlap as (x, m) and (m, y) with the later-listed one first
 *    in the text;
 * 4. with `ignore_merges`, merges rebuild every entry from its characters (Hugging Face emits a
 *    pre-token that is a whole entry directly; llama.cpp has no such rule for SPM).
 *
 * Where they do not hold (an Extended vocabulary whose donor merges build original tokens by other
 * splits, an Optimized one whose shrink removed merges), the format cannot express lep's tokenizer, and
 * the agreement is measured on held-out text with `llamaSpmTokenize`, lep's own implementation of
 * llama.cpp's algorithm (test/native/gguf-parity.test.ts checks it against llama.cpp itself).
 *
 * Byte-level vocabularies go to llama.cpp's BPE tokenizer ("gpt2"), which ranks merges as Hugging Face
 * does; the one difference is `ignore_merges`, which llama.cpp fixes per pre-tokenizer name.
 *
 * Literal special-token strings in the text ("</s>") are outside the claim: lep's tokenizer always reads
 * them as the special token, llama.cpp only when asked to parse specials.
 */
import { readFileSync } from 'node:fs';

import { LepError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import { GGUF_CHECK_TEXT } from './ggufCheckText.js';

/** llama.cpp token types. */
export const TokenType = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** The score of entries no merge builds: below every -rank, so llama.cpp forms them last. */
export const NO_MERGE_SCORE = -1e9;

/** llama.cpp's `ignore_merges` for each byte-level pre-tokenizer name lep writes (src/llama-vocab.cpp). */
export const LLAMA_CPP_IGNORE_MERGES: Record<string, boolean> = { 'llama-bpe': true, qwen2: false, 'gpt-2': false };

type Merge = readonly [string, string];

function splitMerge(m: string): Merge {
  const sp = m.indexOf(' ', 1);
  return [m.slice(0, sp), m.slice(sp + 1)];
}

/** score = -(rank of the first merge building the token); entries no merge builds get NO_MERGE_SCORE. */
export function spmScores(tokens: readonly string[], merges: readonly string[]): Float32Array {
  const rank = new Map<string, number>();
  merges.forEach((m, i) => {
    const [a, b] = splitMerge(m);
    if (!rank.has(a + b)) rank.set(a + b, i);
  });
  const scores = new Float32Array(tokens.length);
  tokens.forEach((t, id) => {
    const r = rank.get(t);
    // A single character is never the product of a pair, so its score never matters: keep 0 as SentencePiece does.
    scores[id] = r !== undefined ? -r : [...t].length > 1 ? NO_MERGE_SCORE : 0;
  });
  return scores;
}

/** What llama.cpp's SPM tokenizer needs: the GGUF's tokens, scores and types. */
export interface SpmVocab {
  tokens: readonly string[];
  scores: Float32Array;
  types: Int32Array;
  addSpacePrefix: boolean;
}

interface SpmIndex {
  ids: Map<string, number>;
  scores: Float32Array;
  bytes: number[];
  userDefined: { text: string; id: number }[];
  addSpacePrefix: boolean;
}

const indexCache = new WeakMap<SpmVocab, SpmIndex>();

function spmIndex(v: SpmVocab): SpmIndex {
  let ix = indexCache.get(v);
  if (ix) return ix;
  const ids = new Map<string, number>();
  // llama.cpp maps text to the last id that has it.
  v.tokens.forEach((t, id) => ids.set(t, id));
  const bytes: number[] = [];
  for (let b = 0; b < 256; b++) bytes.push(ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`) ?? -1);
  const userDefined = v.tokens
    .map((text, id) => ({ text, id }))
    .filter(({ id }) => v.types[id] === TokenType.USER_DEFINED)
    .sort((a, b) => Buffer.byteLength(b.text) - Buffer.byteLength(a.text));
  ix = { ids, scores: v.scores, bytes, userDefined, addSpacePrefix: v.addSpacePrefix };
  indexCache.set(v, ix);
  return ix;
}

/** A max-heap of candidate pairs: higher score first, then the left-most. */
class PairHeap {
  private items: { score: number; left: number; right: number; size: number }[] = [];
  get length(): number {
    return this.items.length;
  }
  private before(i: number, j: number): boolean {
    const a = this.items[i]!, b = this.items[j]!;
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(x: { score: number; left: number; right: number; size: number }): void {
    const h = this.items;
    h.push(x);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }
  pop(): { score: number; left: number; right: number; size: number } {
    const h = this.items;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < h.length && this.before(l, m)) m = l;
        if (r < h.length && this.before(r, m)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** llama.cpp's SPM merge loop on already escaped text ("▁" for spaces); appends ids to `out`. */
function spmSegment(ix: SpmIndex, text: string, out: number[]): void {
  const sym = Array.from(text);
  const n = sym.length;
  if (n === 0) return;
  const next = sym.map((_, i) => (i + 1 < n ? i + 1 : -1));
  const prev = sym.map((_, i) => i - 1);
  const heap = new PairHeap();
  const tryPair = (left: number, right: number): void => {
    if (left < 0 || right < 0) return;
    const joined = sym[left]! + sym[right]!;
    const id = ix.ids.get(joined);
    if (id !== undefined) heap.push({ score: ix.scores[id]!, left, right, size: joined.length });
  };
  for (let i = 1; i < n; i++) tryPair(i - 1, i);
  while (heap.length > 0) {
    const p = heap.pop();
    const l = sym[p.left]!, r = sym[p.right]!;
    if (l === '' || r === '' || l.length + r.length !== p.size) continue;  // a part was merged since
    sym[p.left] = l + r;
    sym[p.right] = '';
    next[p.left] = next[p.right]!;
    if (next[p.right]! >= 0) prev[next[p.right]!] = p.left;
    tryPair(prev[p.left]!, p.left);
    tryPair(p.left, next[p.left]!);
  }
  for (let i = 0; i !== -1; i = next[i]!) {
    const id = ix.ids.get(sym[i]!);
    if (id !== undefined) out.push(id);
    else for (const b of Buffer.from(sym[i]!, 'utf8')) if (ix.bytes[b]! >= 0) out.push(ix.bytes[b]!);
  }
}

/**
 * The ids llama.cpp's SPM tokenizer gives `text` (no BOS, specials not parsed): user-defined entries are
 * cut out first, longest first; every other piece gets "▁" for spaces, a leading "▁" when it starts the
 * text or follows such an entry, and the score-ordered merges.
 */
export function llamaSpmTokenize(v: SpmVocab, text: string): number[] {
  const ix = spmIndex(v);
  let parts: (string | number)[] = [text];
  for (const { text: u, id } of ix.userDefined) {
    if (u === '') continue;
    parts = parts.flatMap((p) => {
      if (typeof p !== 'string' || !p.includes(u)) return [p];
      const out: (string | number)[] = [];
      p.split(u).forEach((s, i) => {
        if (i > 0) out.push(id);
        if (s !== '') out.push(s);
      });
      return out;
    });
  }
  const out: number[] = [];
  let afterSpecial = true;
  for (const p of parts) {
    if (typeof p === 'number') {
      out.push(p);
      afterSpecial = true;
      continue;
    }
    spmSegment(ix, ((ix.addSpacePrefix && afterSpecial ? ' ' : '') + p).replaceAll(' ', '▁'), out);
    afterSpecial = false;
  }
  return out;
}

/** Why the GGUF cannot express lep's tokenizer; empty when llama.cpp tokenises exactly as lep. */
export interface Inexpressible {
  /** Entries llama.cpp builds from a pair that is not a listed merge (condition 1), with examples. */
  unlistedSplits: number;
  /** Entries whose merges are not adjacent in the merge list (condition 2). */
  scatteredMerges: number;
  /** Entries with two overlapping merges in the wrong order (condition 3). */
  overlappingMerges: number;
  /** Entries the merges do not rebuild while `ignore_merges` is set (condition 4). */
  ignoreMerges: number;
  examples: string[];
}

const q = (s: string): string => JSON.stringify(s);

/** Checks conditions 1-4 of the module comment for a SentencePiece-style vocabulary. */
export function spmInexpressible(v: SpmVocab, merges: readonly string[], ignoreMerges: boolean): Inexpressible {
  const r: Inexpressible = { unlistedSplits: 0, scatteredMerges: 0, overlappingMerges: 0, ignoreMerges: 0, examples: [] };
  const example = (s: string): void => void (r.examples.length < 6 && r.examples.push(s));
  const listed = new Set<string>();
  const byResult = new Map<string, { merge: Merge; rank: number }[]>();
  let last = '';
  const seen = new Set<string>();
  merges.forEach((m, rank) => {
    const merge = splitMerge(m);
    const t = merge[0] + merge[1];
    listed.add(`${merge[0]}\u0000${merge[1]}`);
    (byResult.get(t) ?? byResult.set(t, []).get(t)!).push({ merge, rank });
    if (seen.has(t) && last !== t) {
      r.scatteredMerges++;
      example(`${q(t)} is built by merges at ranks ${byResult.get(t)![0]!.rank} and ${rank} with other merges between`);
    }
    seen.add(t);
    last = t;
  });
  const ids = new Set(v.tokens);
  const symbol = (s: string): boolean => ids.has(s) || [...s].length === 1;
  v.tokens.forEach((t, id) => {
    const type = v.types[id];
    // Specials are outside the claim (module comment); user-defined entries never reach the merge loop.
    if (type === TokenType.USER_DEFINED || type === TokenType.CONTROL || type === TokenType.UNKNOWN) return;
    const cps = [...t];
    for (let k = 1; k < cps.length; k++) {
      const a = cps.slice(0, k).join(''), b = cps.slice(k).join('');
      if (symbol(a) && symbol(b) && !listed.has(`${a}\u0000${b}`)) {
        r.unlistedSplits++;
        example(`llama.cpp builds ${q(t)} from ${q(a)} + ${q(b)}, which is not a merge`);
        break;
      }
    }
  });
  // Condition 3 is checked on the text p + m + r itself: in the vocabularies lep writes such pairs are runs
  // like "-----", where both orders happen to end in the same tokens.
  let rank: Map<string, number> | undefined;
  for (const [t, list] of byResult) {
    if (list.length < 2) continue;
    let found = false;
    for (const x of list)
      for (const y of list) {
        if (found || x.merge[1] !== y.merge[0] || y.rank > x.rank) continue;
        const text = x.merge[0] + t.slice(x.merge[0].length) + y.merge[1];
        rank ??= mergeRanks(merges);
        const ours = rankBpe(text, rank);
        const theirs: number[] = [];
        spmSegment(spmIndex(v), text, theirs);
        if (ours.length === theirs.length && ours.every((o, i) => v.tokens[theirs[i]!] === o)) continue;
        found = true;
        r.overlappingMerges++;
        example(`${q(t)}: merge ${q(y.merge.join(' '))} is ranked before ${q(x.merge.join(' '))}, but llama.cpp takes the left one first in ${q(text)}`);
      }
  }
  if (ignoreMerges) {
    const ix = spmIndex(v);
    v.tokens.forEach((t, id) => {
      if (v.types[id] !== TokenType.NORMAL || [...t].length < 2) return;
      const out: number[] = [];
      spmSegment(ix, t, out);
      if (out.length !== 1 || out[0] !== id) {
        r.ignoreMerges++;
        example(`with ignore_merges lep emits ${q(t)} whole; llama.cpp's merges give ids ${out.join(' ')}`);
      }
    });
  }
  return r;
}

/** Merge ranks by pair (the first listing counts, as in both implementations). */
function mergeRanks(merges: readonly string[]): Map<string, number> {
  const rank = new Map<string, number>();
  merges.forEach((m, i) => {
    const [a, b] = splitMerge(m);
    const key = `${a}\u0000${b}`;
    if (!rank.has(key)) rank.set(key, i);
  });
  return rank;
}

/** BPE by merge rank, as both Hugging Face and llama.cpp's BPE run it on one pre-token. */
function rankBpe(word: string, rank: ReadonlyMap<string, number>): string[] {
  const sym = Array.from(word);
  for (;;) {
    let best = -1, bestRank = Infinity;
    for (let i = 0; i + 1 < sym.length; i++) {
      const r = rank.get(`${sym[i]}\u0000${sym[i + 1]}`);
      if (r !== undefined && r < bestRank) (bestRank = r), (best = i);
    }
    if (best < 0) return sym;
    sym.splice(best, 2, sym[best]! + sym[best + 1]!);
  }
}

/**
 * Byte-level: llama.cpp's BPE ranks merges like Hugging Face; only `ignore_merges` can differ. When it
 * does, every entry that its own merges do not rebuild is one llama.cpp and lep emit differently.
 */
export function byteLevelInexpressible(tokens: readonly string[], types: Int32Array, merges: readonly string[], ignoreMerges: boolean, pre: string): Inexpressible {
  const r: Inexpressible = { unlistedSplits: 0, scatteredMerges: 0, overlappingMerges: 0, ignoreMerges: 0, examples: [] };
  const theirs = LLAMA_CPP_IGNORE_MERGES[pre] ?? false;
  if (theirs === ignoreMerges) return r;
  const rank = mergeRanks(merges);
  tokens.forEach((t, id) => {
    if (types[id] !== TokenType.NORMAL || [...t].length < 2) return;
    if (rankBpe(t, rank).length !== 1) {
      r.ignoreMerges++;
      if (r.examples.length < 6)
        r.examples.push(`${q(t)}: ${ignoreMerges ? 'lep' : 'llama.cpp'} emits a pre-token equal to it whole (ignore_merges), ${ignoreMerges ? 'llama.cpp' : 'lep'} builds it from merges into several tokens`);
    }
  });
  return r;
}

export function inexpressibleCount(x: Inexpressible): number {
  return x.unlistedSplits + x.scatteredMerges + x.overlappingMerges + x.ignoreMerges;
}

/** Agreement of llama.cpp (simulated) with lep on one sample. */
export interface SampleAgreement {
  name: string;
  lines: number;
  identical: number;
}

/** The outcome of the tokenizer check of `lep export gguf`. */
export interface GgufTokenizerParity {
  /** llama.cpp tokenises every text like lep (outside literal special-token strings). */
  exact: boolean;
  inexpressible: Inexpressible;
  /** Measured when not exact (SentencePiece-style only): the built-in sample and --check-text. */
  samples: SampleAgreement[];
}

export function describeAgreement(samples: readonly SampleAgreement[]): string {
  return samples.map((s) => `${s.name} ${((100 * s.identical) / s.lines).toFixed(1)}% of ${s.lines} lines`).join(', ');
}

export function describeInexpressible(x: Inexpressible): string {
  const parts: string[] = [];
  if (x.unlistedSplits) parts.push(`${x.unlistedSplits} entries llama.cpp can build from pairs that are not merges`);
  if (x.scatteredMerges) parts.push(`${x.scatteredMerges} entries whose merges are not adjacent in the merge list (one score per entry cannot order them)`);
  if (x.overlappingMerges) parts.push(`${x.overlappingMerges} entries with overlapping merges in the opposite order`);
  if (x.ignoreMerges) parts.push(`${x.ignoreMerges} entries that ignore_merges emits whole on one side only`);
  return parts.join('; ') + (x.examples.length ? `; for example ${x.examples.slice(0, 3).join('; ')}` : '');
}

/** The lines of a --check-text file (blank lines dropped); a missing or unreadable file is named. */
export function readCheckText(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new LepError('LEP_INPUT_NOT_FOUND', `--check-text ${path} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})\nHINT: pass a UTF-8 text file of held-out lines.`);
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) throw new LepError('LEP_BAD_OPTION', `--check-text ${path} has no non-blank lines\nHINT: pass a UTF-8 text file of held-out lines.`);
  return lines;
}

/**
 * Measures how many sample lines llama.cpp (simulated) tokenises exactly as lep: the built-in English
 * and Russian lines (`ggufCheckText.ts`), plus `checkText` lines when given.
 */
export async function measureSpmAgreement(tok: Tokenizer, v: SpmVocab, checkText?: readonly string[]): Promise<SampleAgreement[]> {
  const sets: [string, readonly string[]][] = [
    ['English', GGUF_CHECK_TEXT.en],
    ['Russian', GGUF_CHECK_TEXT.ru],
  ];
  if (checkText) sets.push(['--check-text', checkText]);
  const out: SampleAgreement[] = [];
  for (const [name, lines] of sets) {
    const ours = await tok.encodeBatch([...lines]);
    let identical = 0;
    lines.forEach((l, i) => {
      const theirs = llamaSpmTokenize(v, l);
      if (theirs.length === ours[i]!.length && theirs.every((x, j) => x === ours[i]![j])) identical++;
    });
    out.push({ name, lines: lines.length, identical });
  }
  return out;
}
