/**
 * Optimized vocabulary on model directories (docs/method.md §1): shrink the original in `originalDir` to
 * `keep` base tokens (`shrinkTokenizer`), then, given a donor, extend the result (`extendTokenizer`).
 * Writes `tokenizer.json`, `tokenizer_config.json`, the id map (`ID_MAP_FILE`: old id -> new id of every
 * kept original token; ids from `new_size` up are the donor's new tokens), the resolved run (`RUN_FILE`)
 * and last the stage record (`lep-stage.json`, stage `shrink`) into a directory built aside and renamed
 * into place.
 */
import { resolve } from 'node:path';

import { readTexts, resolveReadTextsOptions, type ReadTextsOptions } from '../corpus/readCorpus.js';
import { optionError } from '../errors.js';
import { extendTokenizer, resolveExtendOptions, type ExtendOptions, type ExtendStats } from './extend.js';
import { checkIdsKept, extendResolved, RUN_FILE } from './extendTokenizerDir.js';
import { beginStage, corpusInputs, tokenizerInput, writeStageRecord, type StageTagOptions } from '../stage/stageRecord.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeDirAtomicSync } from '../util/writeDirAtomic.js';
import { ID_MAP_FILE, saveTokenizerDir, shrinkTokenizer, type IdMap, type ShrinkStats } from './shrink.js';
import { SHRINK_DIR_SPEC } from './shrinkOptions.js';
import { checkOptions, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { READ_TEXTS_SPEC } from '../corpus/readTextsOptions.js';
import { Tokenizer } from './Tokenizer.js';

/** shrinkTokenizerDir's options: SHRINK_DIR_SPEC (shrinkOptions.ts) gives each one's type, bounds, default and doc. */
export type ShrinkTokenizerDirOptions = OptionsOf<typeof SHRINK_DIR_SPEC> &
  StageTagOptions & {
  /** How the corpus is read (mode, script filter, caps ...): READ_TEXTS_SPEC. Defaults to `readTexts`' defaults (lines, no filter, no cap). */
  read?: ReadTextsOptions;
  /** Options of the extend step: EXTEND_SPEC. Defaults to `extendTokenizer`'s. */
  extend?: ExtendOptions;
  /** Called while counting, every `batchSize` texts, with the texts and UTF-8 bytes read so far. Defaults to none. */
  onProgress?: (event: { texts: number; bytes: number }) => void;
};

/** The keys of ShrinkTokenizerDirOptions that are not options of the spec (checked by their own specs). */
const SHRINK_DIR_NON_SPEC_KEYS = ['read', 'extend', 'onProgress', 'tags'];

export interface ShrinkTokenizerDirResult {
  outDir: string;
  shrink: ShrinkStats;
  /** Present when a donor was given. */
  extend?: ExtendStats;
  idMap: IdMap;
  /** Total size written (highest id + 1). */
  size: number;
}

async function* counted(texts: AsyncIterable<string>, every: number, onProgress?: ShrinkTokenizerDirOptions['onProgress']): AsyncGenerator<string> {
  let n = 0;
  let bytes = 0;
  for await (const t of texts) {
    n++;
    bytes += Buffer.byteLength(t, 'utf8');
    if (onProgress && n % every === 0) onProgress({ texts: n, bytes });
    yield t;
  }
  onProgress?.({ texts: n, bytes });
}

/** Shrinks (and, with `donorDir`, extends) the tokenizer in `originalDir` into `outDir`; see the module doc. */
export async function shrinkTokenizerDir(originalDir: string, outDir: string, options: ShrinkTokenizerDirOptions): Promise<ShrinkTokenizerDirResult> {
  const stage = beginStage('shrink');
  // Every option is checked before anything is read: the corpus reader's and the extend step's too.
  checkOptions(SHRINK_DIR_SPEC, options, { kind: 'options' }, SHRINK_DIR_NON_SPEC_KEYS);
  const { keep, rule, batchSize } = withDefaults(SHRINK_DIR_SPEC, options);
  resolveReadTextsOptions(options.read);
  const extend = resolveExtendOptions(options.extend ?? {});
  checkOutputPath(outDir, '--out', { ORIGINAL_DIR: originalDir, '--donor': options.donorDir, '--corpus': options.corpus }, 'folder');
  if (rule === 'frequency' && (options.corpus === undefined || options.corpus.length === 0))
    throw optionError('corpus', 'a target-language corpus when rule is "frequency"', options.corpus, '--corpus');
  const original = Tokenizer.fromDir(originalDir);
  const donor = options.donorDir === undefined ? undefined : Tokenizer.fromDir(options.donorDir);
  const texts = rule === 'frequency' ? counted(readTexts(options.corpus!, options.read), batchSize, options.onProgress) : null;
  const shrunk = await shrinkTokenizer(original, texts, { keep, rule, batchSize });
  const oldToNew = (id: number): number | undefined => shrunk.idMap.old_to_new[String(id)];
  let { json, config } = shrunk;
  let extendStats: ExtendStats | undefined;
  if (donor) {
    const ext = extendTokenizer(shrunk, donor, options.extend ?? {});
    ({ json, config } = ext);
    extendStats = ext.stats;
  }
  const written = checkIdsKept(original, json, config, oldToNew);
  const read = withDefaults(READ_TEXTS_SPEC, options.read ?? {});
  const extendRun = donor ? extendResolved(extend, json) : null;
  const donorPath = options.donorDir === undefined ? null : resolve(options.donorDir);
  // Every SHRINK_DIR_SPEC option as it ran, the corpus reader's and the extend step's too (null: none).
  const resolved: Record<keyof typeof SHRINK_DIR_SPEC | 'read' | 'extend', unknown> = {
    keep, rule, batchSize, corpus: options.corpus ?? null, donorDir: donorPath, read, extend: extendRun,
  };
  const inputs = [
    tokenizerInput('original', originalDir),
    ...(options.donorDir === undefined ? [] : [tokenizerInput('donor', options.donorDir)]),
    ...(rule === 'frequency' ? await corpusInputs('corpus', options.corpus!) : []),
  ];
  const stats = { shrink: shrunk.stats, extend: extendStats ?? null };
  writeDirAtomicSync(outDir, '--out', (tmp) => {
    saveTokenizerDir(tmp, json, config, {
      [ID_MAP_FILE]: shrunk.idMap,
      [RUN_FILE]: {
        operation: donor ? 'shrink+extend' : 'shrink',
        original: resolve(originalDir),
        donor: donorPath,
        corpus: options.corpus ?? null,
        options: { keep, rule, read: options.read ?? {}, extend: extendRun },
        stats,
      },
    });
    // Last: the stage record (the directory is then renamed into place as a whole).
    writeStageRecord(tmp, stage, { inputs, resolved, result: { ...stats, size: written.size }, tags: options.tags });
  });
  return { outDir, shrink: shrunk.stats, extend: extendStats, idMap: shrunk.idMap, size: written.size };
}
