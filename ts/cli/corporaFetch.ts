import { FETCH_CORPORA_SPEC, type FetchCorporaOptions } from '../corpus/fetchCorporaOptions.js';
import { fetchCorpora } from '../corpus/fetchDebian.js';
import { LepError } from '../errors.js';
import { cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { parse, printJson } from './args.js';

/** The flags of the command itself (not options of fetchCorpora). */
const CLI_ONLY = defineOptions({ json: JSON_FLAG });

export const usage = `lep corpora fetch [--out DIR] [options]
  Fetches lep's Russian, English and EN<->RU corpora from Debian packages (apt-get download + dpkg -x, no
  installation; the Debian archive must be reachable) into DIR, with held-out splits and a manifest:
  DIR/ru.txt, en.txt, pairs.jsonl and heldout/ (what lep eval --corpora, the built-in suites and
  calibrate's built-in prompts read). A second run with the outputs current returns at once.
${helpLines({ ...FETCH_CORPORA_SPEC, ...CLI_ONLY }).join('\n')}
Example: lep corpora fetch --only ru --out corpora`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(FETCH_CORPORA_SPEC), ...cliFlags(CLI_ONLY) }, usage);
  if (values.help) return void console.log(usage);
  if (positionals.length) throw new LepError('LEP_BAD_OPTION', `unexpected argument ${positionals[0]}: the folder is --out DIR\n\n${usage}`);
  const t0 = performance.now();
  const result = await fetchCorpora({
    ...(fromFlags(FETCH_CORPORA_SPEC, values) as FetchCorporaOptions),
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
