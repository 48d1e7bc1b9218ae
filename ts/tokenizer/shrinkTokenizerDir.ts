/**
 * Optimized vocabulary on model directories (docs/method.md §1): shrink the original in `originalDir` to
 * `keep` base tokens (`shrinkTokenizer`), then, given a donor, extend the result (`extendTokenizer`).
 * Writes `tokenizer.json`, `tokenizer_config.json`, the id map (`ID_MAP_FILE`: old id -> new id of every
 * kept original token; ids from `new_size` up are the donor's new tokens) and the resolved run (`RUN_FILE`).
 */
import { resolve } from 'node:path';

import { readTexts, type ReadTextsOptions } from '../corpus/readCorpus.js';
import { optionError } from '../errors.js';
import { DEFAULT_MERGE_ORDER, extendTokenizer, type ExtendOptions, type ExtendStats } from './extend.js';
import { checkIdsKept, RUN_FILE } from './extendTokenizerDir.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeDirAtomicSync } from '../util/writeDirAtomic.js';
import { DEFAULT_SHRINK_RULE, ID_MAP_FILE, saveTokenizerDir, shrinkTokenizer, type IdMap, type ShrinkOptions, type ShrinkStats } from './shrink.js';
import { Tokenizer } from './Tokenizer.js';

export interface ShrinkTokenizerDirOptions extends ShrinkOptions {
  /** Target-language corpus (files, globs, directories; see `readTexts`); required by rule `frequency`. Defaults to none. */
  corpus?: string | readonly string[];
  /** How the corpus is read (mode, script filter, caps ...). Defaults to `readTexts`' defaults (lines, no filter, no cap). */
  read?: ReadTextsOptions;
  /** A donor tokenizer directory: when given, the shrunk tokenizer is extended with it (Optimized). Defaults to none (shrink only). */
  donorDir?: string;
  /** Options of the extend step. Defaults to `extendTokenizer`'s. */
  extend?: ExtendOptions;
  /** Called while counting, every `batchSize` texts, with the texts and UTF-8 bytes read so far. Defaults to none. */
  onProgress?: (event: { texts: number; bytes: number }) => void;
}

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
  checkOutputPath(outDir, '--out', { ORIGINAL_DIR: originalDir, '--donor': options.donorDir, '--corpus': options.corpus });
  const rule = options.rule ?? DEFAULT_SHRINK_RULE;
  if (rule === 'frequency' && (options.corpus === undefined || options.corpus.length === 0))
    throw optionError('corpus', 'a target-language corpus when rule is "frequency"', options.corpus, '--corpus');
  const original = Tokenizer.fromDir(originalDir);
  const donor = options.donorDir === undefined ? undefined : Tokenizer.fromDir(options.donorDir);
  const texts = rule === 'frequency' ? counted(readTexts(options.corpus!, options.read), options.batchSize ?? 256, options.onProgress) : null;
  const shrunk = await shrinkTokenizer(original, texts, options);
  const oldToNew = (id: number): number | undefined => shrunk.idMap.old_to_new[String(id)];
  let { json, config } = shrunk;
  let extendStats: ExtendStats | undefined;
  if (donor) {
    const ext = extendTokenizer(shrunk, donor, options.extend ?? {});
    ({ json, config } = ext);
    extendStats = ext.stats;
  }
  const written = checkIdsKept(original, json, config, oldToNew);
  writeDirAtomicSync(outDir, '--out', (tmp) =>
    saveTokenizerDir(tmp, json, config, {
      [ID_MAP_FILE]: shrunk.idMap,
      [RUN_FILE]: {
        operation: donor ? 'shrink+extend' : 'shrink',
        original: resolve(originalDir),
        donor: options.donorDir === undefined ? null : resolve(options.donorDir),
        corpus: options.corpus ?? null,
        options: {
          keep: options.keep,
          rule,
          read: options.read ?? {},
          extend: donor ? { mergeOrder: DEFAULT_MERGE_ORDER, ...options.extend } : null,
        },
        stats: { shrink: shrunk.stats, extend: extendStats ?? null },
      },
    }),
  );
  return { outDir, shrink: shrunk.stats, extend: extendStats, idMap: shrunk.idMap, size: written.size };
}
