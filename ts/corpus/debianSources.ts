/**
 * Readers of the unpacked Debian packages: each turns one package layout into documents of
 * clean paragraphs, keyed by a stable name for the held-out split.
 *
 * - fortunes-ru: `usr/share/games/fortunes/ru/*` (not `*.dat` indexes nor `*.u8` links); one item, one
 *   document; key `FILE#N`.
 * - man pages: `usr/share/man[/ru]/man*\/*.gz` (links — aliases — skipped); one page, one document; key
 *   `man1/ls.1`.
 * - LibreOffice help: `usr/share/libreoffice/help/{en-US,ru}/text/**\/*.html`; one page, one document;
 *   key: the page path `text/…/x.html`; pairs by page path + element id.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip as gunzipCb } from 'node:zlib';

import { fortunesToDocs } from './fortunesToDocs.js';
import { helpHtmlToParagraphs } from './helpHtmlToParagraphs.js';
import { troffToParagraphs } from './troffToText.js';

const gunzip = promisify(gunzipCb);

export interface CorpusDoc {
  /** The source name (`fortunes-ru`, `manpages-ru`, `manpages-en`, `libreoffice-help`). */
  source: string;
  /** Stable name of the document within its source. */
  key: string;
  paragraphs: string[];
}

export interface CorpusPair {
  en: string;
  ru: string;
  /** Page path relative to the language folder, e.g. `text/shared/optionen/01020000.html`. */
  path: string;
  /** The element id shared by both languages. */
  id: string;
}

const CYRILLIC = /\p{Script=Cyrillic}/u;
const LATIN_LETTERS = /\p{Script=Latin}/gu;
const LETTER = /\p{L}/u;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes UTF-8, or KOI8-R when the bytes are not UTF-8 (old Russian files); notes each conversion. */
function decodeRussian(bytes: Uint8Array, name: string, notes: string[]): string {
  try {
    return utf8.decode(bytes);
  } catch {
    notes.push(`${name}: not UTF-8, decoded as KOI8-R`);
    return new TextDecoder('koi8-r').decode(bytes);
  }
}

function byName(a: Dirent, b: Dirent): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** fortunes-ru: one document per item; items without a Cyrillic letter are dropped (counted in notes). */
export async function readFortunes(root: string, notes: string[]): Promise<CorpusDoc[]> {
  const dir = join(root, 'usr/share/games/fortunes/ru');
  const docs: CorpusDoc[] = [];
  let dropped = 0;
  for (const e of (await readdir(dir, { withFileTypes: true })).sort(byName)) {
    if (!e.isFile() || e.name.endsWith('.dat') || e.name.endsWith('.u8')) continue;
    const text = decodeRussian(await readFile(join(dir, e.name)), `fortunes-ru/${e.name}`, notes);
    fortunesToDocs(text).forEach((paragraphs, i) => {
      if (!paragraphs.some((p) => CYRILLIC.test(p))) dropped++;
      else docs.push({ source: 'fortunes-ru', key: `${e.name}#${i}`, paragraphs });
    });
  }
  if (dropped) notes.push(`fortunes-ru: ${dropped} items without Cyrillic letters dropped`);
  return docs;
}

/**
 * Man pages of one language from several unpacked packages, merged and sorted by key. `manDir` is
 * `usr/share/man` (English) or `usr/share/man/ru`. For Russian, a paragraph with no Cyrillic letter and
 * 20 or more Latin letters (an untranslated English sentence, or code) is dropped, and so is a page left
 * with no Cyrillic; the closing ПЕРЕВОД section (translator credits, the same on every page) is cut.
 */
