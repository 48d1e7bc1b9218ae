/**
 * Thread waits (ts/binding/threadWaits.ts, cpp/core/runtime.h training_shares_pools): in a clean
 * environment lep sets its waits and a float32 CPU training job runs libtorch's pool at the BLAS thread
 * count too, as its result and `lep info` say; the user's long waits (OMP_WAIT_POLICY=active, an
 * OPENBLAS_THREAD_TIMEOUT of 0 or 21, a GOMP_SPINCOUNT over 30000 or in libgomp's other spellings) keep the
 * pool at 1; both ways train to the same loss. A training job's pool size does not leak into the main
 * thread. Children run with the variables cleared, so the developer's own environment does not decide.
 * Serial: starting a child while this process runs a native job can hang both (OpenBLAS's pre-fork
 * handler; docs/architecture.md, "Fork hazard"), and one test trains here while the others start children.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { lepInfo, setThreads, type LepInfo } from '../../ts/index.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel, type TrainResult } from '../../ts/train/trainModel.js';
import { SET_BY_LEP, THREAD_WAIT_DEFAULTS } from '../../ts/binding/threadWaits.js';
import { LEP_CLI as LEP, tempDir, tinyModel } from '../helpers.js';

const run = promisify(execFile);

/** This process's environment without any thread-wait setting, plus `extra`. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const v of [...THREAD_WAIT_DEFAULTS.map((d) => d.name), 'OMP_WAIT_POLICY', SET_BY_LEP]) delete env[v];
  return { ...env, ...extra };
}

async function childInfo(extra: Record<string, string>): Promise<LepInfo> {
  return JSON.parse((await run(process.execPath, [LEP, 'info', '--json'], { env: cleanEnv(extra) })).stdout) as LepInfo;
}

// Asked of a child: lepInfo() here would fix the main thread's pool size before the last test looks at it.
const OPENBLAS = (await childInfo({})).blasCore !== '';

/** Seeded token ids: 8 blocks of 33 tokens. */
function blocks(): number[][] {
  let s = 11;
  return Array.from({ length: 8 }, () => Array.from({ length: 33 }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 32000));
}

test.serial('lep info: lep sets its waits in a clean environment; which settings count as short', async (t) => {
  if (!OPENBLAS) return t.pass('the BLAS is not OpenBLAS: libtorch\'s pool always has the threads');
  const clean = await childInfo({});
  t.true(clean.trainingSharesPools, clean.threadWaits);
  t.is(clean.threadWaits, "OPENBLAS_THREAD_TIMEOUT=20 (lep's), GOMP_SPINCOUNT=10000 (lep's): short, so CPU training and float32 prompts in oneDNN give libtorch's pool the threads too");
  const cases: [Record<string, string>, boolean][] = [
    [{ OMP_WAIT_POLICY: 'passive' }, true],
    [{ OMP_WAIT_POLICY: 'active' }, false],
    [{ GOMP_SPINCOUNT: '30000' }, true],
    [{ GOMP_SPINCOUNT: '30001' }, false],
    [{ GOMP_SPINCOUNT: '10k' }, false],  // libgomp reads 10000; lep does not parse suffixes, and says long
    [{ GOMP_SPINCOUNT: 'infinite' }, false],
    [{ OPENBLAS_THREAD_TIMEOUT: '4' }, true],
    [{ OPENBLAS_THREAD_TIMEOUT: '0' }, false],  // 0: OpenBLAS's default, 2^28 cycles
    [{ OPENBLAS_THREAD_TIMEOUT: '21' }, false],
    [{ OPENBLAS_THREAD_TIMEOUT: '' }, false],
  ];
  for (const [extra, short] of cases) {
    const info = await childInfo(extra);
    t.is(info.trainingSharesPools, short, `${JSON.stringify(extra)}: ${info.threadWaits}`);
    const [name, value] = Object.entries(extra)[0]!;
    t.true(info.threadWaits.includes(`${name}=${value} (yours)`), info.threadWaits);
  }
  // What a child of a lep process inherits is reported as lep's.
  const inherited = await childInfo({ OPENBLAS_THREAD_TIMEOUT: '20', GOMP_SPINCOUNT: '10000', [SET_BY_LEP]: 'OPENBLAS_THREAD_TIMEOUT=20 GOMP_SPINCOUNT=10000' });
  t.is(inherited.threadWaits, "OPENBLAS_THREAD_TIMEOUT=20 (lep's, inherited), GOMP_SPINCOUNT=10000 (lep's, inherited): short, so CPU training and float32 prompts in oneDNN give libtorch's pool the threads too");
});

test.serial('a float32 training job: libtorch\'s pool gets the threads with short waits, 1 with OMP_WAIT_POLICY=active, the same loss', async (t) => {
  if (!OPENBLAS) return t.pass('the BLAS is not OpenBLAS');
  const model = await tinyModel({ hiddenSize: 32, numHiddenLayers: 2, seed: 5, embedStd: 0.02 });
  const work = tempDir();
  const data = join(work, 'blocks.safetensors');
  writeBlocks(data, blocks());
  const train = async (name: string, extra: Record<string, string>): Promise<TrainResult> => {
    const args = [LEP, 'train', model, '--out', join(work, name), '--data', data, '--steps', '2', '--batch-size', '4', '--warmup-steps', '0', '--threads', '2', '--json'];
    return JSON.parse((await run(process.execPath, args, { env: cleanEnv(extra) })).stdout) as TrainResult;
  };
  const shared = await train('shared', {});
  t.deepEqual(shared.threads, { blas: 2, intraOp: 2 });
  const active = await train('active', { OMP_WAIT_POLICY: 'active' });
  t.deepEqual(active.threads, { blas: 2, intraOp: 1 });
  // Another thread count sums in another order: the same loss to rounding.
  t.true(Math.abs(active.lastLoss - shared.lastLoss) < 1e-5 * shared.lastLoss, `${active.lastLoss} vs ${shared.lastLoss}`);
});

test.serial("a training job's pool size does not reach the main thread (libtorch copies a process-wide count into a thread at its first parallel op)", async (t) => {
  // Nothing in this process has asked libtorch for the main thread's count before: the first lepInfo()
  // runs during the job, when the process-wide count is the job's.
  setThreads(2);
  const model = await tinyModel({ hiddenSize: 32, numHiddenLayers: 2, seed: 5, embedStd: 0.02 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks());
  const during: number[] = [];
  const r = await trainModel(model, join(tempDir(), 'out'), { data, steps: 2, batchSize: 4, warmupSteps: 0, onProgress: (e) => { if (e.phase === 'train') during.push(lepInfo().intraOpThreads); } });
  t.is(r.threads.blas, OPENBLAS ? 2 : 0);
  t.deepEqual(during, [1, 1], `the job ran with ${r.threads.intraOp}`);
  t.is(lepInfo().intraOpThreads, OPENBLAS ? 1 : 2);
});
