/**
 * Closure under merges: a BPE token can be produced only when both parts of one of its merges can, down
 * to the leaves (characters or bytes). Extend and shrink both keep their vocabularies closed this way.
 */
import { BYTE_TO_CHAR, isByteFallbackPiece } from './byteLevel.js';
import type { Merge } from './bpeJson.js';

/** How tokens are built: leaves are what BPE starts from; producers are the merges that build a token. */
export interface MergeGraph {
  /** A token BPE starts from without merges: one character (SentencePiece-style), one byte character (byte-level), or `<0xNN>`. */
  isLeaf(token: string): boolean;
  /** The merges whose result is `token`, best (earliest) first. */
  producers(token: string): readonly Merge[];
}

/** Leaves of a SentencePiece-style vocabulary: single characters and `<0xNN>` pieces. */
export function isSentencePieceLeaf(token: string): boolean {
  return isByteFallbackPiece(token) || [...token].length === 1;
}

const BYTE_CHARS = new Set(BYTE_TO_CHAR);
/** Leaves of a byte-level vocabulary: the 256 byte characters. */
export function isByteLevelLeaf(token: string): boolean {
  return BYTE_CHARS.has(token);
}

/**
 * Tokens of `universe` that can be built: leaves, tokens `given` as available (an original vocabulary
 * being extended), and results of a producer whose two parts can be built (the least fixed point, by a
 * work list over merges indexed by part; linear in the number of merges).
 */
export function reachableTokens(universe: Iterable<string>, graph: MergeGraph, given: ReadonlySet<string> = new Set()): Set<string> {
  const inUniverse = new Set(universe);
  const byPart = new Map<string, [string, Merge][]>();
  const reach = new Set<string>();
  const queue: string[] = [];
  for (const t of inUniverse) {
    if (graph.isLeaf(t) || given.has(t)) {
      reach.add(t);
      queue.push(t);
    }
    for (const m of graph.producers(t)) {
      for (const part of new Set(m)) {
        let list = byPart.get(part);
        if (!list) byPart.set(part, (list = []));
        list.push([t, m]);
      }
    }
  }
  while (queue.length) {
    const u = queue.pop()!;
    for (const [t, [a, b]] of byPart.get(u) ?? []) {
      if (!reach.has(t) && reach.has(a) && reach.has(b)) {
        reach.add(t);
        queue.push(t);
      }
    }
  }
  return reach;
}

/**
 * The tokens to add so that `token` can be built, parts before the tokens they build (post-order).
 * Per token: a producer whose parts are already selected if there is one, else the earliest producer
 * whose parts are reachable, recursively. `reachable` must come from `reachableTokens` on the same graph.
 */
export function partsNeeded(token: string, selected: ReadonlySet<string>, graph: MergeGraph, reachable: ReadonlySet<string>): string[] {
  const out: string[] = [];
  const taken = new Set<string>();
  const have = (t: string): boolean => selected.has(t) || taken.has(t);
  const visit = (t: string): void => {
    if (have(t)) return;
    if (!graph.isLeaf(t)) {
      const usable = graph.producers(t).filter(([a, b]) => reachable.has(a) && reachable.has(b));
      const [a, b] = usable.find(([x, y]) => have(x) && have(y)) ?? usable[0]!;
      visit(a);
      visit(b);
    }
    taken.add(t);
    out.push(t);
  };
  visit(token);
  return out;
}

/**
 * Adds tokens from `candidates` (in priority order) to `selected`, each with the parts it needs
 * (`partsNeeded`), while at most `budget` tokens are added in all; unreachable candidates are skipped.
 * A candidate whose parts do not fit the remaining budget is skipped and tried again in a later pass
 * (parts added meanwhile may make it cheaper); passes repeat until the budget is spent or a pass adds
 * nothing. If unselected reachable tokens remain, the shortest of them always costs one slot (its
 * parts are shorter, hence selected), so a budget no larger than the reachable candidates is filled
 * exactly. Returns the added tokens in the order they were added; `selected` is updated.
 */
export function selectClosed(
  candidates: readonly string[],
  selected: Set<string>,
  budget: number,
  graph: MergeGraph,
  reachable: ReadonlySet<string>,
): string[] {
  const added: string[] = [];
  let pending = candidates.filter((t) => !selected.has(t) && reachable.has(t));
  while (pending.length && added.length < budget) {
    const skipped: string[] = [];
    const before = added.length;
    for (const t of pending) {
      if (selected.has(t)) continue;
      if (added.length >= budget) break;
      const need = partsNeeded(t, selected, graph, reachable);
      if (need.length <= budget - added.length) {
        for (const n of need) {
          selected.add(n);
          added.push(n);
        }
      } else skipped.push(t);
    }
    if (added.length === before) break;
    pending = skipped;
  }
  return added;
}
