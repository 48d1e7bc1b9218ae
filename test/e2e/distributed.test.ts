// Data-parallel `lep train` over c10d/Gloo on 127.0.0.1, through the CLI and real processes:
// 2 ranks with per-rank batch B/2 train exactly like 1 process with batch B (losses, final weights), for
// embeddings-only training (dense and touched-rows gradient sync) and full training with a loss mask
// and gradient accumulation; a killed or frozen rank stops the other within the timeout; a restart
// resumes from the last checkpoint; bad rendezvous settings fail with messages naming the cause (a
// taken port at once, not as missing ranks).
// Every test is serial: they fork (lep processes) and also run native jobs in this process (model
// creation, safetensors), and forking while another test's job is inside OpenBLAS can deadlock
// (OpenBLAS's pre-fork handler); serial also keeps the timing bounds of the kill test independent of
// other tests sharing the cores.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

import test from 'ava';

import { Tokenizer } from '../../ts/index.js';
import { readSafetensors } from '../../ts/checkpoint/index.js';
import { readStageRecord } from '../../ts/stage/stageRecord.js';
import { freePort, readDistributedEnv } from '../../ts/train/index.js';
import { TOY_CHAT_TEMPLATE } from '../../ts/train/instructData.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';
import { corpora } from '../corpora.js';
import { float32Values, LEP_CLI as LEP, maxAbsDiff, tempDir, tinyModel } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Starts `lep ARGS` with extra environment; `onStderr` sees stderr as it arrives. */
function start(args: string[], env: Record<string, string> = {}, onStderr?: (text: string) => void) {
  const t0 = Date.now();
  const child = spawn(process.execPath, [LEP, ...args], { env: { ...process.env, LEP_THREADS: '1', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr);
  });
  const done = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, seconds: (Date.now() - t0) / 1000 })));
  return { child, done };
}

const lep = (args: string[], env: Record<string, string> = {}) => start(args, env).done;

/** A tiny LLaMA-3-style model and real Debian text packed into 64-token blocks. */
async function setup(extra: Parameters<typeof tinyModel>[0] = {}): Promise<{ model: string; data: string; dir: string }> {
  const dir = tempDir('lep-dist-');
  const model = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02, ...extra });
  const data = join(dir, 'blocks.safetensors');
  const r = await lep(['data', 'pack', '--tokenizer', model, '--out', data, '--seq-len', '64', '--max-chars', '40000', (await corpora())['en.txt']!]);
  if (r.code !== 0) throw new Error(r.stderr);
  return { model, data, dir };
}

const losses = (out: string) => [...readFileSync(join(out, 'train.log'), 'utf8').matchAll(/^step \d+ \| loss (\S+)/gm)].map((m) => Number(m[1]));
const tensors = (out: string) => new Map(readSafetensors(join(out, 'model.safetensors')).map((t) => [t.name, new Float32Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength))]));

function sameTraining(t: import('ava').ExecutionContext, one: string, two: string, names: RegExp): void {
  const a = losses(one);
  const b = losses(two);
  t.is(b.length, a.length);
  t.deepEqual(b, a, 'the same loss at every step (4 decimals, as logged)');
  const wa = tensors(one);
  const wb = tensors(two);
  let checked = 0;
  for (const [name, x] of wa) {
    if (!names.test(name)) continue;
    const { diff, at } = maxAbsDiff(x, wb.get(name)!);
    t.true(diff < 2e-5, `${name}: worst |1 process - 2 processes| = ${diff} at ${at}`);
    checked++;
  }
  t.true(checked > 0);
}

const COMMON = ['--steps', '5', '--lr', '3e-3', '--warmup-steps', '1', '--seed', '3', '--report-every', '1'];

