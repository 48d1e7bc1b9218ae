// Really fetches one small Debian package (fortunes-ru, 0.7 MB) from the archive, as the full corpus
// command does, into a temporary cache; then checks the cache hit through lep corpora fetch.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { fetchCorpora } from '../../ts/corpus/fetchDebian.js';
import type { LepError } from '../../ts/errors.js';
import { readTexts } from '../../ts/corpus/readCorpus.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';

const run = promisify(execFile);

test('fortunes-ru: fetched, Cyrillic UTF-8, split without overlap, second call a cache hit', async (t) => {
  const cacheDir = tempDir('lep-corpora-');
  const first = await fetchCorpora({ cacheDir, sources: ['fortunes-ru'] });
  t.false(first.cached);
  t.deepEqual(Object.keys(first.files).sort(), ['heldout/ru.txt', 'ru.txt']);
  const m = first.manifest;
  t.deepEqual(m.config.sources, ['fortunes-ru']);
  t.deepEqual(m.config.outputs, ['ru']);
  t.is(m.packages.length, 1);
  t.is(m.packages[0]!.package, 'fortunes-ru');
  t.regex(m.packages[0]!.version, /^\d/);

  // Strict UTF-8, mostly Cyrillic letters, documents separated by single blank lines.
  const bytes = readFileSync(first.files['ru.txt']!);
  const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  const letters = text.match(/\p{L}/gu)!.length;
  const cyrillic = text.match(/\p{Script=Cyrillic}/gu)!.length;
  t.true(cyrillic / letters > 0.95, `Cyrillic share ${(cyrillic / letters).toFixed(3)}`);
  t.false(text.includes('\n\n\n'));
  t.true(text.endsWith('\n') && !text.startsWith('\n'));
  t.is(m.files['ru.txt']!.bytes, bytes.length);
  t.true(m.files['ru.txt']!.documents > 15000, `${m.files['ru.txt']!.documents} fortunes`);
  const held = m.files['heldout/ru.txt']!.documents;
  const share = held / (held + m.files['ru.txt']!.documents);
  t.true(share > 0.03 && share < 0.07, `held-out share ${share}`);

  // No held-out paragraph of 32+ characters appears in training.
  const trainParas = new Set(text.split('\n'));
  const heldText = readFileSync(first.files['heldout/ru.txt']!, 'utf8');
  const leaks = heldText.split('\n').filter((p) => p.length >= 32 && trainParas.has(p));
  t.deepEqual(leaks, []);

  // The outputs are a corpus readTexts reads in document mode.
  let docs = 0;
  for await (const d of readTexts(first.files['ru.txt']!, { mode: 'document' })) {
    if (docs === 0) t.regex(d, /\p{Script=Cyrillic}/u);
    docs++;
  }
  t.is(docs, m.files['ru.txt']!.documents);

  // Second call: the manifest matches, nothing is fetched or written (every file in the cache keeps its
  // modification time to the nanosecond, and no file is added).
  const stamps = () => readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).sort().map((f) => `${f} ${statSync(join(cacheDir, f), { bigint: true }).mtimeNs}`);
  const before = stamps();
  const second = await fetchCorpora({ cacheDir, sources: ['fortunes-ru'] });
  t.true(second.cached);
  t.deepEqual(stamps(), before);
  t.deepEqual(second.manifest, m);

  // lep corpora fetch reports the same cache hit. --only repeated adds up (the last alone, pairs, is
  // an output fortunes-ru does not feed: an error).
  const { stdout } = await run(process.execPath, [LEP, 'corpora', 'fetch', '--out', cacheDir, '--only', 'ru', '--only', 'pairs', '--sources', 'fortunes-ru', '--json']);
  const r = JSON.parse(stdout);
  t.true(r.cached);
  t.is(r.manifest.files['ru.txt'].sha256, m.files['ru.txt']!.sha256);
});

test('lep corpora fetch rejects an unknown output with the option named', async (t) => {
  const e = await t.throwsAsync(run(process.execPath, [LEP, 'corpora', 'fetch', '--out', tempDir(), '--only', 'ru,fr']));
  t.regex((e as unknown as { stderr: string }).stderr, /Expected "ru" or "en" or "pairs" for outputs\[1\] \(--only\) but received "fr"/);
});

test('fetchCorpora checks its options before it fetches anything: an unknown key, a bound', async (t) => {
  const dir = tempDir();
  const typo = await t.throwsAsync(fetchCorpora({ cacheDir: dir, heldOutPercent: 3 } as never));
  t.is((typo as LepError).code, 'LEP_BAD_OPTION');
  t.regex(typo!.message, /unknown option heldOutPercent\nHINT: the known options are cacheDir, outputs, sources, heldoutPercent,/);
  const bound = await t.throwsAsync(fetchCorpora({ cacheDir: dir, heldoutPercent: 100 }));
  t.regex(bound!.message, /Expected a number in \[0, 100\) for heldoutPercent \(--heldout-percent\) but received 100/);
  t.deepEqual(readdirSync(dir), [], 'nothing written');
});
