/**
 * DaruCopy metrics (docs/method.md §6).
 *
 * Sentence copy: `min(pred/ref, ref/pred)` of the lengths in tokens, the reference capped at the task's
 * max new tokens (128 in Darumeru), so a model that spells the copy with shorter old tokens scores below 1.
 *
 * Paragraph copy: 1 when the *matched overlap* with the reference is ≥ 0.99, else 0. Two readings:
 *   - `paper` (default): the paper's "ratio of longest common subsequence tokens to all paragraph tokens":
 *     LCS(reference tokens, prediction tokens) / |reference tokens|, the prediction re-encoded with the
 *     model's tokenizer so that only the text counts, not which pieces spelled it;
 *   - `llmtf`: the benchmark code's reading: characters in the matching blocks of Python's
 *     `difflib.SequenceMatcher(None, ref, pred, autojunk=False)` (Ratcliff/Obershelp) divided by the
 *     prediction's length in characters, both texts stripped.
 */

/** Sentence copy score; 0 for an empty prediction. */
export function lengthRatio(predTokens: number, refTokens: number, refCap = 128): number {
  const ref = Math.min(refTokens, refCap);
  if (predTokens <= 0 || ref <= 0) return 0;
  return Math.min(predTokens / ref, ref / predTokens);
}

/** Length of the longest common subsequence (dynamic programming, O(|a|·|b|) time, O(|b|) memory). */
export function lcsLength<T>(a: ArrayLike<T>, b: ArrayLike<T>): number {
  let prev = new Uint32Array(b.length + 1);
  let cur = new Uint32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    [prev, cur] = [cur, prev];
  }
  return prev[b.length]!;
}

export interface MatchingBlock {
  a: number;
  b: number;
  size: number;
}

/**
 * difflib's `SequenceMatcher(None, a, b, autojunk=False).get_matching_blocks()` without the final
 * sentinel: the longest matching block (earliest in `a`, then in `b`, on ties), then recursively the
 * same left and right of it. Hand-written because no maintained npm package reproduces difflib's tie
 * rules exactly; test/unit/eval-metrics checks it against Python's difflib.
 */
export function matchingBlocks(a: string, b: string): MatchingBlock[] {
  const A = [...a];
  const B = [...b];
  const b2j = new Map<string, number[]>();
  B.forEach((ch, j) => {
    const l = b2j.get(ch);
    if (l) l.push(j);
    else b2j.set(ch, [j]);
  });
  const longest = (alo: number, ahi: number, blo: number, bhi: number): MatchingBlock => {
    let besti = alo;
    let bestj = blo;
    let bestsize = 0;
    let j2len = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (const j of b2j.get(A[i]!) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > bestsize) {
          besti = i - k + 1;
          bestj = j - k + 1;
          bestsize = k;
        }
      }
      j2len = next;
    }
    // No junk, so difflib's junk-extension loops reduce to extending over equal neighbours (none left).
    return { a: besti, b: bestj, size: bestsize };
  };
  const out: MatchingBlock[] = [];
  const queue: [number, number, number, number][] = [[0, A.length, 0, B.length]];
  while (queue.length > 0) {
    const [alo, ahi, blo, bhi] = queue.pop()!;
    const m = longest(alo, ahi, blo, bhi);
    if (m.size > 0) {
      out.push(m);
      if (alo < m.a && blo < m.b) queue.push([alo, m.a, blo, m.b]);
      if (m.a + m.size < ahi && m.b + m.size < bhi) queue.push([m.a + m.size, ahi, m.b + m.size, bhi]);
    }
  }
  out.sort((x, y) => x.a - y.a || x.b - y.b);
  // Merge adjacent blocks, as difflib does.
  const merged: MatchingBlock[] = [];
  for (const m of out) {
    const last = merged[merged.length - 1];
    if (last && last.a + last.size === m.a && last.b + last.size === m.b) last.size += m.size;
    else merged.push({ ...m });
  }
  return merged;
}

/** llmtf's paragraph overlap: matched characters / prediction characters (both stripped). */
export function difflibOverlap(ref: string, pred: string): number {
  const a = ref.trim();
  const b = pred.trim();
  if (b.length === 0) return 0;
  const matched = matchingBlocks(a, b).reduce((s, m) => s + m.size, 0);
  return matched / [...b].length;
}

/** The paper's paragraph overlap: LCS over tokens / reference tokens. */
export function lcsOverlap(refTokens: ArrayLike<number>, predTokens: ArrayLike<number>): number {
  if (refTokens.length === 0) return predTokens.length === 0 ? 1 : 0;
  return lcsLength(refTokens, predTokens) / refTokens.length;
}

/** The threshold of the paragraph copy score: 1% is left for spacing errors (the paper). */
export const PARAGRAPH_COPY_THRESHOLD = 0.99;