test.serial('2 ranks with batch 2 each train the embeddings exactly like 1 process with batch 4 (touched-rows and dense sync)', async (t) => {
  const { model, data, dir } = await setup();
  const one = join(dir, 'one');
  const r1 = await lep(['train', model, '--data', data, '--out', one, '--batch-size', '4', '--embeddings-only', ...COMMON]);
  t.is(r1.code, 0, r1.stderr);
  for (const sync of ['touched-rows', 'dense']) {
    const two = join(dir, `two-${sync}`);
    const r2 = await lep(['launch', '--nproc', '2', '--', 'lep', 'train', model, '--data', data, '--out', two, '--batch-size', '2', '--embeddings-only', '--grad-sync', sync, ...COMMON]);
    t.is(r2.code, 0, r2.stderr);
    t.regex(r2.stderr, /\[rank 1\] step 5\/5/, 'rank 1 runs and its output is prefixed');
    t.regex(r2.stdout, /\[rank 0\] .*5 steps/);
    sameTraining(t, one, two, /embed_tokens|lm_head/);
    // Each rank all-reduces both 8000 x 32 f32 matrices (dense: 2.05 MB), or the head, the used rows
    // and an 8000-byte row mask (touched-rows).
    const mb = [...readFileSync(join(two, 'train.log'), 'utf8').matchAll(/allreduce_mb (\S+) \| allreduce_wait_s \S+ \| early_buckets (\d+)/g)];
    t.is(mb.length, 5);
    for (const m of mb) {
      if (sync === 'dense') t.is(Number(m[1]), 2.05);
      else t.true(Number(m[1]) > 1.03 && Number(m[1]) < 1.5, `touched-rows: ${m[1]} MB`);
      t.is(Number(m[2]), 2, 'both started from backward: the head before the body, the embedding from its autograd hook');
    }
    t.is(JSON.parse(readFileSync(join(two, 'train-config.json'), 'utf8')).distributed.worldSize, 2);
  }
});

test.serial('all parameters, a loss mask and gradient accumulation: 2 ranks x batch 1 x accum 2 = 1 process x batch 4', async (t) => {
  const { model, data, dir } = await setup();
  // A loss mask that keeps a different number of target tokens in every block, so averaging the ranks'
  // means would differ from the token-weighted mean over the global batch.
  const st = readSafetensors(data).find((x) => x.name === 'tokens')!;
  const [n, cols] = [st.shape[0]!, st.shape[1]!];
  const ids = new Int32Array(st.data.buffer.slice(st.data.byteOffset, st.data.byteOffset + st.data.byteLength));
  const blocks = Array.from({ length: n }, (_, i) => [...ids.subarray(i * cols, (i + 1) * cols)]);
  const masks = blocks.map((b, i) => b.map((_, j) => (j >= (i * 7) % 40 ? 1 : 0)));
  const masked = join(dir, 'masked.safetensors');
  writeBlocks(masked, blocks, masks);
  const one = join(dir, 'one');
  const r1 = await lep(['train', model, '--data', masked, '--out', one, '--batch-size', '4', '--params', 'all', ...COMMON]);
  t.is(r1.code, 0, r1.stderr);
  const two = join(dir, 'two');
  // Small buckets: several all-reduces start from autograd hooks while backward still runs.
  const r2 = await lep(['launch', '--nproc', '2', '--', 'lep', 'train', model, '--data', masked, '--out', two, '--batch-size', '1', '--grad-accum', '2', '--params', 'all', '--grad-bucket-mb', '0.01', ...COMMON]);
  t.is(r2.code, 0, r2.stderr);
  sameTraining(t, one, two, /./);
  // Tiny buckets: they start from autograd hooks while backward runs, not after it.
  const early = [...readFileSync(join(two, 'train.log'), 'utf8').matchAll(/early_buckets (\d+)/g)].map((m) => Number(m[1]));
  t.is(early.length, 5);
  t.true(early.every((n) => n >= 5), `buckets started during backward: ${early.join(', ')}`);
  t.true(Tokenizer.fromDir(two) !== undefined);
});

