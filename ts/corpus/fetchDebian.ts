/**
 * Training and evaluation corpora from Debian packages, fetched without installing anything.
 *
 *   1. download the packages the requested outputs need (`apt-get download`, cached in `debs/`);
 *   2. unpack them (`dpkg -x`, cached in `extract/PKG_VERSION/`);
 *   3. read each source into documents of clean paragraphs (`debianSources.ts`);
 *   4. split documents into training and held-out by a hash of their key (`heldout.ts`);
 *   5. drop from training every paragraph that repeats a held-out one (see below);
 *   6. write the outputs atomically, then `manifest.json` last.
 *
 * Outputs in the cache folder:
 *
 *   ru.txt, en.txt               documents separated by a blank line, one paragraph per line
 *   pairs.jsonl                  {"en","ru","path","id"} per line
 *   heldout/{ru.txt,en.txt,pairs.jsonl}   the same for the held-out documents
 *   manifest.json                configuration, package versions, per-file bytes/sha256/counts, notes
 *
 * Split and leakage: a document (a fortune, a man page, a help page — so a page's English and Russian
 * versions and its pairs fall on the same side) is held out when sha1("source:key") < 5%. Help pages
 * embed each other's sections, and man pages and fortunes repeat, so a held-out paragraph can also sit
 * in a training document: training drops every paragraph of 32 or more characters equal to a held-out
 * paragraph of the same language, and every pair whose English or Russian text equals that of a held-out
 * pair. Shorter paragraphs (headings such as "ОПИСАНИЕ") may appear on both sides. Pairs are
 * de-duplicated within each side.
 *
 * Order: documents and pairs are sorted by sha1 of their key, a fixed shuffle, so any prefix of a file is
 * a mix of all its sources (handy with a character cap). Every run over the same package versions writes
 * the same bytes; the versions are the archive's candidates at first download and are kept in `debs/`.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { optionError } from '../errors.js';
import { checkOptions, withDefaults } from '../options/optionSpec.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { CorpusFileWriter, codePoints, type CorpusFileStats } from './CorpusFileWriter.js';
import { downloadDebs, extractDeb, type DebInfo } from './debianPackages.js';
import { readFortunes, readHelpPages, readManpages, type CorpusDoc, type CorpusPair } from './debianSources.js';
import {
  CORPUS_OUTPUTS,
  CORPUS_SOURCE_NAMES,
  DEFAULT_CORPUS_CACHE_DIR,
  FETCH_CORPORA_NON_SPEC_KEYS,
  FETCH_CORPORA_SPEC,
  type CorpusOutput,
  type CorpusSource,
  type FetchCorporaOptions,
} from './fetchCorporaOptions.js';
import { isHeldOut } from './heldout.js';

export { CORPUS_OUTPUTS, DEFAULT_CORPUS_CACHE_DIR, DEFAULT_EN_MANPAGES_MAX_BYTES, type CorpusOutput, type CorpusSource, type FetchCorporaOptions } from './fetchCorporaOptions.js';

/** Each source: the Debian packages it needs and the outputs it feeds. */
export const CORPUS_SOURCES: Readonly<Record<CorpusSource, { packages: readonly string[]; outputs: readonly CorpusOutput[] }>> = {
  'fortunes-ru': { packages: ['fortunes-ru'], outputs: ['ru'] },
  'manpages-ru': { packages: ['manpages-ru', 'manpages-ru-dev'], outputs: ['ru'] },
  'manpages-en': { packages: ['manpages', 'manpages-dev'], outputs: ['en'] },
  'libreoffice-help': { packages: ['libreoffice-help-en-us', 'libreoffice-help-ru'], outputs: ['ru', 'en', 'pairs'] },
};

/** Training drops paragraphs equal to a held-out paragraph from this length (characters) up. */
export const MIN_LEAK_CHARS = 32;
/** Bump when the cleaning or layout changes, so existing caches are rebuilt. */
const MANIFEST_FORMAT = 1;