export async function readManpages(roots: readonly string[], manDir: string, lang: 'en' | 'ru', notes: string[]): Promise<CorpusDoc[]> {
  const source = `manpages-${lang}`;
  const pages = new Map<string, string>();
  for (const root of roots) {
    const base = join(root, manDir);
    const sections = (await readdir(base, { withFileTypes: true }).catch(() => [] as Dirent[])).filter((d) => d.isDirectory() && /^man\w+$/.test(d.name));
    for (const s of sections.sort(byName)) {
      for (const f of (await readdir(join(base, s.name), { withFileTypes: true })).sort(byName)) {
        if (!f.isFile()) continue; // links are aliases of other pages
        const key = `${s.name}/${f.name.replace(/\.gz$/, '')}`;
        if (!pages.has(key)) pages.set(key, join(base, s.name, f.name));
      }
    }
  }
  const docs: CorpusDoc[] = [];
  let droppedParas = 0;
  let droppedPages = 0;
  for (const key of [...pages.keys()].sort()) {
    const file = pages.get(key)!;
    let bytes: Uint8Array = await readFile(file);
    if (file.endsWith('.gz')) bytes = await gunzip(bytes);
    const text = lang === 'ru' ? decodeRussian(bytes, `${source}/${key}`, notes) : decodeEnglish(bytes, `${source}/${key}`, notes);
    let paragraphs = troffToParagraphs(text).map((p) => p.normalize('NFC'));
    if (lang === 'ru') {
      // The last section, ПЕРЕВОД, is the same translator credits and licence text on every page.
      const credits = paragraphs.indexOf('ПЕРЕВОД');
      if (credits >= 0) paragraphs = paragraphs.slice(0, credits);
      const before = paragraphs.length;
      paragraphs = paragraphs.filter((p) => CYRILLIC.test(p) || (p.match(LATIN_LETTERS)?.length ?? 0) < 20);
      droppedParas += before - paragraphs.length;
      if (!paragraphs.some((p) => CYRILLIC.test(p))) {
        if (paragraphs.length) droppedPages++;
        continue;
      }
    }
    paragraphs = paragraphs.filter((p) => LETTER.test(p));
    if (paragraphs.length) docs.push({ source, key, paragraphs });
  }
  if (droppedParas) notes.push(`${source}: ${droppedParas} untranslated (Latin-only) paragraphs dropped`);
  if (droppedPages) notes.push(`${source}: ${droppedPages} pages without Cyrillic text dropped`);
  return docs;
}

function decodeEnglish(bytes: Uint8Array, name: string, notes: string[]): string {
  try {
    return utf8.decode(bytes);
  } catch {
    notes.push(`${name}: not UTF-8, decoded as ISO-8859-1`);
    return new TextDecoder('latin1').decode(bytes);
  }
}

/** Relative paths of every `.html` below `dir`, sorted. */
async function htmlFiles(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await readdir(join(dir, rel), { withFileTypes: true })).sort(byName)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await htmlFiles(dir, p)));
    else if (e.isFile() && e.name.endsWith('.html')) out.push(p);
  }
  return out;
}

export interface HelpCorpus {
  en: CorpusDoc[];
  ru: CorpusDoc[];
  pairs: CorpusPair[];
  pages: { en: number; ru: number; both: number };
}

/**
 * LibreOffice help in both languages. English documents: every id'd paragraph with a letter. Russian
 * documents: paragraphs with a Cyrillic letter that differ from the English paragraph of the same id
 * (untranslated strings are left in English in the Russian pages). Pairs: ids present in both versions
 * of a page whose Russian text has Cyrillic and differs from the English.
 */
export async function readHelpPages(enRoot: string, ruRoot: string): Promise<HelpCorpus> {
  const enDir = join(enRoot, 'usr/share/libreoffice/help/en-US');
  const ruDir = join(ruRoot, 'usr/share/libreoffice/help/ru');
  const enPages = await htmlFiles(join(enDir, 'text')).then((l) => l.map((p) => `text/${p}`));
  const ruPages = await htmlFiles(join(ruDir, 'text')).then((l) => l.map((p) => `text/${p}`));
  const ruSet = new Set(ruPages);
  const enSet = new Set(enPages);
  const all = [...new Set([...enPages, ...ruPages])].sort();
  const out: HelpCorpus = { en: [], ru: [], pairs: [], pages: { en: enPages.length, ru: ruPages.length, both: enPages.filter((p) => ruSet.has(p)).length } };
  for (const path of all) {
    const en = enSet.has(path) ? helpHtmlToParagraphs(await readFile(join(enDir, path), 'utf8')) : [];
    const ru = ruSet.has(path) ? helpHtmlToParagraphs(await readFile(join(ruDir, path), 'utf8')) : [];
    const enById = new Map(en.map((p) => [p.id, p.text]));
    const enParas = en.map((p) => p.text).filter((t) => LETTER.test(t));
    if (enParas.length) out.en.push({ source: 'libreoffice-help', key: path, paragraphs: enParas });
    const ruParas = ru.filter((p) => CYRILLIC.test(p.text) && enById.get(p.id) !== p.text);
    if (ruParas.length) out.ru.push({ source: 'libreoffice-help', key: path, paragraphs: ruParas.map((p) => p.text) });
    for (const p of ruParas) {
      const e = enById.get(p.id);
      if (e !== undefined && LETTER.test(e)) out.pairs.push({ en: e, ru: p.text, path, id: p.id });
    }
  }
  return out;
}
