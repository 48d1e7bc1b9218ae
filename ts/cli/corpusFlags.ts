/** Corpus flags shared by the tokenizer commands, mapped onto `ReadTextsOptions`, and a progress sink in kB read. */
import { statSync } from 'node:fs';

import { listCorpusFiles } from '../corpus/listCorpusFiles.js';
import type { ReadTextsOptions } from '../corpus/readCorpus.js';
import { intFlag, progressLine, type Options, type Parsed } from './args.js';

export const corpusOptions: Options = {
  corpus: { type: 'string', multiple: true },
  mode: { type: 'string' },
  format: { type: 'string' },
  'text-field': { type: 'string' },
  normalize: { type: 'string' },
  script: { type: 'string' },
  'max-lines': { type: 'string' },
  'max-chars': { type: 'string' },
};

export const corpusUsage = `  --corpus SPEC (repeatable: files, directories, globs, .jsonl, .gz)   --mode line|document (line)
  --format auto|text|jsonl   --text-field NAME (text)   --normalize none|NFC|NFKC   --script NAME (e.g. Cyrillic)
  --max-lines N   --max-chars N   (caps on what is read; 0 = none)`;

/** The corpus specs given with --corpus (empty when none). */
export function corpusSpecs(values: Parsed['values']): string[] {
  return (values.corpus as unknown as string[] | undefined) ?? [];
}

export function readOptions(values: Parsed['values']): ReadTextsOptions {
  return {
    mode: values.mode as ReadTextsOptions['mode'],
    format: values.format as ReadTextsOptions['format'],
    textField: values['text-field'] as string | undefined,
    normalize: values.normalize as ReadTextsOptions['normalize'],
    script: values.script as string | undefined,
    maxItems: intFlag(values['max-lines'], '--max-lines'),
    maxChars: intFlag(values['max-chars'], '--max-chars'),
  };
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
