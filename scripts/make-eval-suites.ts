#!/usr/bin/env node
/**
 * Writes lep's built-in evaluation suites (ts/eval/builtinSuites.ts) from the held-out Debian corpora:
 * one JSONL task file per task plus manifest.json (seed, items per task, sha256 of every file and of the
 * held-out input). Deterministic: the same corpora give byte-identical files.
 *
 * Usage: npx tsc -p tsconfig.json && node dist/scripts/make-eval-suites.js
 *          [--corpora DIR]   held-out corpora cache (default .cache/corpora; fetch with `lep corpora fetch`)
 *          [--out DIR]       default .cache/eval-suites
 *          [--items N]       items per task (default 50)
 */
import { parseArgs } from 'node:util';

import { DEFAULT_CORPUS_CACHE_DIR } from '../ts/corpus/fetchDebian.js';
import { DEFAULT_SUITE_ITEMS, DEFAULT_SUITES_DIR, writeBuiltinSuites } from '../ts/eval/builtinSuites.js';

const { values } = parseArgs({ options: { corpora: { type: 'string' }, out: { type: 'string' }, items: { type: 'string' } } });
const n = values.items === undefined ? DEFAULT_SUITE_ITEMS : Number(values.items);
if (!Number.isInteger(n) || n < 1) throw new Error(`Expected a positive integer for --items but received ${values.items}`);
const { files, manifest } = writeBuiltinSuites(values.out ?? DEFAULT_SUITES_DIR, values.corpora ?? DEFAULT_CORPUS_CACHE_DIR, n);
for (const [name, t] of Object.entries(manifest.tasks as Record<string, { items: number; sha256: string }>)) console.log(`${name.padEnd(16)} ${String(t.items).padStart(4)} items  ${t.sha256.slice(0, 12)}`);
console.log(`wrote ${files.length} task files to ${values.out ?? DEFAULT_SUITES_DIR}`);
