import { LepError } from '../errors.js';
import type { InitRule, OutputRule } from '../init/buildInitPlan.js';
import { initEmbeddings, type SolveDtype } from '../init/initEmbeddings.js';
import { deviceFlag, intFlag, parse, printJson, progressLine, required } from './args.js';
import { interruptSignal } from './interrupt.js';

export const usage = `lep init MODEL_DIR --tokenizer DIR --out DIR [options]
  Resize MODEL_DIR's embeddings to the tokenizer in DIR (BPE, Unigram, Extended, or Optimized with its
  id_map.json): each new token's input and output rows are the mean of its old sub-tokens' rows
  (docs/method.md §2); common tokens and specials are copied. Writes init_provenance.json and manifest.json.
  --rule mean|random|global-mean|omp|focus
                                    rows of new tokens (default mean); omp and focus need --aux-model
  --aux-model DIR                   omp/focus: a model whose tokenizer has the new tokens (mergekit's
                                    "donor"); each new row combines shared tokens' rows with weights
                                    found in its embedding space
  --omp-k N                         omp: shared tokens per new token (default 64)
  --solve-dtype float32|float64     omp/focus: dtype of the donor-space solve (default float32)
  --device cpu|cuda[:N]             omp/focus: where the solve runs (default cpu)
  --output-rule mean|first          lm_head rows of new tokens: mean, or the first sub-token's row (default mean)
  --seed N                          seed of --rule random (default 0)
  --pad-to-multiple-of N            pad rows and config vocab_size to a multiple of N (default 1)
  --id-map FILE | --no-id-map       Optimized id map (default: DIR/id_map.json when present)
  --copy-row NEW=OLD                the new token NEW takes the old token OLD's row (repeatable)
  --old-tokenizer DIR               the model's own tokenizer, if not in MODEL_DIR
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep init base --tokenizer extended-tokenizer --out initialised`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    { json: { type: 'boolean' },
      tokenizer: { type: 'string' }, out: { type: 'string' }, rule: { type: 'string' }, 'output-rule': { type: 'string' },
      seed: { type: 'string' }, 'pad-to-multiple-of': { type: 'string' }, 'id-map': { type: 'string' }, 'no-id-map': { type: 'boolean' },
      'copy-row': { type: 'string', multiple: true }, 'old-tokenizer': { type: 'string' },
      'aux-model': { type: 'string' }, 'omp-k': { type: 'string' }, 'solve-dtype': { type: 'string' }, device: { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const tokenizer = required(values.tokenizer as string | undefined, '--tokenizer', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const copyRows: Record<string, string> = {};
  for (const spec of (values['copy-row'] as unknown as string[] | undefined) ?? []) {
    const at = spec.indexOf('=');
    if (at <= 0 || at === spec.length - 1) throw new LepError('LEP_BAD_OPTION', `Expected NEW=OLD for --copy-row but received ${JSON.stringify(spec)}`);
    copyRows[spec.slice(0, at)] = spec.slice(at + 1);
  }
  const bar = progressLine('init');
  const r = await initEmbeddings(model, tokenizer, out, {
    rule: values.rule as InitRule | undefined,
    auxModel: values['aux-model'] as string | undefined,
    ompK: intFlag(values['omp-k'], '--omp-k'),
    solveDtype: values['solve-dtype'] as SolveDtype | undefined,
    device: deviceFlag(values.device),
    outputRule: values['output-rule'] as OutputRule | undefined,
    seed: intFlag(values.seed, '--seed'),
    padToMultipleOf: intFlag(values['pad-to-multiple-of'], '--pad-to-multiple-of'),
    idMap: values['no-id-map'] ? false : (values['id-map'] as string | undefined),
    copyRows,
    oldTokenizerDir: values['old-tokenizer'] as string | undefined,
    onProgress: (e) => bar(e),
    onWarning: (w) => console.error(`lep init: warning: ${w}`),
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
  for (const d of r.droppedSpecialIds) console.error(`lep init: warning: ${d} is not in the new tokenizer; removed`);
}
