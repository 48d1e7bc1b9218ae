import { exportCheckpoint } from '../train/exportCheckpoint.js';
import { parse, printJson, required } from './args.js';
import { checkOutputPath } from '../util/checkOutputPath.js';
import { interruptSignal } from './interrupt.js';

export const usage = `lep export checkpoint MODEL_DIR CHECKPOINT_DIR --out DIR [--dtype f32|bf16]
  Writes a training checkpoint (OUT/checkpoints/step-N of lep train) as a full model directory:
  MODEL_DIR (the model the run started from) with the checkpoint's trained tensors.
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep export checkpoint base runs/train/checkpoints/step-200 --out model-step-200`;

export const stopsOnSignal = true;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, out: { type: 'string' }, dtype: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const model = required(positionals[0], 'MODEL_DIR', usage);
  const checkpoint = required(positionals[1], 'CHECKPOINT_DIR', usage);
  checkOutputPath(out, '--out', { MODEL_DIR: model, CHECKPOINT_DIR: checkpoint });
  const r = await exportCheckpoint(model, checkpoint, out, {
    signal: interruptSignal,
    dtype: values.dtype as 'f32' | 'bf16' | undefined,
  });
  if (values.json) return printJson({ out, ...r });
  console.log(`${out}: the model at step ${r.step}`);
}
