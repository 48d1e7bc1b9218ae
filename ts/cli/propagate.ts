import type { JobProgress } from '../binding/progress.js';
import { cliFlags, fromFlags, helpLines } from '../options/optionSpec.js';
import { describeMerge } from '../lora/peftAdapter.js';
import { propagate, PROPAGATE_REPORT_FILE, type PropagateOptions } from '../propagate/propagate.js';
import { PROPAGATE_SPEC } from '../propagate/propagateOptions.js';
import { parse, printJson, progressLine, required } from './args.js';
import { jsonProgress, PROGRESS_FLAG } from './progressFlag.js';
import { interruptSignal } from './interrupt.js';

export const usage = `lep propagate --base DIR --donor DIR --instruct DIR [--instruct DIR ...] --out DIR [--out DIR ...] [options]
  Learned Embedding Propagation: carry the donor's embeddings (trained on the base with a new vocabulary)
  into the instruct model; float64 least squares, input and output sides separately.
  Several --instruct (models derived from the same base): one job, the base side solved once; outputs
  OUT/<instruct folder name> with one --out, or one --out per --instruct in the same order. A model that
  fails leaves the ones written before it complete.
  --instruct DIR              (required, repeatable) An instruct model derived from the base.
  --out DIR                   (required, repeatable) Output directory, or one per --instruct.
${helpLines(PROPAGATE_SPEC).join('\n')}
  Writes the model and ${PROPAGATE_REPORT_FILE} (residuals, cosines, timings) into --out.
  --json (print the result as one JSON document on stdout; progress stays on stderr)
${helpLines({ progress: PROGRESS_FLAG }).join('\n')}
Example: lep propagate --base base --donor trained --instruct instruct --out propagated`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    { json: { type: 'boolean' }, ...cliFlags({ progress: PROGRESS_FLAG }), ...cliFlags(PROPAGATE_SPEC), instruct: { type: 'string', multiple: true }, out: { type: 'string', multiple: true } },
    usage,
  );
  if (values.help) return void console.log(usage);
  const bars = new Map<string, (e: JobProgress) => void>();
  const json = jsonProgress('propagate', values.progress);
  const instructs = (values.instruct as string[] | undefined) ?? [];
  const outs = (values.out as string[] | undefined) ?? [];
  required(instructs[0], '--instruct', usage);
  required(outs[0], '--out', usage);
  const many = instructs.length > 1;
  const res = await propagate({
    ...(fromFlags(PROPAGATE_SPEC, values) as Omit<PropagateOptions, 'instruct' | 'out'>),
    instruct: many ? instructs : instructs[0]!,
    out: outs.length === 1 ? outs[0]! : outs,
    signal: interruptSignal,
    onWarning: (w) => (json ? json.warning(w) : console.error(`lep: warning: ${w}`)),
    onProgress: (e) => {
      const target = many && 'target' in e && e.target !== undefined ? `#${e.target + 1} ` : '';
      const label = target + (e.phase === 'write' ? 'write' : `${'side' in e && e.side === 1 ? 'output' : 'input'} ${e.phase}`);
      if (json) return json(label, e.done, e.total);
      if (!bars.has(label)) bars.set(label, progressLine(label.padEnd(18)));
      bars.get(label)!(e);
    },
  });
  if (values.json) return printJson(res);
  const results = 'results' in res ? res.results : [res];
  for (const r of results) {
    if (many) console.log(`${r.instruct}:`);
    for (const s of r.sides)
      console.log(
        `${many ? '  ' : ''}${s.side} (${s.tensor}): residual ${s.residual === null ? '-' : s.residual.toFixed(4)}, overlap cosine ${s.overlapCosine.toFixed(4)} over ${s.overlapRows} tokens, ` +
          `base/instruct correlation ${s.baseInstructCorrelation.toFixed(3)}`,
      );
    console.log(
      `${many ? '  ' : ''}wrote ${r.outDir}: ${r.method}, vocabulary ${r.vocabulary.oldSize} -> ${r.vocabulary.finalSize} tokens (${r.vocabulary.rows} rows, ${r.dtype}), ` +
        `${r.vocabulary.copiedRows} rows copied from the instruct model, ${r.timings.totalSeconds.toFixed(1)} s`,
    );
    // --lora: which adapter went in and at what scale (it was only in propagate_report.json).
    const l = r.lora as (Parameters<typeof describeMerge>[0] & { adapter: string }) | undefined;
    if (l) console.log(`${many ? '  ' : ''}merged the LoRA ${l.adapter} ${describeMerge(l)}`);
  }
  if ('results' in res) console.log(`${results.length} instruct models in ${res.timings.totalSeconds.toFixed(1)} s (shared solve ${res.timings.sharedSeconds.toFixed(1)} s)`);
}
