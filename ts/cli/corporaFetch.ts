import { fetchCorpora, type CorpusOutput, type CorpusSource } from '../corpus/fetchDebian.js';
import { LepError } from '../errors.js';
import { numFlag, parse, printJson } from './args.js';

export const usage = `lep corpora fetch [--out DIR] [options]
  Fetches lep's Russian, English and EN<->RU corpora from Debian packages (apt-get download + dpkg -x, no
  installation; the Debian archive must be reachable) into DIR, with held-out splits and a manifest:
  DIR/ru.txt, en.txt, pairs.jsonl and heldout/ (what lep eval --corpora, the built-in suites and
  calibrate's built-in prompts read). A second run with the outputs current returns at once.
  --out DIR                   Where the corpora go. (default .cache/corpora, where lep eval looks)
  --only LIST                 Outputs to write, comma-separated, of ru, en, pairs. (default all)
  --sources LIST              Sources, comma-separated, of fortunes-ru, manpages-ru, manpages-en, libreoffice-help. (default all)
  --heldout-percent N         Share of documents held out, in percent. (default 5)
  --en-manpages-max-bytes N   Cap on the UTF-8 bytes of English man-page text. (default 8388608)
  --force                     Rebuild the outputs even when current (downloads stay cached).
  --json                      Print the result (files, manifest) as one JSON document on stdout.
Example: lep corpora fetch --only ru --out corpora`;

const list = (v: unknown): string[] | undefined =>
  v === undefined ? undefined : (v as string[]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      out: { type: 'string' },
      only: { type: 'string', multiple: true },
      sources: { type: 'string', multiple: true },
      'heldout-percent': { type: 'string' },
      'en-manpages-max-bytes': { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (positionals.length) throw new LepError('LEP_BAD_OPTION', `unexpected argument ${positionals[0]}: the folder is --out DIR\n\n${usage}`);
  const t0 = performance.now();
  const result = await fetchCorpora({
    cacheDir: values.out as string | undefined,
    outputs: list(values.only) as CorpusOutput[] | undefined,
    sources: list(values.sources) as CorpusSource[] | undefined,
    heldoutPercent: numFlag(values['heldout-percent'], '--heldout-percent'),
    enManpagesMaxBytes: numFlag(values['en-manpages-max-bytes'], '--en-manpages-max-bytes'),
    force: values.force as boolean | undefined,
    log: (m) => console.error(`lep corpora fetch: ${m}`),
  });
  const seconds = (performance.now() - t0) / 1000;
  if (values.json) return printJson({ ...result, seconds });
  const m = result.manifest;
  console.log(`${result.cached ? 'cached' : 'written'}: ${result.cacheDir} (${seconds.toFixed(1)} s)`);
  console.log(`packages: ${m.packages.map((p) => `${p.package} ${p.version}`).join(', ')}`);
  const rows = Object.entries(m.files).map(([name, f]) => [name, f.documents, f.paragraphs, f.chars, f.bytes]);
  const head = ['file', 'docs', 'paragraphs', 'characters', 'bytes'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const fmt = (r: (string | number)[]) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ');
  console.log(fmt(head));
  for (const r of rows) console.log(fmt(r as (string | number)[]));
  for (const n of m.notes) console.log(`note: ${n}`);
}
