/**
 * Streaming corpus input for tokenizer training and data packing.
 *
 *   1. specs → files (`listCorpusFiles`: files, directories, `*`/`**` globs; sorted, deterministic);
 *   2. files → lines (`readLineBatches`: plain or `.gz`, strict UTF-8, one chunk in memory at a time);
 *   3. JSONL files → the text field of each record;
 *   4. lines → normalised (NFC/NFKC) → filtered by script;
 *   5. items: lines, or documents (blank-line separated blocks; one JSONL record is one document);
 *   6. caps: stop after `maxItems` items or `maxChars` characters.
 *
 * Nothing holds more than one read chunk (1 MiB) and one document; a multi-gigabyte corpus streams.
 * Throughput is about 60 MB/s of Russian text on one core, most of it UTF-8 decoding.
 */
import { LepError } from '../errors.js';
import { checkOptions, defaultsOf, withDefaults, type OptionsOf } from '../options/optionSpec.js';
import { listCorpusFiles } from './listCorpusFiles.js';
import { readLineBatches, type LineBatch } from './readLineBatches.js';
import { scriptFilter, type LineFilter } from './scriptFilter.js';
import { CORPUS_FORMATS, CORPUS_MODES, CORPUS_NORMALIZATIONS, READ_TEXTS_SPEC } from './readTextsOptions.js';

export type CorpusMode = (typeof CORPUS_MODES)[number];
export type CorpusFormat = (typeof CORPUS_FORMATS)[number];
export type CorpusNormalization = (typeof CORPUS_NORMALIZATIONS)[number];

/** The defaults of READ_TEXTS_SPEC (readTextsOptions.ts). */
export const READ_TEXTS_DEFAULTS = defaultsOf(READ_TEXTS_SPEC);

/** Options of `readTexts`: READ_TEXTS_SPEC (readTextsOptions.ts) gives each one's type, bounds, default and doc. */
export type ReadTextsOptions = OptionsOf<typeof READ_TEXTS_SPEC> & {
  /** Aborts reading between lines with the signal's reason. Defaults to none. */
  signal?: AbortSignal;
  /** Called as each file is opened. Defaults to none. */
  onFile?: (event: { file: string; index: number; files: number }) => void;
};

interface Resolved {
  mode: CorpusMode;
  format: CorpusFormat;
  textField: string[];
  normalize: CorpusNormalization;
  filter: LineFilter | undefined;
  maxItems: number;
  maxChars: number;
  maxItemChars: number;
}

/** The keys of ReadTextsOptions that are not options of the spec. */
const READ_NON_SPEC_KEYS = ['signal', 'onFile'];

/** Checks options once, before any file is opened, against READ_TEXTS_SPEC; each message names the option and its CLI flag. */
export function resolveReadTextsOptions(options: ReadTextsOptions = {}): Resolved {
  checkOptions(READ_TEXTS_SPEC, options, { kind: 'options' }, READ_NON_SPEC_KEYS);
  const o = withDefaults(READ_TEXTS_SPEC, options);
  return {
    mode: o.mode,
    format: o.format,
    textField: o.textField.split('.'),
    normalize: o.normalize,
    // The script name is checked by the filter (a Unicode script the regex engine knows).
    filter: o.script === undefined ? undefined : scriptFilter(o.script, o.scriptShare),
    maxItems: o.maxItems,
    maxChars: o.maxChars,
    maxItemChars: o.maxItemChars,
  };
}

/** `text` in consecutive pieces of at most `limit` characters, cut after a line break or space near the limit. */
export function* boundedPieces(text: string, limit: number): Generator<string> {
  let start = 0;
  while (text.length - start > limit) {
    let cut = start + limit;
    const nl = text.lastIndexOf('\n', cut - 1);
    const sp = text.lastIndexOf(' ', cut - 1);
    const near = start + Math.floor(limit / 2);
    if (nl >= near) cut = nl + 1;
    else if (sp >= near) cut = sp + 1;
    else if (/[\ud800-\udbff]/.test(text[cut - 1]!)) cut--;  // never split a surrogate pair
    yield text.slice(start, cut);
    start = cut;
  }
  if (start < text.length) yield text.slice(start);
}

/**
 * Streams the texts of a corpus: the lines or documents of every file the specs name, in order.
 * Throws `LEP_CORPUS_NOT_FOUND` for a spec naming nothing, `LEP_CORPUS_BAD_UTF8` / `LEP_CORPUS_BAD_JSONL`
 * with file and line, and `LEP_CORPUS_EMPTY` when the whole corpus yields nothing (after filters).
 */
