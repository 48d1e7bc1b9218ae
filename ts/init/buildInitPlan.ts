/**
 * The initialisation plan (docs/method.md §2): for every id of the new tokenizer, which old ids its input and
 * output rows are made from, and how. Pure TS over two tokenizers; the rows are computed natively
 * (cpp/core/embedding_init.*) from this plan.
 *
 * Per new id, the first rule that applies:
 *
 * 1. `id-map`: an Optimized tokenizer's id map (`id_map.json` of `lep tokenizer shrink`) names the old id
 *    of every kept original token: its row moves there unchanged.
 * 2. `override`: `copyRows` names an old token whose row this token takes (e.g. a reserved token that a
 *    new chat template uses takes `<|eot_id|>`'s row, as the reference code does).
 * 3. Added tokens (specials and user-defined symbols) by **string**: `special` copies the old token with the
 *    same content; a special with no old counterpart is `special-mean` (the mean of all old rows). A
 *    special the new tokenizer uses (its bos/eos/pad/unk, or named in its chat template) must have a usable
 *    row: if its old row was never trained (all zero) it becomes the global mean as well.
 * 4. `copy`: a base piece present in both vocabularies (compared as the surface bytes spelled the old way:
 *    "▁мир" matches "ĠÐ¼Ð¸ÑĢ"; a byte-fallback `<0xNN>` matches the old `<0xNN>`, else the character).
 * 5. `mean`: the surface string re-tokenised by the old tokenizer's pre-tokenizer and model only
 *    (`SurfaceEncoder`); the row is the mean of the sub-token rows, a repeated sub-token counting twice.
 *    Stray bytes of a surface that is not whole UTF-8 map to the old piece of that byte. The old unknown
 *    token carries nothing about the text and is left out. With `rule` `random` or `global-mean`, these
 *    tokens get that instead (copies and specials above stay copies). With `rule` `omp` or `focus` and a
 *    donor tokenizer, a token the donor has (by surface string, or by content for added tokens) is `omp` /
 *    `focus`: its row is solved natively in the donor's space (cpp/core/donor_rows.h) and its sub-token
 *    ids are kept as the fallback mean; a token the donor lacks stays `mean`.
 * 6. `empty`: nothing usable is left (an empty surface, only unknown pieces): the global mean.
 *
 * Old rows that are all zero (never trained) are found natively and left out of every mean; a mean with
 * no usable row left, or with norm below 1e-12, becomes the global mean (reported back per side).
 */
import { LepError } from '../errors.js';
import type { IdMap } from '../tokenizer/shrink.js';
import type { Tokenizer } from '../tokenizer/Tokenizer.js';
import { readTokenizerView, type TokenizerView } from '../tokenizer/view.js';
import { oldSpellings, pieceSurface, splitSurface } from './surface.js';
import { SurfaceEncoder } from './surfaceEncoder.js';

/** How rows of re-tokenised (merged, new) tokens are made. */
export type InitRule = 'mean' | 'random' | 'global-mean' | 'omp' | 'focus';
export const INIT_RULES: readonly InitRule[] = ['mean', 'random', 'global-mean', 'omp', 'focus'];
/** Rules whose rows come from a donor's embedding space. */
export const DONOR_RULES: readonly InitRule[] = ['omp', 'focus'];
/** Output-side rows of re-tokenised tokens: the mean (docs/method.md §2), or the first sub-token's row. */
export type OutputRule = 'mean' | 'first';
export const OUTPUT_RULES: readonly OutputRule[] = ['mean', 'first'];

export type RowSource = 'id-map' | 'override' | 'special' | 'special-mean' | 'copy' | 'mean' | 'random' | 'global-mean' | 'omp' | 'focus' | 'empty';
const ROW_SOURCES: readonly RowSource[] = ['id-map', 'override', 'special', 'special-mean', 'copy', 'mean', 'random', 'global-mean', 'omp', 'focus', 'empty'];

/** Native row kinds (cpp/core/embedding_init.h InitKind). */
export const ROW_KIND = { mean: 0, copy: 1, globalMean: 2, random: 3, donor: 4 } as const;

