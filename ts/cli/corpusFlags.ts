/**
 * Corpus flags shared by the commands that read text: --corpus (repeatable) and the corpus reader's options
 * (READ_TEXTS_SPEC, corpus/readTextsOptions.ts), whose flags, help lines and checks derive from the spec;
 * and a progress sink in kB read.
 */
import { statSync } from 'node:fs';

import { Type } from '@sinclair/typebox';

import { listCorpusFiles } from '../corpus/listCorpusFiles.js';
import type { ReadTextsOptions } from '../corpus/readCorpus.js';
import { READ_TEXTS_SPEC } from '../corpus/readTextsOptions.js';
import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, pickOptions } from '../options/optionSpec.js';
import { progressLine, type Parsed } from './args.js';

/** The reader's options a command line sets (scriptShare and maxItemChars are the API's only). */
export const CORPUS_READ_FLAGS_SPEC = pickOptions(READ_TEXTS_SPEC, ['mode', 'format', 'textField', 'normalize', 'script', 'maxItems', 'maxChars']);

export const CORPUS_FLAGS_SPEC = defineOptions({
  corpus: { schema: Type.Array(Type.String({ minLength: 1 })), arg: 'SPEC', doc: '(repeatable) Text to read: files, directories, globs; .jsonl and .gz are read too.' },
  ...CORPUS_READ_FLAGS_SPEC,
});

export const corpusOptions = cliFlags(CORPUS_FLAGS_SPEC);

export const corpusUsage = helpLines(CORPUS_FLAGS_SPEC).join('\n');

/** The corpus specs given with --corpus (empty when none). */
export function corpusSpecs(values: Parsed['values']): string[] {
  return (values.corpus as unknown as string[] | undefined) ?? [];
}

/** The reader's options given as flags, checked against the spec (before any file is listed or read). */
export function readOptions(values: Parsed['values']): ReadTextsOptions {
  const o = fromFlags(CORPUS_READ_FLAGS_SPEC, values);
  checkOptions(CORPUS_READ_FLAGS_SPEC, o, { kind: 'options' });
  return o as ReadTextsOptions;
}

/**
 * A progress line in kB of text read against the corpus files' size (compressed size for .gz files, so
 * the bar is approximate there); `done()` completes the line when a cap stopped reading early.
 */
export async function corpusProgress(label: string, specs: string[]): Promise<{ onProgress: (e: { bytes: number }) => void; done: () => void }> {
  const files = await listCorpusFiles(specs);
  const total = Math.max(1, Math.round(files.reduce((n, f) => n + statSync(f).size, 0) / 1024));
  const line = progressLine(`${label} (kB)`);
  let last = 0;
  return {
    onProgress: (e) => {
      last = Math.min(total - 1, Math.round(e.bytes / 1024));
      line({ done: last, total });
    },
    done: () => line({ done: total, total }),
  };
}