test.serial('LoRA adapters with a trained LM head: 2 ranks = 1 process (adapter and merged model)', async (t) => {
  const { model, data, dir } = await setup();
  const lora = ['--params', 'lora', '--lora-rank', '4', '--lora-alpha', '8', '--lora-dropout', '0', '--lora-train-modules', 'lm_head', ...COMMON];
  const one = join(dir, 'one');
  const r1 = await lep(['train', model, '--data', data, '--out', one, '--batch-size', '4', ...lora]);
  t.is(r1.code, 0, r1.stderr);
  const two = join(dir, 'two');
  const r2 = await lep(['launch', '--nproc', '2', '--', 'lep', 'train', model, '--data', data, '--out', two, '--batch-size', '2', ...lora]);
  t.is(r2.code, 0, r2.stderr);
  sameTraining(t, one, two, /./);
  const adapter = (out: string) => new Map(readSafetensors(join(out, 'adapter', 'adapter_model.safetensors')).map((x) => [x.name, float32Values(x)]));
  const [a, b] = [adapter(one), adapter(two)];
  t.true(a.size > 2 && [...a.keys()].some((k) => /lora_B/.test(k)));
  for (const [name, x] of a) {
    const { diff } = maxAbsDiff(x, b.get(name)!);
    t.true(diff < 2e-5, `${name}: ${diff}`);
  }
});

test.serial('tied embeddings (Qwen2), a row set and evaluation: 2 ranks give the same losses, eval losses and rows as 1 process', async (t) => {
  const { model, data, dir } = await setup({ modelType: 'qwen2' });
  const rows = join(dir, 'rows.json');
  writeFileSync(rows, JSON.stringify(Array.from({ length: 3000 }, (_, i) => i * 2 + 1)));
  const opts = ['--embeddings-only', '--rows', rows, '--eval-data', data, '--eval-batches', '2', '--eval-every', '2', ...COMMON];
  const one = join(dir, 'one');
  const r1 = await lep(['train', model, '--data', data, '--out', one, '--batch-size', '4', ...opts]);
  t.is(r1.code, 0, r1.stderr);
  t.regex(r1.stderr, /^step 2 eval_loss \d+\.\d{4} bpc \d+\.\d{4}$/m, 'the terminal line has the bits per character too');
  const two = join(dir, 'two');
  const r2 = await lep(['launch', '--nproc', '2', '--', 'lep', 'train', model, '--data', data, '--out', two, '--batch-size', '2', ...opts]);
  t.is(r2.code, 0, r2.stderr);
  sameTraining(t, one, two, /embed_tokens/);
  const evals = (out: string) => [...readFileSync(join(out, 'train.log'), 'utf8').matchAll(/eval_loss .*$/gm)].map((m) => m[0]);
  t.is(evals(one).length, 4, 'eval at steps 0, 2, 4 and 5');
  t.regex(evals(one)[0]!, /eval_loss \S+ \| bpc \S+/);
  t.deepEqual(evals(two), evals(one), 'the same evaluation loss and bits per character');
  // Rows outside the set are untouched in both.
  const w = tensors(two).get('model.embed_tokens.weight')!;
  const w0 = tensors(model).get('model.embed_tokens.weight')!;
  const hidden = w.length / readSafetensors(join(model, 'model.safetensors')).find((x) => x.name === 'model.embed_tokens.weight')!.shape[0]!;
  t.true(w.subarray(0, hidden).every((v, i) => v === w0[i]), 'row 0 is not in the set');
});

