/**
 * lep's corpus glob syntax in one place: `*` (any run of characters within one path segment), `?` (one
 * character) and `**` (any number of directory levels, including none); a name starting with `.` is
 * matched only by a pattern segment that itself starts with `.`. Used to list corpus files
 * (ts/corpus/listCorpusFiles.ts) and to tell whether an output path could be read back as corpus
 * (ts/util/checkOutputPath.ts), so both agree on what a pattern reaches.
 */
const GLOB_CHARS = /[*?]/;

/** Whether a spec is a glob pattern (contains `*` or `?`). */
export function isGlob(spec: string): boolean {
  return GLOB_CHARS.test(spec);
}

/** A glob cut at its first segment with a wildcard: the fixed root directory and the pattern segments below it. */
export function splitGlob(pattern: string): { root: string; rest: string[] } {
  const segments = pattern.split('/');
  const firstGlob = segments.findIndex((s) => GLOB_CHARS.test(s));
  if (firstGlob < 0) return { root: pattern, rest: [] };
  const base = segments.slice(0, firstGlob).join('/');
  const root = pattern.startsWith('/') && base === '' ? '/' : base === '' ? '.' : base;
  return { root, rest: segments.slice(firstGlob).filter((s) => s !== '' && s !== '.') };
}

const segmentRegExps = new Map<string, RegExp>();

/** Whether one name matches one pattern segment (not `**`), hidden names included in the rule. */
export function segmentMatches(seg: string, name: string): boolean {
  if (name.startsWith('.') && !seg.startsWith('.')) return false;
  let re = segmentRegExps.get(seg);
  if (!re) {
    let src = '';
    for (const ch of seg) {
      if (ch === '*') src += '.*';
      else if (ch === '?') src += '.';
      else src += ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
    }
    segmentRegExps.set(seg, (re = new RegExp(`^${src}$`, 's')));
  }
  return re.test(name);
}

/**
 * Whether the pattern segments `rest` could match the path `path` (segments below the glob's root) or a
 * file below it, for an output that is a `file`, a `folder`, or either (not said). Listing yields files
 * only: a folder is never read as one, and a file has nothing below it. Names below a folder are unknown
 * (an output directory's files are named by the command), so any pattern left once `path` is used up
 * counts as reaching them.
 */
export function globCouldReach(rest: readonly string[], path: readonly string[], kind?: 'file' | 'folder'): boolean {
  if (path.length === 0) {
    // A file: the pattern must end here (a trailing `**` matches zero levels). A folder: a file below it.
    const asFile = rest.every((s) => s === '**');
    const asFolder = rest.length > 0;
    return kind === 'file' ? asFile : kind === 'folder' ? asFolder : asFile || asFolder;
  }
  const [seg, ...tail] = rest;
  if (seg === undefined) return false;
  if (seg === '**') return globCouldReach(tail, path, kind) || (!path[0]!.startsWith('.') && globCouldReach(rest, path.slice(1), kind));
  return segmentMatches(seg, path[0]!) && globCouldReach(tail, path.slice(1), kind);
}