export interface PlanRow {
  source: RowSource;
  /** Old ids (in order; repeated ids count twice). */
  ids: number[];
  kind: (typeof ROW_KIND)[keyof typeof ROW_KIND];
  /** Old unknown-token ids dropped from a re-tokenised surface. */
  droppedUnknown?: number;
  /** Rows of kind `donor`: the token's id in the donor tokenizer. */
  donorId?: number;
}

export interface InitPlan {
  oldSize: number;
  newSize: number;
  rows: PlanRow[];
  /** Rows per source. */
  counts: Record<RowSource, number>;
  /** With a donor: the tokens old model and donor share (same surface string), as id pairs. */
  shared?: { old: number[]; donor: number[] };
}

export interface BuildInitPlanOptions {
  /** How new (re-tokenised) tokens get their rows. Defaults to `mean`. */
  rule?: InitRule;
  /** Optimized tokenizer: new_to_old of its id map. Defaults to none. */
  idMap?: IdMap;
  /** New token string -> old token string whose row it copies. Defaults to none. */
  copyRows?: Record<string, string>;
  /** Rules `omp` / `focus`: the donor's tokenizer (required by them, refused by the others). */
  donor?: Tokenizer;
}

/**
 * The tokens of the old model the donor also has: old base pieces by surface bytes (spelled the donor's
 * way), added tokens by content. Each donor id is paired once (the first old id that spells it).
 */
function sharedTokens(oldView: TokenizerView, oldAdded: Set<string>, donorFind: (surface: ReturnType<typeof pieceSurface>) => number | undefined, donorAll: Record<string, number>): { old: number[]; donor: number[] } {
  const old: number[] = [];
  const donor: number[] = [];
  const used = new Set<number>();
  const pair = (o: number, d: number | undefined): void => {
    if (d === undefined || used.has(d)) return;
    used.add(d);
    old.push(o);
    donor.push(d);
  };
  for (const [t, o] of [...oldView.vocab].sort((a, b) => a[1] - b[1])) if (!oldAdded.has(t)) pair(o, donorFind(pieceSurface(t, oldView.style)));
  for (const a of oldView.added) pair(a.id, donorAll[a.content]);
  return { old, donor };
}

function checkIdMap(idMap: IdMap, oldTok: Tokenizer, newTok: Tokenizer): void {
  const bad = (what: string): LepError =>
    new LepError('LEP_ID_MAP_MISMATCH', `the id map does not belong to these tokenizers: ${what}\nHINT: pass the id_map.json written by \`lep tokenizer shrink\` together with the tokenizer it wrote, and the model whose tokenizer was shrunk.`);
  if (!Array.isArray(idMap.new_to_old)) throw bad('it has no new_to_old list');
  if (idMap.old_size !== oldTok.size) throw bad(`old_size is ${idMap.old_size} but the model's tokenizer has ${oldTok.size} ids`);
  if (idMap.new_to_old.length > newTok.size) throw bad(`it maps ${idMap.new_to_old.length} new ids but the new tokenizer has ${newTok.size}`);
  idMap.new_to_old.forEach((o, n) => {
    if (!Number.isInteger(o) || o < 0 || o >= oldTok.size) throw bad(`new id ${n} maps to old id ${JSON.stringify(o)}`);
    const a = newTok.idToToken(n);
    const b = oldTok.idToToken(o);
    if (a !== b) throw bad(`new id ${n} is ${JSON.stringify(a)} but old id ${o} is ${JSON.stringify(b)}`);
  });
}

/** Specials the new tokenizer uses: bos/eos/pad/unk of its config, and those its chat template names. */
function usedSpecials(newTok: Tokenizer, specials: string[]): Set<string> {
  const used = new Set<string>();
  for (const kind of ['bos', 'eos', 'pad', 'unk'] as const) {
    const t = newTok.specialToken(kind);
    if (t !== undefined) used.add(t);
  }
  const tpl = newTok.chatTemplate ?? '';
  for (const s of specials) if (tpl.includes(s)) used.add(s);
  return used;
}