export async function* readTexts(spec: string | readonly string[], options: ReadTextsOptions = {}): AsyncGenerator<string> {
  const o = resolveReadTextsOptions(options);
  const files = await listCorpusFiles(spec);
  let items = 0;
  let chars = 0;
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    options.onFile?.({ file, index: i, files: files.length });
    const jsonl = o.format === 'jsonl' || (o.format === 'auto' && /\.(jsonl|ndjson)(\.gz)?$/i.test(file));
    const source = jsonl ? jsonlItems(file, o) : textItems(o);
    const batches = readLineBatches(file, options.signal);
    try {
      // One await per read chunk; the items of a chunk come from a synchronous generator.
      for (let b = await batches.next(); ; b = await batches.next()) {
        for (const whole of b.done ? source.end() : source.push(b.value))
        for (const item of boundedPieces(whole, o.maxItemChars)) {
          yield item;
          options.signal?.throwIfAborted();
          items++;
          chars += item.length;
          if ((o.maxItems > 0 && items >= o.maxItems) || (o.maxChars > 0 && chars >= o.maxChars)) return;
        }
        if (b.done) break;
      }
    } finally {
      // Closes the file when the caller stops early, a cap is reached or an error is thrown.
      await batches.return(undefined);
    }
  }
  if (items === 0) {
    const filtered = o.filter ? ` after the script filter (--script ${options.script})` : '';
    throw new LepError(
      'LEP_CORPUS_EMPTY',
      `corpus ${describeSpec(spec)} (${files.length} file${files.length === 1 ? '' : 's'}) yielded no text${filtered}\n` +
        'HINT: check that the files hold text' + (o.filter ? ' in that script' : '') + (o.format !== 'text' ? ' and, for JSONL, the --text-field' : ''),
    );
  }
}

function describeSpec(spec: string | readonly string[]): string {
  return typeof spec === 'string' ? `"${spec}"` : spec.map((s) => `"${s}"`).join(', ');
}

function prepare(line: string, o: Resolved): string | undefined {
  if (o.normalize !== 'none') line = line.normalize(o.normalize);
  if (line.trim() === '') return undefined;
  if (o.filter && !o.filter(line)) return undefined;
  return line;
}

/** Turns a file's line batches into items; `end` flushes what is left when the file ends. */
interface ItemSource {
  push(batch: LineBatch): Iterable<string>;
  end(): Iterable<string>;
}

/** Lines or blank-line separated documents of a plain text file. */
function textItems(o: Resolved): ItemSource {
  let doc: string[] = [];
  let docChars = 0;
  return {
    *push({ lines }) {
      for (const raw of lines) {
        if (o.mode === 'line') {
          const line = prepare(raw, o);
          if (line !== undefined) yield line;
        } else if (raw.trim() === '') {
          if (doc.length) yield doc.join('\n');
          doc = [];
          docChars = 0;
        } else {
          const line = prepare(raw, o);
          if (line === undefined) continue;
          // A document without blank lines must not grow without bound: flush it at the item bound.
          if (doc.length && docChars + line.length > o.maxItemChars) {
            yield doc.join('\n');
            doc = [];
            docChars = 0;
          }
          doc.push(line);
          docChars += line.length + 1;
        }
      }
    },
    *end() {
      if (doc.length) yield doc.join('\n');
      doc = [];
    },
  };
}

/** The text field of each JSONL record: its lines (line mode) or the record as one document. */
function jsonlItems(file: string, o: Resolved): ItemSource {
  return {
    *push({ lines, first }) {
      for (let i = 0; i < lines.length; i++) {
        const raw = lines[i]!;
        if (raw.trim() === '') continue;
        const lineNo = first + i;
        let record: unknown;
        try {
          record = JSON.parse(raw);
        } catch (e) {
          throw new LepError('LEP_CORPUS_BAD_JSONL', `${file}:${lineNo}: not valid JSON (${(e as Error).message})\nHINT: a JSONL file holds one JSON object per line`);
        }
        const text = fieldOf(record, o.textField);
        if (typeof text !== 'string') throw badField(file, lineNo, record, text, o.textField);
        const kept: string[] = [];
        for (const l of text.split('\n')) {
          const line = prepare(l.endsWith('\r') ? l.slice(0, -1) : l, o);
          if (line === undefined) continue;
          if (o.mode === 'line') yield line;
          else kept.push(line);
        }
        if (o.mode === 'document' && kept.length) yield kept.join('\n');
      }
    },
    *end() {},
  };
}

function badField(file: string, lineNo: number, record: unknown, value: unknown, field: string[]): LepError {
  const keys = record !== null && typeof record === 'object' && !Array.isArray(record) ? Object.keys(record).slice(0, 10) : [];
  const found =
    value === undefined
      ? `the record has none${keys.length ? ` (it has ${keys.map((k) => `"${k}"`).join(', ')})` : ''}`
      : `found ${JSON.stringify(value)?.slice(0, 40)}`;
  return new LepError('LEP_CORPUS_BAD_JSONL', `${file}:${lineNo}: expected a string field "${field.join('.')}" but ${found}\nHINT: name the field with --text-field`);
}

function fieldOf(record: unknown, path: string[]): unknown {
  let v = record;
  for (const key of path) {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}
