import { Type } from '@sinclair/typebox';

import { LepError } from '../errors.js';
import { initEmbeddings, type InitEmbeddingsOptions } from '../init/initEmbeddings.js';
import { INIT_SPEC } from '../init/initOptions.js';
import { cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { parse, printJson, progressLine, required } from './args.js';
import { interruptSignal } from './interrupt.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';

/** The flags of the command itself (not options of initEmbeddings). */
const CLI_ONLY = defineOptions({
  tokenizer: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'The new tokenizer (BPE, Unigram, Extended, or Optimized with its id_map.json).' },
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output model directory.' },
  noIdMap: { schema: Type.Boolean(), doc: 'Ignore DIR/id_map.json.' },
  // Repeatable: parsed below as a list (parseArgs' multiple), not through fromFlags.
  copyRow: { schema: Type.String(), arg: 'NEW=OLD', doc: "(repeatable) The new token NEW takes the old token OLD's row." },
  json: JSON_FLAG,
  progress: PROGRESS_FLAG,
});

export const usage = `lep init MODEL_DIR --tokenizer DIR --out DIR [options]
  Resize MODEL_DIR's embeddings to the tokenizer in DIR (BPE, Unigram, Extended, or Optimized with its
  id_map.json): each new token's input and output rows are the mean of its old sub-tokens' rows
  (docs/method.md §2); common tokens and specials are copied. Writes init_provenance.json and manifest.json.
${helpLines({ ...CLI_ONLY, ...INIT_SPEC }).join('\n')}
Example: lep init base --tokenizer extended-tokenizer --out initialised`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { ...cliFlags(CLI_ONLY), ...cliFlags(INIT_SPEC), 'copy-row': { type: 'string', multiple: true } },
    usage,
  );
  if (values.help) return void console.log(usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const tokenizer = required(values.tokenizer as string | undefined, '--tokenizer', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const copyRows: Record<string, string> = {};
  for (const spec of (values['copy-row'] as unknown as string[] | undefined) ?? []) {
    const at = spec.indexOf('=');
    if (at <= 0 || at === spec.length - 1) throw new LepError('LEP_BAD_OPTION', `Expected NEW=OLD for --copy-row but received ${JSON.stringify(spec)}\nHINT: --copy-row NEW=OLD gives the new token NEW the old token OLD's row, e.g. --copy-row '<|im_start|>=<s>'.`);
    copyRows[spec.slice(0, at)] = spec.slice(at + 1);
  }
  const json = jsonProgress('init', values.progress);
  const bar = progressLine('init');
  const r = await initEmbeddings(model, tokenizer, out, {
    ...(fromFlags(INIT_SPEC, values) as InitEmbeddingsOptions),
    ...(values['no-id-map'] ? { idMap: false } : {}),
    copyRows,
    onProgress: (e) => (json ? json(e.phase, e.done, e.total) : bar(e)),
    onWarning: (w) => (json ? json.warning(w) : console.error(`lep init: warning: ${w}`)),
    signal: interruptSignal,
  });
  if (values.json) return printJson(r);
  const counts = Object.entries(r.counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
  const zero = r.output ? `${r.input.zeroRows}/${r.output.zeroRows}` : `${r.input.zeroRows}`;
  console.log(
    `wrote ${r.outDir}: ${r.oldSize} -> ${r.newSize} tokens, ${r.rows} rows (${counts}); ` +
      `never-trained old rows (input/output) ${zero}, fell back to the global mean ${r.input.fallbackRows}${r.output ? `/${r.output.fallbackRows}` : ''}; ` +
      `provenance in init_provenance.json; ${r.seconds.toFixed(1)} s`,
  );
  for (const [name, s] of [['input', r.input], ['output', r.output]] as const)
    if (s?.donor)
      console.log(
        `${name} side: ${s.donor.rows} rows from the auxiliary model over ${s.donor.atoms} shared tokens` +
          (values.rule === 'omp' ? `, relative residual in its space mean ${s.donor.meanResidual.toFixed(3)} max ${s.donor.maxResidual.toFixed(3)}` : '') +
          (s.donor.keptMean ? `; ${s.donor.keptMean} kept the mean (their row there is all zero)` : ''),
      );
  for (const d of r.droppedSpecialIds) {
    const w = `${d} is not in the new tokenizer; removed`;
    if (json) json.warning(w);
    else console.error(`lep init: warning: ${w}`);
  }
}
