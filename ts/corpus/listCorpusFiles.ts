/**
 * Corpus specs to files: a spec is a file, a directory (every non-hidden file below it, recursively) or
 * a glob with `*` (any run of characters within one path segment), `?` (one character) and `**` (any
 * number of directory levels, including none). Node 20 has no `fs.promises.glob`, hence this small one.
 *
 * Every expansion is sorted by path (code-unit order), so the same tree always yields the same order.
 * Names starting with `.` are matched only by a pattern segment that itself starts with `.`; directory
 * links are not followed while walking (no cycles), file links are.
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { LepError } from '../errors.js';
import { isGlob, segmentMatches, splitGlob } from '../util/globPattern.js';

/**
 * The files a list of specs names, in spec order, each spec's files sorted; a file named twice is
 * listed once. Throws `LEP_CORPUS_NOT_FOUND` naming the spec when one names nothing.
 */
export async function listCorpusFiles(specs: string | readonly string[]): Promise<string[]> {
  const list = typeof specs === 'string' ? [specs] : specs;
  if (list.length === 0) throw notFound('(no corpus given)', 'no corpus spec was given');
  const seen = new Set<string>();
  const out: string[] = [];
  for (const spec of list) {
    for (const f of await expandSpec(spec)) {
      if (!seen.has(f)) {
        seen.add(f);
        out.push(f);
      }
    }
  }
  return out;
}

async function expandSpec(spec: string): Promise<string[]> {
  if (typeof spec !== 'string' || spec === '') throw notFound(String(spec), 'an empty corpus spec names no file');
  if (isGlob(spec)) {
    const files = await globFiles(spec);
    if (files.length === 0) throw notFound(spec, `corpus glob "${spec}" matched no files`);
    return files;
  }
  const st = await stat(spec).catch(() => undefined);
  if (!st) throw notFound(spec, `corpus file "${spec}" does not exist`);
  if (st.isDirectory()) {
    const files = await walkDir(spec);
    if (files.length === 0) throw notFound(spec, `corpus directory "${spec}" holds no files`);
    return files;
  }
  return [spec];
}

function notFound(spec: string, message: string): LepError {
  const err = new LepError('LEP_CORPUS_NOT_FOUND', `${message}\nHINT: give a file, a directory or a glob such as "data/**/*.txt" (quote it so the shell leaves it alone)`);
  (err as LepError & { spec: string }).spec = spec;
  return err;
}

/** Every non-hidden file below `dir`, sorted; directory links are not followed. */
async function walkDir(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => cmp(a.name, b.name));
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkDir(p)));
    else if (e.isFile() || (e.isSymbolicLink() && (await isFile(p)))) out.push(p);
  }
  return out;
}

async function isFile(p: string): Promise<boolean> {
  const st = await stat(p).catch(() => undefined);
  return st?.isFile() ?? false;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Files matching a glob, sorted by path. The part before the first segment with a wildcard is the root. */
async function globFiles(pattern: string): Promise<string[]> {
  const { root, rest } = splitGlob(pattern);
  if (!(await isDir(root))) return [];
  const out: string[] = [];
  await matchFrom(root, rest, out);
  // `**/x` can reach one file along two routes; keep one, in sorted order.
  return [...new Set(out)].sort(cmp);
}

async function matchFrom(dir: string, rest: string[], out: string[]): Promise<void> {
  const [seg, ...tail] = rest;
  if (seg === undefined) return;
  if (seg === '**') {
    if (tail.length === 0) {
      out.push(...(await walkDir(dir)));
      return;
    }
    // zero levels: the rest matches here; one or more: descend and keep `**`.
    await matchFrom(dir, tail, out);
    for (const e of await entriesOf(dir)) {
      if (!e.name.startsWith('.') && e.isDirectory()) await matchFrom(join(dir, e.name), rest, out);
    }
    return;
  }
  for (const e of await entriesOf(dir)) {
    if (!segmentMatches(seg, e.name)) continue;
    const p = join(dir, e.name);
    if (tail.length === 0) {
      if (e.isFile() || (e.isSymbolicLink() && (await isFile(p)))) out.push(p);
    } else if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(p)))) {
      await matchFrom(p, tail, out);
    }
  }
}

async function entriesOf(dir: string): Promise<Dirent[]> {
  return readdir(dir, { withFileTypes: true }).catch(() => []);
}

async function isDir(p: string): Promise<boolean> {
  const st = await stat(p).catch(() => undefined);
  return st?.isDirectory() ?? false;
}