export async function buildInitPlan(oldTok: Tokenizer, newTok: Tokenizer, options: BuildInitPlanOptions = {}): Promise<InitPlan> {
  const rule = options.rule ?? 'mean';
  const donorRule = DONOR_RULES.includes(rule);
  // initEmbeddings checks the options with messages for users (resolveInitOptions); this guards direct calls.
  if (donorRule !== (options.donor !== undefined))
    throw new LepError('LEP_BAD_OPTION', `buildInitPlan: rule "${rule}" ${donorRule ? 'needs' : 'takes no'} donor tokenizer\nHINT: rules ${DONOR_RULES.join(' and ')} take options.donor; the others do not.`);
  const oldView: TokenizerView = readTokenizerView(oldTok, 'the old tokenizer');
  const newView: TokenizerView = readTokenizerView(newTok, 'the new tokenizer');
  const oldSize = oldTok.size;
  const newSize = newTok.size;
  const oldAll = oldTok.vocab(); // base + added, by exact string
  const oldAdded = new Set(oldView.added.map((a) => a.content));
  const oldUnk = oldView.unkToken === undefined ? undefined : oldAll[oldView.unkToken];

  const rows: (PlanRow | undefined)[] = new Array(newSize).fill(undefined);
  const set = (id: number, source: RowSource, ids: number[], kind: PlanRow['kind']): void => {
    rows[id] = { source, ids, kind };
  };

  // The donor: which of its ids spells a surface (base pieces) or names an added token.
  const donorView = options.donor ? readTokenizerView(options.donor, 'the donor tokenizer') : undefined;
  const donorAll = options.donor?.vocab() ?? {};
  const donorBase = new Map<string, number>();
  if (donorView) {
    const donorAdded = new Set(donorView.added.map((a) => a.content));
    for (const [t, id] of donorView.vocab) if (!donorAdded.has(t)) donorBase.set(t, id);
  }
  const donorFind = (surface: ReturnType<typeof pieceSurface>): number | undefined =>
    donorView ? oldSpellings(surface, donorView.style).map((x) => donorBase.get(x)).find((d) => d !== undefined) : undefined;

  // 1. id map (Optimized).
  if (options.idMap) {
    checkIdMap(options.idMap, oldTok, newTok);
    options.idMap.new_to_old.forEach((o, n) => set(n, 'id-map', [o], ROW_KIND.copy));
  }

  // 2. explicit overrides.
  for (const [to, from] of Object.entries(options.copyRows ?? {})) {
    const n = newTok.tokenToId(to);
    if (n === undefined)
      throw new LepError('LEP_BAD_OPTION', `Expected a token of the new tokenizer for copyRows (--copy-row) but received ${JSON.stringify(to)}`);
    const o = oldAll[from];
    if (o === undefined)
      throw new LepError('LEP_BAD_OPTION', `Expected a token of the old tokenizer for copyRows["${to}"] (--copy-row) but received ${JSON.stringify(from)}`);
    set(n, 'override', [o], ROW_KIND.copy);
  }

  // 3. added tokens by string.
  const newSpecials = newView.added.filter((a) => a.special).map((a) => a.content);
  const used = usedSpecials(newTok, newSpecials);
  const addedText = new Map<number, string>(); // non-special added tokens absent from the old vocabulary: re-tokenised as text
  for (const a of newView.added) {
    if (rows[a.id]) continue;
    const o = oldAll[a.content];
    if (o !== undefined) set(a.id, 'special', [o], a.special && used.has(a.content) ? ROW_KIND.mean : ROW_KIND.copy);
    else if (a.special) set(a.id, 'special-mean', [], ROW_KIND.globalMean);
    else addedText.set(a.id, a.content);
  }

  // 4. pieces present in both vocabularies; the rest are collected for re-tokenisation.
  const oldBase = new Map<string, number>();
  for (const [t, id] of oldView.vocab) if (!oldAdded.has(t)) oldBase.set(t, id);
  const pending: { id: number; parts: ReturnType<typeof splitSurface>; donorId?: number }[] = [];
  for (let id = 0; id < newSize; id++) {
    if (rows[id]) continue;
    const text = addedText.get(id);
    if (text !== undefined) {
      pending.push({ id, parts: text ? [{ text }] : [], donorId: donorAll[text] });
      continue;
    }
    const piece = newTok.idToToken(id);
    if (piece === undefined) {
      set(id, 'empty', [], ROW_KIND.globalMean); // an id hole in the new vocabulary
      continue;
    }
    const surface = pieceSurface(piece, newView.style);
    const same = oldSpellings(surface, oldView.style).map((s) => oldBase.get(s)).find((o) => o !== undefined);
    if (same !== undefined) set(id, 'copy', [same], ROW_KIND.copy);
    else pending.push({ id, parts: splitSurface(surface.bytes), donorId: donorFind(surface) });
  }

  // 5. re-tokenise the rest with the old tokenizer's pre-tokenizer and model only.
  const texts: string[] = [];
  for (const p of pending) for (const part of p.parts) if ('text' in part) texts.push(part.text);
  const encoded = await new SurfaceEncoder(oldTok).encodeAll(texts);
  let next = 0;
  for (const p of pending) {
    const ids: number[] = [];
    let droppedUnknown = 0;
    for (const part of p.parts) {
      if ('text' in part) ids.push(...encoded[next++]!);
      else {
        const o = oldSpellings({ bytes: new Uint8Array([part.byte]), byteFallback: true }, oldView.style)
          .map((s) => oldBase.get(s))
          .find((x) => x !== undefined);
        if (o === undefined) droppedUnknown++;
        else ids.push(o);
      }
    }
    const usable = ids.filter((o) => o !== oldUnk);
    droppedUnknown += ids.length - usable.length;
    let row: PlanRow;
    if (usable.length === 0) row = { source: 'empty', ids: [], kind: ROW_KIND.globalMean };
    else if (rule === 'random') row = { source: 'random', ids: usable, kind: ROW_KIND.random };
    else if (rule === 'global-mean') row = { source: 'global-mean', ids: usable, kind: ROW_KIND.globalMean };
    else if (donorRule && p.donorId !== undefined) row = { source: rule, ids: usable, kind: ROW_KIND.donor, donorId: p.donorId };
    else row = { source: 'mean', ids: usable, kind: ROW_KIND.mean };
    if (droppedUnknown) row.droppedUnknown = droppedUnknown;
    rows[p.id] = row;
  }

  const counts = Object.fromEntries(ROW_SOURCES.map((s) => [s, 0])) as Record<RowSource, number>;
  for (const r of rows) counts[r!.source]++;
  const plan: InitPlan = { oldSize, newSize, rows: rows as PlanRow[], counts };
  if (donorView) plan.shared = sharedTokens(oldView, oldAdded, donorFind, donorAll);
  return plan;
}

/**
 * The plan as the native job takes it: CSR offsets/ids and one kind per row (random/global-mean rows carry
 * no ids natively; donor rows carry their fallback mean's), and per row its donor id or -1.
 */
export function planArrays(plan: InitPlan): { offsets: Int32Array; ids: Int32Array; kinds: Uint8Array; rowDonor: Int32Array } {
  const listed = (r: PlanRow): boolean => r.kind === ROW_KIND.mean || r.kind === ROW_KIND.copy || r.kind === ROW_KIND.donor;
  const offsets = new Int32Array(plan.newSize + 1);
  let total = 0;
  plan.rows.forEach((r, i) => {
    if (listed(r)) total += r.ids.length;
    offsets[i + 1] = total;
  });
  const ids = new Int32Array(total);
  const kinds = new Uint8Array(plan.newSize);
  const rowDonor = new Int32Array(plan.newSize).fill(-1);
  plan.rows.forEach((r, i) => {
    kinds[i] = r.kind;
    if (listed(r)) ids.set(r.ids, offsets[i]!);
    if (r.donorId !== undefined) rowDonor[i] = r.donorId;
  });
  return { offsets, ids, kinds, rowDonor };
}