test.serial('a killed rank stops the other with an error; a frozen one within --dist-timeout; restarting resumes from the last checkpoint', async (t) => {
  const { model, data, dir } = await setup();
  const out = join(dir, 'out');
  const port = await freePort();
  const args = ['train', model, '--data', data, '--out', out, '--batch-size', '2', '--embeddings-only', '--steps', '400', '--checkpoint-every', '3', '--dist-timeout', '10', '--lr', '1e-3'];
  const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) });
  // Kill rank 1 once rank 0 has reported step 8 (checkpoints at 3 and 6 are written by then).
  const rank1 = start(args, env(1));
  let killedAt = 0;
  const rank0 = start(args, env(0), (err) => {
    if (!killedAt && /step 8\/400/.test(err)) {
      killedAt = Date.now();
      rank1.child.kill('SIGKILL');
    }
  });
  const [r0, r1] = await Promise.all([rank0.done, rank1.done]);
  t.true(killedAt > 0, r0.stderr);
  t.is(r1.signal, 'SIGKILL');
  t.not(r0.code, 0);
  t.regex(r0.stderr, /rank 0 of 2: (lost contact with another rank|the other ranks did not answer within 10 s)/);
  t.regex(r0.stderr, /HINT: restart all ranks to resume from the last checkpoint/);
  // How soon is logged, not asserted (no wall-clock bounds in tests: under load they flake); a rank 0 that
  // never noticed would hang the test to its timeout, and the message above names what it noticed.
  t.log(`rank 0 stopped ${((Date.now() - killedAt) / 1000).toFixed(1)} s after rank 1 was killed`);
  const log = readFileSync(join(out, 'train.log'), 'utf8');
  const lastStep = Math.max(...[...log.matchAll(/^step (\d+) \| loss/gm)].map((m) => Number(m[1])));
  const lastCheckpoint = Math.floor(lastStep / 3) * 3;
  t.true(existsSync(join(out, 'checkpoints', `step-${String(lastCheckpoint).padStart(8, '0')}`)), `checkpoint ${lastCheckpoint}`);

  // A frozen rank (SIGSTOP) keeps its sockets open: only the timeout can tell, and it must.
  const port2 = await freePort();
  const env2 = (rank: number) => ({ ...env(rank), MASTER_PORT: String(port2) });
  const args2 = [...args.slice(0, args.indexOf('--steps')), '--steps', '400', '--dist-timeout', '8', '--lr', '1e-3'];
  args2[args2.indexOf('--out') + 1] = join(dir, 'frozen');
  const frozen1 = start(args2, env2(1));
  let frozenAt = 0;
  const frozen0 = start(args2, env2(0), (err) => {
    if (!frozenAt && /step 3\/400/.test(err)) {
      frozenAt = Date.now();
      frozen1.child.kill('SIGSTOP');
    }
  });
  const f0 = await frozen0.done;
  frozen1.child.kill('SIGKILL');
  await frozen1.done;
  t.true(frozenAt > 0, f0.stderr);
  t.not(f0.code, 0);
  t.regex(f0.stderr, /the other ranks did not answer within 8 s/);
  // It waited for the timeout it was given (a lower bound, which load cannot break), not less.
  const frozenFor = (Date.now() - frozenAt) / 1000;
  t.true(frozenFor >= 7, `rank 0 stopped ${frozenFor.toFixed(1)} s after rank 1 froze`);
  t.log(`rank 0 stopped ${frozenFor.toFixed(1)} s after rank 1 froze (--dist-timeout 8)`);

  // Both ranks again, now through lep launch, with the same options (other ones are refused): they resume
  // from the checkpoint; Ctrl-C to the launcher reaches both, and they stop at a step with a checkpoint.
  const at = String(lastCheckpoint).padStart(8, '0');
  let sent = false;
  const resumed = start(['launch', '--nproc', '2', '--', 'lep', ...args], {}, (err) => {
    if (!sent && new RegExp(`\\[rank 0\\] step ${lastCheckpoint + 2}/400`).test(err)) {
      sent = true;
      resumed.child.kill('SIGINT');
    }
  });
  const r = await resumed.done;
  t.is(r.code, 130, r.stderr);
  for (const rank of [0, 1]) t.regex(r.stderr, new RegExp(`\\[rank ${rank}\\] lep train: resuming from .*step-${at} \\(step ${lastCheckpoint} of 400\\)`), 'every rank resumes from the same checkpoint');
  const stopped = /\[rank 0\] lep train: training stopped at step (\d+) of 400; checkpoint (\S+)/.exec(r.stderr);
  t.truthy(stopped, r.stderr);
  t.true(existsSync(join(stopped![2]!, 'state.json')));
  t.regex(r.stderr, /lep launch: interrupted by SIGINT/);
  const after = readFileSync(join(out, 'train.log'), 'utf8');
  t.regex(after, new RegExp(`resume from .*step-${at}\\nstep ${lastCheckpoint + 1} \\| loss`));
});