export interface CorpusManifest {
  format: number;
  config: {
    outputs: CorpusOutput[];
    sources: CorpusSource[];
    heldoutPercent: number;
    enManpagesMaxBytes: number;
    minLeakChars: number;
  };
  packages: { package: string; version: string; architecture: string; deb: string; debSha256: string }[];
  /** Per output file (path relative to the cache folder). */
  files: Record<string, CorpusFileStats>;
  /** Per source and language: documents and characters on each side (training after the leakage filter). */
  sources: Record<string, { train: number; heldout: number; trainChars: number; heldoutChars: number }>;
  notes: string[];
}

export interface FetchCorporaResult {
  cacheDir: string;
  /** True when the outputs were already current and nothing was done. */
  cached: boolean;
  manifest: CorpusManifest;
  /** Absolute paths of the outputs, by relative name (`ru.txt`, `heldout/ru.txt`, …). */
  files: Record<string, string>;
}

function outputFiles(outputs: readonly CorpusOutput[]): string[] {
  return outputs.flatMap((o) => {
    const name = o === 'pairs' ? 'pairs.jsonl' : `${o}.txt`;
    return [name, `heldout/${name}`];
  });
}

function resolveConfig(given: FetchCorporaOptions): CorpusManifest['config'] {
  checkOptions(FETCH_CORPORA_SPEC, given, { kind: 'options' }, FETCH_CORPORA_NON_SPEC_KEYS);
  const o = withDefaults(FETCH_CORPORA_SPEC, given);
  const sources: readonly CorpusSource[] = o.sources ?? CORPUS_SOURCE_NAMES;
  const wanted: readonly CorpusOutput[] = o.outputs ?? CORPUS_OUTPUTS;
  const fed = new Set(sources.flatMap((s) => CORPUS_SOURCES[s].outputs));
  const outputs = CORPUS_OUTPUTS.filter((x) => wanted.includes(x) && fed.has(x));
  if (outputs.length === 0) throw optionError('outputs', `an output that the sources (${sources.join(', ')}) feed`, wanted, '--only');
  const { heldoutPercent, enManpagesMaxBytes } = o;
  // Only sources that feed a written output count; sorted so the config compares equal across calls.
  const used = (Object.keys(CORPUS_SOURCES) as CorpusSource[]).filter((s) => sources.includes(s) && CORPUS_SOURCES[s].outputs.some((x) => outputs.includes(x)));
  return { outputs, sources: used, heldoutPercent, enManpagesMaxBytes, minLeakChars: MIN_LEAK_CHARS };
}

/**
 * Whether outputs made under `had` are the ones `want` asks for: same parameters, every wanted output
 * present and fed by the same sources (an output depends only on the sources that feed it).
 */
function covers(had: CorpusManifest['config'], want: CorpusManifest['config']): boolean {
  if (had.heldoutPercent !== want.heldoutPercent || had.minLeakChars !== want.minLeakChars || had.enManpagesMaxBytes !== want.enManpagesMaxBytes) return false;
  const feeding = (c: CorpusManifest['config'], o: CorpusOutput) => c.sources.filter((s) => CORPUS_SOURCES[s].outputs.includes(o)).join(',');
  return want.outputs.every((o) => had.outputs.includes(o) && feeding(had, o) === feeding(want, o));
}

/** The manifest, when it covers the configuration and every wanted output is present at its recorded size. */
export function readCurrentManifest(cacheDir: string, config: CorpusManifest['config']): CorpusManifest | undefined {
  const path = join(cacheDir, 'manifest.json');
  if (!existsSync(path)) return undefined;
  let m: CorpusManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as CorpusManifest;
  } catch {
    return undefined;
  }
  if (m.format !== MANIFEST_FORMAT || !m.config || !covers(m.config, config)) return undefined;
  for (const name of outputFiles(config.outputs)) {
    const f = m.files?.[name];
    const st = existsSync(join(cacheDir, name)) ? statSync(join(cacheDir, name)) : undefined;
    if (!f || !st || st.size !== f.bytes) return undefined;
  }
  return m;
}

/**
 * Fetches the Debian packages and writes the corpora into `cacheDir`; returns at once when the manifest
 * there matches the configuration and the outputs are present.
 */
