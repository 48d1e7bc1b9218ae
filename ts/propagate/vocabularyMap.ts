/**
 * How the donor's (new) vocabulary relates to the base's (old) one, by decoded string (docs/method.md §2, §4):
 *
 * - the **averaging map T** (|V_new| × |V_old|, CSR): row i has 1/K at each of the K old ids that new token
 *   i's surface string splits into under the old tokenizer (a repeated id counts twice). A token present
 *   in both vocabularies maps to itself; an added/special token maps to the old token of the same string,
 *   or to nothing (an empty row, left out of the least-squares system);
 * - the **overlap set C**: base-vocabulary tokens (added tokens left out) of both vocabularies with the same
 *   surface string (`surfaceKey`: "▁мир", "ĠÐ¼Ð¸ÑĢ" and " мир" are one string).
 *
 * Both come from `lep init`'s plan (ts/init/buildInitPlan.ts, docs/method.md §2), so initialisation and
 * propagation split new tokens into old ones the same way: by the decoded surface string, with the old
 * tokenizer's pre-tokenizer and model only (no BOS, no prefix space), `<0xNN>` bytes to the old byte
 * pieces, old unknown-token ids dropped. Rows `lep init` fills with the global mean (a special without an
 * old counterpart, a string the old tokenizer cannot spell) are empty here: they stay out of the
 * least-squares system.
 */
import { buildInitPlan, ROW_KIND } from '../init/buildInitPlan.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';

export interface AveragingMap {
  /** newSize + 1 offsets into `indices`: row i is indices[offsets[i] .. offsets[i+1]). */
  offsets: Int32Array;
  /** Old ids. */
  indices: Int32Array;
  /** Rows that are one old token of the same string. */
  identityRows: number;
  /** Rows averaged from several old tokens (or one different token). */
  averagedRows: number;
  /** Empty rows: added tokens without an old counterpart, or strings the old tokenizer cannot spell. */
  emptyRows: number;
}

export interface OverlapSet {
  /** Donor ids. */
  newIds: Int32Array;
  /** The old ids with the same surface string, pairwise. */
  oldIds: Int32Array;
}

export interface VocabularyMap {
  averaging: AveragingMap;
  overlap: OverlapSet;
}

/** T and C for a donor tokenizer against the base (old) tokenizer. */
export async function buildVocabularyMap(oldTok: Tokenizer, newTok: Tokenizer): Promise<VocabularyMap> {
  const plan = await buildInitPlan(oldTok, newTok);
  const added = new Set(((newTok.json.added_tokens ?? []) as { id: number }[]).map((a) => a.id));
  const offsets = new Int32Array(plan.newSize + 1);
  const indices: number[] = [];
  const overlapNew: number[] = [];
  const overlapOld: number[] = [];
  let identityRows = 0;
  let averagedRows = 0;
  plan.rows.forEach((r, id) => {
    // copy: same string in both vocabularies; id-map: an Optimized tokenizer's kept original (same string
    // too); special: an added token by string; mean: re-tokenised. Global-mean rows have no old tokens to
    // average. The overlap set is the base pieces (not added tokens) present in both.
    if (r.kind === ROW_KIND.copy || r.kind === ROW_KIND.mean) {
      indices.push(...r.ids);
      if (r.source === 'mean') averagedRows++;
      else identityRows++;
      if ((r.source === 'copy' || r.source === 'id-map') && !added.has(id)) {
        overlapNew.push(id);
        overlapOld.push(r.ids[0]!);
      }
    }
    offsets[id + 1] = indices.length;
  });
  return {
    averaging: { offsets, indices: Int32Array.from(indices), identityRows, averagedRows, emptyRows: plan.newSize - identityRows - averagedRows },
    overlap: { newIds: Int32Array.from(overlapNew), oldIds: Int32Array.from(overlapOld) },
  };
}