test.serial('lep adapt on 2 ranks: rank 0 runs every stage, rank 1 waits for the data and joins the training', async (t) => {
  const files = await corpora();
  const { model: base, data, dir } = await setup({ modelType: 'llama', numKeyValueHeads: 4, chatTemplate: TOY_CHAT_TEMPLATE });
  const instruct = join(dir, 'instruct');
  const ri = await lep(['train', base, '--data', data, '--out', instruct, '--steps', '2', '--batch-size', '2']);
  t.is(ri.code, 0, ri.stderr);
  const recipe = join(dir, 'recipe.json');
  writeFileSync(recipe, JSON.stringify({
    base,
    instruct,
    corpus: { train: files['ru.txt'], eval: files['heldout/ru.txt'], maxChars: 200_000 },
    tokenizer: { kind: 'extend', vocabSize: 1200 },
    train: { seqLen: 64, steps: 4, batchSize: 2, lr: 1e-3, warmupSteps: 1, evalBlocks: 4, newRowsOnly: true },
    propagate: { methods: ['swap'] },
  }));
  const out = join(dir, 'adapt');
  const r = await lep(['launch', '--nproc', '2', '--', 'lep', 'adapt', recipe, '--out', out]);
  t.is(r.code, 0, r.stderr);
  const config = JSON.parse(readFileSync(join(out, 'train', 'train-config.json'), 'utf8'));
  t.is(config.distributed.worldSize, 2);
  // Rank 0 alone writes the records: the training's (which ran on both ranks) and the run's, in OUT.
  t.like(readStageRecord(join(out, 'train'), 'train').resolved, { distributed: { worldSize: 2, rank: 0 } });
  t.deepEqual((readStageRecord(out, 'adapt').result as { ran: string[] }).ran, ['tokenizer', 'init', 'data', 'train', 'propagate']);
  t.is(readFileSync(join(out, 'train', 'train.log'), 'utf8').match(/^step \d+ \| loss/gm)?.length, 4);
  t.true(existsSync(join(out, 'propagate-swap', 'model.safetensors')), 'rank 0 propagated');
  t.regex(r.stdout, /\[rank 0\] .*ran tokenizer, init, data, train, propagate/);
  t.regex(r.stdout, /\[rank 1\] .*ran train\b/, 'rank 1 trained and ran nothing else');
});

