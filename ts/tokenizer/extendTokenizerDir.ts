/**
 * `extendTokenizer` on model directories: read the original's and the donor's tokenizer files, extend,
 * check that Hugging Face `tokenizers` loads the result with every original id in place, and write
 * `tokenizer.json`, `tokenizer_config.json`, the resolved run (`RUN_FILE`) and last the stage record
 * (`lep-stage.json`, stage `extend`) into the output directory, which is built aside and renamed into place.
 */
import { resolve } from 'node:path';

import { LepError } from '../errors.js';
import { extendTokenizer, resolveExtendOptions, type ExtendOptions, type ExtendStats, type ResolvedExtendOptions } from './extend.js';
import { EXTEND_SPEC } from './extendOptions.js';
import type { Json } from './bpeJson.js';
import { saveTokenizerDir } from './shrink.js';
import { beginStage, tokenizerInput, writeStageRecord, type StageTagOptions } from '../stage/stageRecord.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { writeDirAtomicSync } from '../util/writeDirAtomic.js';
import { Tokenizer } from './Tokenizer.js';

/** File written next to a tokenizer that lep made: the operation, its inputs, resolved options and stats. */
export const RUN_FILE = 'lep_tokenizer_run.json';

/**
 * Loads `json` in Hugging Face `tokenizers` (as a user of the output would) and checks that every token
 * of `original` that `keptIds` maps has that id there. Throws LEP_INTERNAL naming the first mismatch:
 * this guards the writer, not the user's input.
 */
export function checkIdsKept(original: Tokenizer, json: Json, config: Json, keptId: (oldId: number) => number | undefined = (id) => id): Tokenizer {
  const out = Tokenizer.fromJson(JSON.stringify(json), config, 'the written tokenizer.json');
  for (const [token, oldId] of Object.entries(original.vocab())) {
    const want = keptId(oldId);
    if (want === undefined) continue;
    const got = out.tokenToId(token);
    if (got !== want)
      throw new LepError('LEP_INTERNAL', `the written tokenizer gives ${JSON.stringify(token)} the id ${got}, expected ${want} (original id ${oldId})\nHINT: this is a bug in lep; please report it with the input tokenizers.`);
  }
  return out;
}

/**
 * Every EXTEND_SPEC option as the extension ran with it: defaults filled in, `ignoreMerges` as the
 * result's BPE model has it (its default depends on the merge order and the original), no limit as null.
 */
export function extendResolved(o: ResolvedExtendOptions, json: Json): Record<keyof typeof EXTEND_SPEC, unknown> {
  return {
    mergeOrder: o.mergeOrder,
    ignoreMerges: (json.model as Json).ignore_merges,
    maxNewTokens: o.maxNewTokens ?? null,
    padToMultipleOf: o.padToMultipleOf,
    reservedToken: o.reservedToken,
    maxSize: o.maxSize ?? null,
  };
}

export interface ExtendTokenizerDirResult {
  outDir: string;
  stats: ExtendStats;
}

/**
 * Extends the tokenizer in `originalDir` with the donor in `donorDir` (both need `tokenizer.json`; see
 * `extendTokenizer` for what is kept and added) and writes the result to `outDir`.
 */
export function extendTokenizerDir(originalDir: string, donorDir: string, outDir: string, options: ExtendOptions & StageTagOptions = {}): ExtendTokenizerDirResult {
  const stage = beginStage('extend');
  const { tags, ...extendOptions } = options;
  const o = resolveExtendOptions(extendOptions);
  checkOutputPath(outDir, '--out', { ORIGINAL_DIR: originalDir, '--donor': donorDir });
  const original = Tokenizer.fromDir(originalDir);
  const donor = Tokenizer.fromDir(donorDir);
  const r = extendTokenizer(original, donor, extendOptions);
  checkIdsKept(original, r.json, r.config);
  const resolved = extendResolved(o, r.json);
  const inputs = [tokenizerInput('original', originalDir), tokenizerInput('donor', donorDir)];
  writeDirAtomicSync(outDir, '--out', (tmp) => {
    saveTokenizerDir(tmp, r.json, r.config, {
      [RUN_FILE]: { operation: 'extend', original: resolve(originalDir), donor: resolve(donorDir), options: resolved, stats: r.stats },
    });
    // Last: the stage record (the directory is then renamed into place as a whole).
    writeStageRecord(tmp, stage, { inputs, resolved, result: { stats: r.stats }, tags });
  });
  return { outDir, stats: r.stats };
}