export async function fetchCorpora(options: FetchCorporaOptions = {}): Promise<FetchCorporaResult> {
  const config = resolveConfig(options);
  const cacheDir = resolve(options.cacheDir ?? DEFAULT_CORPUS_CACHE_DIR);
  const log = options.log ?? (() => {});
  const files = Object.fromEntries(outputFiles(config.outputs).map((n) => [n, join(cacheDir, n)]));
  if (!options.force) {
    const current = readCurrentManifest(cacheDir, config);
    if (current) return { cacheDir, cached: true, manifest: current, files };
  }
  mkdirSync(join(cacheDir, 'heldout'), { recursive: true });
  rmSync(join(cacheDir, 'manifest.json'), { force: true });

  // 1–2. packages
  const pkgNames = config.sources.flatMap((s) => CORPUS_SOURCES[s].packages);
  const debs = await downloadDebs(pkgNames, join(cacheDir, 'debs'), log);
  const roots = new Map<string, string>();
  for (const deb of debs) {
    log(`unpack ${deb.package} ${deb.version}`);
    roots.set(deb.package, await extractDeb(deb, join(cacheDir, 'extract')));
  }
  const root = (p: string) => roots.get(p)!;

  // 3. sources → documents
  const notes: string[] = [];
  const want = (o: CorpusOutput) => config.outputs.includes(o);
  const has = (s: CorpusSource) => config.sources.includes(s);
  const ruDocs: CorpusDoc[] = [];
  const enDocs: CorpusDoc[] = [];
  let pairs: CorpusPair[] = [];
  if (has('fortunes-ru')) {
    log('read fortunes-ru');
    ruDocs.push(...(await readFortunes(root('fortunes-ru'), notes)));
  }
  if (has('manpages-ru')) {
    log('read manpages-ru');
    ruDocs.push(...(await readManpages([root('manpages-ru'), root('manpages-ru-dev')], 'usr/share/man/ru', 'ru', notes)));
  }
  if (has('manpages-en')) {
    log('read manpages (English)');
    const all = await readManpages([root('manpages'), root('manpages-dev')], 'usr/share/man', 'en', notes);
    let bytes = 0;
    let taken = 0;
    for (const d of all) {
      if (bytes >= config.enManpagesMaxBytes) break;
      bytes += Buffer.byteLength(d.paragraphs.join('\n'), 'utf8');
      taken++;
    }
    enDocs.push(...all.slice(0, taken));
    notes.push(
      taken < all.length
        ? `manpages-en: capped at ${config.enManpagesMaxBytes} bytes: first ${taken} of ${all.length} pages in path order (up to ${all[taken - 1]?.key})`
        : `manpages-en: all ${all.length} pages, ${bytes} bytes, under the ${config.enManpagesMaxBytes}-byte cap`,
    );
  }
  if (has('libreoffice-help')) {
    log('read LibreOffice help (en-US, ru)');
    const help = await readHelpPages(root('libreoffice-help-en-us'), root('libreoffice-help-ru'));
    notes.push(`libreoffice-help: ${help.pages.en} English pages, ${help.pages.ru} Russian pages, ${help.pages.both} in both`);
    if (want('ru')) ruDocs.push(...help.ru);
    if (want('en')) enDocs.push(...help.en);
    pairs = help.pairs;
  }

  // 4–5. split, leakage filter, order
  const sourceStats: CorpusManifest['sources'] = {};
  const split = (docs: CorpusDoc[], lang: string) => {
    const train: CorpusDoc[] = [];
    const held: CorpusDoc[] = [];
    const stat = (d: CorpusDoc) => (sourceStats[`${d.source} (${lang})`] ??= { train: 0, heldout: 0, trainChars: 0, heldoutChars: 0 });
    const docChars = (d: CorpusDoc) => d.paragraphs.reduce((n, p) => n + codePoints(p), 0);
    for (const d of docs) {
      const h = isHeldOut(d.source, d.key, config.heldoutPercent);
      (h ? held : train).push(d);
      stat(d);
      if (h) {
        stat(d).heldout++;
        stat(d).heldoutChars += docChars(d);
      }
    }
    const heldParas = new Set(held.flatMap((d) => d.paragraphs).filter((p) => p.length >= MIN_LEAK_CHARS));
    let dropped = 0;
    const clean = train
      .map((d) => {
        const paragraphs = d.paragraphs.filter((p) => !heldParas.has(p));
        dropped += d.paragraphs.length - paragraphs.length;
        return { ...d, paragraphs };
      })
      .filter((d) => d.paragraphs.length > 0);
    for (const d of clean) {
      stat(d).train++;
      stat(d).trainChars += docChars(d);
    }
    if (dropped) notes.push(`${lang}: ${dropped} training paragraphs dropped as repeats of held-out ones`);
    return { train: sortByKey(clean, (d) => `${d.source}:${d.key}`), held: sortByKey(held, (d) => `${d.source}:${d.key}`) };
  };

  const written: Record<string, CorpusFileStats> = {};
  const writeDocs = (name: string, docs: CorpusDoc[]) => {
    const w = new CorpusFileWriter(join(cacheDir, name));
    try {
      for (const d of docs) w.writeDocument(d.paragraphs);
    } catch (e) {
      w.abort();
      throw e;
    }
    written[name] = w.commit();
  };
  const writePairs = (name: string, list: CorpusPair[]) => {
    const w = new CorpusFileWriter(join(cacheDir, name));
    try {
      for (const p of list) w.writeRecord({ en: p.en, ru: p.ru, path: p.path, id: p.id }, codePoints(p.en) + codePoints(p.ru));
    } catch (e) {
      w.abort();
      throw e;
    }
    written[name] = w.commit();
  };

  if (want('ru')) {
    const { train, held } = split(ruDocs, 'ru');
    writeDocs('ru.txt', train);
    writeDocs('heldout/ru.txt', held);
  }
  if (want('en')) {
    const { train, held } = split(enDocs, 'en');
    writeDocs('en.txt', train);
    writeDocs('heldout/en.txt', held);
  }
  if (want('pairs')) {
    const held: CorpusPair[] = [];
    const train: CorpusPair[] = [];
    for (const p of pairs) (isHeldOut('libreoffice-help', p.path, config.heldoutPercent) ? held : train).push(p);
    const heldEn = new Set(held.map((p) => p.en));
    const heldRu = new Set(held.map((p) => p.ru));
    const trainClean = train.filter((p) => !heldEn.has(p.en) && !heldRu.has(p.ru));
    const key = (p: CorpusPair) => `libreoffice-help:${p.path}#${p.id}`;
    const heldOut = dedupePairs(sortByKey(held, key));
    const trainOut = dedupePairs(sortByKey(trainClean, key));
    notes.push(
      `pairs: ${pairs.length} translated pairs; held out ${held.length} (${heldOut.length} distinct); training ${train.length}, ` +
        `${train.length - trainClean.length} dropped as sharing a side with a held-out pair, ${trainOut.length} distinct kept`,
    );
    const pairChars = (l: CorpusPair[]) => l.reduce((n, p) => n + codePoints(p.en) + codePoints(p.ru), 0);
    sourceStats['libreoffice-help (pairs)'] = { train: trainOut.length, heldout: heldOut.length, trainChars: pairChars(trainOut), heldoutChars: pairChars(heldOut) };
    writePairs('pairs.jsonl', trainOut);
    writePairs('heldout/pairs.jsonl', heldOut);
  }

  // 6. manifest last: its presence says the outputs are complete.
  const manifest: CorpusManifest = {
    format: MANIFEST_FORMAT,
    config,
    packages: debs.map((d: DebInfo) => ({
      package: d.package,
      version: d.version,
      architecture: d.architecture,
      deb: d.file.slice(cacheDir.length + 1),
      debSha256: createHash('sha256').update(readFileSync(d.file)).digest('hex'),
    })),
    files: Object.fromEntries(Object.keys(files).map((n) => [n, written[n]!])),
    sources: sourceStats,
    notes,
  };
  writeJsonAtomic(join(cacheDir, 'manifest.json'), manifest);
  return { cacheDir, cached: false, manifest, files };
}

function sortByKey<T>(items: T[], key: (t: T) => string): T[] {
  const h = items.map((t) => ({ t, k: createHash('sha1').update(key(t), 'utf8').digest('hex') }));
  h.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return h.map((x) => x.t);
}

function dedupePairs(list: CorpusPair[]): CorpusPair[] {
  const seen = new Set<string>();
  return list.filter((p) => {
    const k = `${p.en}\u0000${p.ru}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
