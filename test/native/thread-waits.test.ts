/**
 * Thread waits (ts/binding/threadWaits.ts, cpp/core/runtime.h short_thread_waits): with lep's defaults a
 * float32 CPU training job runs libtorch's pool at the BLAS thread count too, and says so in its result
 * and `lep info`; with the user's OMP_WAIT_POLICY=active (workers spin for long) the pool stays at 1. Both
 * ways train to the same loss.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { lepInfo, setThreads } from '../../ts/index.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel, type TrainResult } from '../../ts/train/trainModel.js';
import { tempDir, tinyModel } from '../helpers.js';

const run = promisify(execFile);
const LEP = join(import.meta.dirname, '..', '..', 'ts', 'cli', 'main.js');

/** Seeded token ids: 8 blocks of 33 tokens. */
function blocks(): number[][] {
  let s = 11;
  return Array.from({ length: 8 }, () => Array.from({ length: 33 }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 32000));
}

test('lep info and a float32 training job: short waits give libtorch\'s pool the threads; OMP_WAIT_POLICY=active keeps it at 1', async (t) => {
  const info = lepInfo();
  if (!info.blasCore) return t.pass('the BLAS is not OpenBLAS: libtorch\'s pool always has the threads');
  t.true(info.shortThreadWaits, info.threadWaits);
  t.regex(info.threadWaits, /OPENBLAS_THREAD_TIMEOUT=\d+ \((lep's|yours)\).*: short, so CPU training gives libtorch's pool the threads too/);
  const model = await tinyModel({ hiddenSize: 32, numHiddenLayers: 2, seed: 5, embedStd: 0.02 });
  const work = tempDir();
  const data = join(work, 'blocks.safetensors');
  writeBlocks(data, blocks());
  const options = ['--data', data, '--steps', '2', '--batch-size', '4', '--warmup-steps', '0', '--threads', '2', '--json'];
  setThreads(2);
  const here = await trainModel(model, join(work, 'here'), { data, steps: 2, batchSize: 4, warmupSteps: 0 });
  t.deepEqual(here.threads, { blas: 2, intraOp: 2 });

  const env: NodeJS.ProcessEnv = { ...process.env, OMP_WAIT_POLICY: 'active' };
  delete env.GOMP_SPINCOUNT;  // as if the user had only set the policy (this process's children inherit lep's value)
  const { stdout: infoOut } = await run('node', [LEP, 'info'], { env });
  t.regex(infoOut, /thread waits  .*OMP_WAIT_POLICY=active \(yours\): long or unknown, so float32 CPU training keeps libtorch's pool at 1/);
  const { stdout } = await run('node', [LEP, 'train', model, '--out', join(work, 'active'), ...options], { env });
  const active = JSON.parse(stdout) as TrainResult;
  t.deepEqual(active.threads, { blas: 2, intraOp: 1 });
  // Another thread count sums in another order: the same loss to rounding.
  t.true(Math.abs(active.lastLoss - here.lastLoss) < 1e-5 * here.lastLoss, `${active.lastLoss} vs ${here.lastLoss}`);
});