test.serial('bad rendezvous settings and mismatched ranks fail with messages that name the cause', async (t) => {
  t.is(readDistributedEnv({}), undefined);
  t.is(readDistributedEnv({ WORLD_SIZE: '1', RANK: '0' }), undefined);
  t.deepEqual(readDistributedEnv({ WORLD_SIZE: '2', RANK: '1', MASTER_ADDR: 'h', MASTER_PORT: '29500' }), { rank: 1, worldSize: 2, localRank: 0, masterAddr: 'h', masterPort: 29500 });
  t.throws(() => readDistributedEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '29500' }), { message: /WORLD_SIZE is 2 but MASTER_ADDR \(the host of rank 0\) is not set\nHINT: .*lep launch/ });
  t.throws(() => readDistributedEnv({ WORLD_SIZE: '2', RANK: '2', MASTER_ADDR: 'h', MASTER_PORT: '1' }), { message: /RANK 2 is not below WORLD_SIZE 2/ });
  t.throws(() => readDistributedEnv({ RANK: '0' }), { message: /RANK is set \("0"\) but WORLD_SIZE is not/ });
  t.throws(() => readDistributedEnv({ WORLD_SIZE: '2', RANK: '0', MASTER_ADDR: 'h', MASTER_PORT: '70000' }), { message: /Expected an integer in 1\.\.65535 for MASTER_PORT but received "70000"/ });
  t.throws(() => readDistributedEnv({ WORLD_SIZE: 'two' }), { message: /for WORLD_SIZE but received "two"/ });

  const { model, data, dir } = await setup();
  const cli = await lep(['train', model, '--data', data, '--out', join(dir, 'x'), '--steps', '1'], { WORLD_SIZE: '2', RANK: '0', MASTER_PORT: '1234' });
  t.is(cli.code, 1);
  t.regex(cli.stderr, /MASTER_ADDR .* is not set/);
  // Ranks that disagree (here: the learning rate) stop at the start instead of training apart.
  const port = await freePort();
  const env = (rank: number) => ({ RANK: String(rank), WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port) });
  const base = ['train', model, '--data', data, '--out', join(dir, 'mismatch'), '--steps', '2', '--embeddings-only', '--dist-timeout', '20'];
  const [m0, m1] = await Promise.all([lep([...base, '--lr', '1e-3'], env(0)), lep([...base, '--lr', '2e-3'], env(1))]);
  t.is(m0.code, 1);
  t.is(m1.code, 1);
  t.regex(m1.stderr, /the ranks disagree on the learning rate \(from 0\.001 to 0\.002; this rank, 1, has 0\.002\)/);
  // ... and on which rows train, not only on how many (each would all-reduce into its own rows).
  const rowsA = join(dir, 'rows-a.json');
  const rowsB = join(dir, 'rows-b.json');
  writeFileSync(rowsA, JSON.stringify([5, 17, 300]));
  writeFileSync(rowsB, JSON.stringify([5, 17, 301]));  // as many rows: only their ids tell them apart
  const rowsPort = await freePort();
  const rowsEnv = (rank: number) => ({ ...env(rank), MASTER_PORT: String(rowsPort) });
  const rowsBase = ['train', model, '--data', data, '--out', join(dir, 'rows-mismatch'), '--steps', '2', '--embeddings-only', '--dist-timeout', '20'];
  const [r0, r1] = await Promise.all([lep([...rowsBase, '--rows', rowsA], rowsEnv(0)), lep([...rowsBase, '--rows', rowsB], rowsEnv(1))]);
  t.is(r0.code, 1);
  t.is(r1.code, 1);
  t.regex(r1.stderr, /the ranks disagree on the trainable rows \(sum of ids\) \(from 322 to 323; this rank, 1, has 323\)/);
  // One block for two ranks.
  const st = readSafetensors(data).find((x) => x.name === 'tokens')!;
  const one = join(dir, 'one-block.safetensors');
  writeBlocks(one, [[...new Int32Array(st.data.buffer.slice(st.data.byteOffset, st.data.byteOffset + st.shape[1]! * 4))]]);
  const few = await lep(['launch', '--nproc', '2', '--', 'lep', 'train', model, '--data', one, '--out', join(dir, 'few'), '--steps', '1']);
  t.not(few.code, 0);
  t.regex(few.stderr, /the training data has 1 blocks, fewer than the 2 ranks/);
  // Nobody at the rendezvous: rank 1 gives up after the timeout and says where it looked.
  const lonely = await lep(['train', model, '--data', data, '--out', join(dir, 'lonely'), '--steps', '1', '--dist-timeout', '2'], { ...env(1), MASTER_PORT: String(await freePort()) });
  t.is(lonely.code, 1);
  t.regex(lonely.stderr, /rank 1: cannot reach rank 0's rendezvous at 127\.0\.0\.1:\d+ within 2 s/);
  // ... and a lonely rank 0 says that ranks are missing.
  const alone = await lep(['train', model, '--data', data, '--out', join(dir, 'alone'), '--steps', '1', '--dist-timeout', '2'], { ...env(0), MASTER_PORT: String(await freePort()) });
  t.is(alone.code, 1);
  t.regex(alone.stderr, /rank 0: not all 2 ranks joined the rendezvous at 127\.0\.0\.1:\d+ within 2 s/);
  // A rank 0 whose port is taken fails at once with that cause, not with missing ranks after the
  // timeout (the message a libtorch refusing to make the store, as 2.4+ without libuv did, also got).
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, resolve));
  const takenPort = (taken.address() as AddressInfo).port;
  const busy = await lep(['train', model, '--data', data, '--out', join(dir, 'busy'), '--steps', '1', '--dist-timeout', '300'], { ...env(0), MASTER_PORT: String(takenPort) });
  taken.close();
  t.is(busy.code, 1);
  t.regex(busy.stderr, new RegExp(`rank 0: cannot open the rendezvous at 127\\.0\\.0\\.1:${takenPort}: .*\nHINT: check that the port is free`));
  t.notRegex(busy.stderr, /ranks joined/);
});
