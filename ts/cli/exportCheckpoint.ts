import { Type } from '@sinclair/typebox';

import { checkOptions, cliFlags, defineOptions, fromFlags, helpLines, JSON_FLAG } from '../options/optionSpec.js';
import { exportCheckpoint, type ExportCheckpointOptions } from '../train/exportCheckpoint.js';
import { EXPORT_CHECKPOINT_SPEC } from '../train/exportCheckpointOptions.js';
import { parse, printJson, required } from './args.js';
import { interruptSignal } from './interrupt.js';

/** The flags of the command itself (not options of exportCheckpoint). */
const CLI_ONLY = defineOptions({
  out: { schema: Type.String({ minLength: 1 }), required: true, arg: 'DIR', doc: 'Output model directory.' },
  json: JSON_FLAG,
});

export const usage = `lep export checkpoint MODEL_DIR CHECKPOINT_DIR --out DIR [options]
  Writes a training checkpoint (lep train's OUT/checkpoints/step-NNNNNNNN, the step zero-padded) as a
  full model directory: MODEL_DIR (the model the run started from) with the checkpoint's trained tensors.
${helpLines({ ...CLI_ONLY, ...EXPORT_CHECKPOINT_SPEC }).join('\n')}
Example: lep export checkpoint base runs/train/checkpoints/step-00000200 --out model-step-200`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { ...cliFlags(CLI_ONLY), ...cliFlags(EXPORT_CHECKPOINT_SPEC) }, usage);
  if (values.help) return void console.log(usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const checkpoint = required(positionals[1], 'CHECKPOINT_DIR', usage);
  const options = fromFlags(EXPORT_CHECKPOINT_SPEC, values) as ExportCheckpointOptions;
  checkOptions(EXPORT_CHECKPOINT_SPEC, options, { kind: 'options' });
  const r = await exportCheckpoint(model, checkpoint, out, { ...options, signal: interruptSignal });
  if (values.json) return printJson({ out, ...r });
  console.log(`${out}: the model at step ${r.step}`);
}
