// `lep data pack` and `lep train` through the CLI, on real Debian text: a config file with flag
// overrides, the log and resolved config, and a process killed while writing a checkpoint.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { readSafetensors } from '../../ts/checkpoint/index.js';
import { readModelDir } from '../../ts/checkpoint/modelDir.js';
import { trainMemoryBytes } from '../../ts/train/trainMemory.js';
import { gib } from '../../ts/processMemory.js';
import { corpora } from '../corpora.js';
import { float32Values, LEP_CLI as LEP, maxAbsDiff, memoryCgroup, tempDir, tinyModel, underUlimit } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');

async function lep(args: string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [LEP, ...args], { env: { ...process.env, LEP_THREADS: '1', ...env } });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number | null; signal?: string };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code ?? -1 };
  }
}

async function setup(): Promise<{ model: string; data: string; dir: string }> {
  const dir = tempDir();
  const model = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02 });
  const data = join(dir, 'blocks.safetensors');
  const r = await lep(['data', 'pack', '--tokenizer', model, '--out', data, '--seq-len', '64', '--max-chars', '40000', (await corpora())['en.txt']!]);
  if (r.code !== 0) throw new Error(r.stderr);
  return { model, data, dir };
}

test('data pack + train: config file with flag overrides, a log line per step, resolved config beside the model', async (t) => {
  const { model, data, dir } = await setup();
  t.is(readSafetensors(data)[0]!.shape[1], 64);
  const config = join(dir, 'train.json');
  writeFileSync(config, JSON.stringify({ steps: 6, batchSize: 2, lr: 1e-3, warmupSteps: 1 }));
  const out = join(dir, 'out');
  const patch = join(dir, 'patch');
  const r = await lep(['train', model, '--config', config, '--data', data, '--lr', '2e-3', '--out', out, '--embeddings-only', '--patch', patch]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /6 steps, loss \d/);
  const resolved = JSON.parse(readFileSync(join(out, 'train-config.json'), 'utf8'));
  t.is(resolved.lr, 2e-3, 'the flag overrides the file');
  t.is(resolved.batchSize, 2, 'the file overrides the default');
  t.is(resolved.beta2, 0.95, 'defaults are resolved and written');
  t.is(resolved.params, 'embeddings');
  const before = new Map(readSafetensors(join(model, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  for (const x of readSafetensors(join(out, 'model.safetensors')))
    t.is(Buffer.from(x.data).equals(before.get(x.name)!), !/embed_tokens|lm_head/.test(x.name), `${x.name} trained only if an embedding`);
  t.is(readFileSync(join(out, 'train.log'), 'utf8').match(/^step \d+ \| loss/gm)?.length, 6);
  for (const f of ['model.safetensors', 'config.json', 'tokenizer.json']) t.true(existsSync(join(out, f)), f);
  // The embedding patch applied to the starting model gives the trained model, bit for bit.
  const applied = join(dir, 'applied');
  const pa = await lep(['patch', 'apply', patch, model, '--out', applied]);
  t.is(pa.code, 0, pa.stderr);
  const trained = new Map(readSafetensors(join(out, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  for (const x of readSafetensors(join(applied, 'model.safetensors'))) t.true(Buffer.from(x.data).equals(trained.get(x.name)!), `patched ${x.name}`);

  const bad = await lep(['train', model, '--config', join(dir, 'missing.json'), '--data', data, '--out', out]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /cannot read --config .*missing\.json: ENOENT\nHINT: /);
});

test('--embedding-lr: the embeddings and head move by about that rate while the body moves by --lr; refused with --embeddings-only', async (t) => {
  const { model, data, dir } = await setup();
  const before = new Map(readSafetensors(join(model, 'model.safetensors')).map((x) => [x.name, float32Values(x)]));
  // Largest element move of each tensor: AdamW moves an element by at most about the lr per step.
  const moves = (dirOut: string) => new Map(readSafetensors(join(dirOut, 'model.safetensors')).map((x) => [x.name, maxAbsDiff(float32Values(x), before.get(x.name)!).diff] as const));
  const args = ['--data', data, '--steps', '4', '--batch-size', '2', '--warmup-steps', '0', '--lr', '1e-2', '--weight-decay', '0'];
  const slow = join(dir, 'slow');
  const r = await lep(['train', model, ...args, '--embedding-lr', '1e-4', '--out', slow]);
  t.is(r.code, 0, r.stderr);
  t.is(JSON.parse(readFileSync(join(slow, 'train-config.json'), 'utf8')).embeddingLr, 1e-4);
  const m = moves(slow);
  for (const [name, d] of m) {
    if (/embed_tokens|lm_head/.test(name)) t.true(d > 0 && d <= 4 * 1e-4 * 1.01, `${name} moved ${d} (at most 4 steps of 1e-4)`);
    else if (/proj/.test(name)) t.true(d > 4 * 1e-4 * 2, `${name} moved ${d}, at the body's rate`);
  }
  const bad = await lep(['train', model, ...args, '--embedding-lr', '1e-4', '--embeddings-only', '--out', join(dir, 'bad')]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /--embedding-lr[\s\S]*HINT/);
  t.false(existsSync(join(dir, 'bad')), 'nothing written');
});

test('a run whose final model cannot be written says which checkpoint to resume from; the same command then writes the model of an uninterrupted run', async (t) => {
  const dir = tempDir();
  // Tied embeddings and a wide MLP: the checkpoints (embeddings and their two AdamW moments) are smaller
  // than the model, so a file-size limit between them fails only the final write, a stand-in for a disk
  // that fills up at the end of a run.
  const model = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'llama', hiddenSize: 64, intermediateSize: 2048, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2, tieWordEmbeddings: true, embedStd: 0.02 });
  const data = join(dir, 'blocks.safetensors');
  t.is((await lep(['data', 'pack', '--tokenizer', model, '--out', data, '--seq-len', '32', '--max-chars', '4000', (await corpora())['en.txt']!])).code, 0);
  const args = ['--data', data, '--steps', '3', '--batch-size', '2', '--embeddings-only', '--checkpoint-every', '1'];
  const straight = join(dir, 'straight');
  const first = await lep(['train', model, ...args, '--out', straight]);
  t.is(first.code, 0, first.stderr);
  const straightLoss = /3 steps, loss (\d+\.\d+)/.exec(first.stdout)?.[1];
  t.truthy(straightLoss, first.stdout);
  const modelBytes = statSync(join(straight, 'model.safetensors')).size;
  const out = join(dir, 'out');
  const ckptBytes = () => statSync(join(out, 'checkpoints', 'step-00000003', 'optimizer.safetensors')).size;

  // bash's ulimit -f (KiB) sets RLIMIT_FSIZE; node ignores SIGXFSZ, so a write past it fails with EFBIG.
  const limit = Math.floor((0.75 * modelBytes) / 1024);
  const trainLimited = () =>
    new Promise<{ code: number | null; stderr: string }>((done) =>
      execFile(...underUlimit(`-f ${limit}`, [process.execPath, LEP, 'train', model, ...args, '--out', out]), { env: { ...process.env, LEP_THREADS: '1' } }, (e, _stdout, stderr) =>
        done({ code: e ? (e as { code: number }).code : 0, stderr }),
      ),
    );
  const failed = await trainLimited();
  t.true(ckptBytes() < limit * 1024, `the checkpoint (${ckptBytes()} bytes) fits under the limit, the model (${modelBytes}) does not`);
  t.is(failed.code, 1, failed.stderr);
  t.regex(failed.stderr, /cannot write \S*model\.safetensors: File too large\nHINT: the file would be larger than this process may write \(ulimit -f\)/);
  t.regex(failed.stderr, /RESUME: the newest checkpoint is .*step-00000003 \(step 3\): once the cause is fixed, the same command resumes from there\n\(code LEP_IO\)/);
  t.false(existsSync(join(out, 'model.safetensors')), 'no model where the write failed');
  // Again under the limit: the resumed run, with no step left to train, fails the same way and says so again.
  const again = await trainLimited();
  t.is(again.code, 1, again.stderr);
  t.regex(again.stderr, /resuming from .*step-00000003[\s\S]*RESUME: the newest checkpoint is .*step-00000003 \(step 3\)/);

  const resumed = await lep(['train', model, ...args, '--out', out]);
  t.is(resumed.code, 0, resumed.stderr);
  // The run's steps from its start (as after any resume), and the checkpoint's loss: it said "0 steps".
  t.regex(resumed.stdout, new RegExp(`3 steps, loss ${straightLoss} \\(resumed from .*step-00000003\\)`), 'the loss of the checkpoint, not 0');
  const a = new Map(readSafetensors(join(straight, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  for (const x of readSafetensors(join(out, 'model.safetensors'))) t.true(Buffer.from(x.data).equals(a.get(x.name)!), `${x.name} bit-identical`);
});

test('in a container or job whose cgroup caps memory below RAM, training is refused against the cap, not killed by the OOM killer', async (t) => {
  const model = await tinyModel({ hiddenSize: 512, intermediateSize: 1408, numHiddenLayers: 2, numAttentionHeads: 8, dtype: 'bf16' });
  const need = trainMemoryBytes(readModelDir(model).config, 'all', 'f32');
  // Room for node and libtorch, well below what this f32 run needs (about 0.8 GB).
  const cap = Math.max(400 * 2 ** 20, Math.round(0.6 * need));
  const cgroup = memoryCgroup(cap);
  // The suite runs as root (CI's chroots need it), where cgroups can be made; say so plainly where not.
  if (typeof cgroup === 'string') return t.fail(cgroup);
  t.teardown(cgroup.remove);
  const dir = tempDir();
  const data = join(dir, 'blocks.safetensors');
  t.is((await lep(['data', 'pack', '--tokenizer', model, '--out', data, '--seq-len', '32', '--max-chars', '4000', (await corpora())['en.txt']!])).code, 0);
  const r = await new Promise<{ code: number | null; signal: string | null; stderr: string }>((done) =>
    execFile('bash', ['-c', `echo $$ > ${cgroup.procs} && exec "$0" "$@"`, process.execPath, LEP, 'train', model, '--data', data, '--out', join(dir, 'out'), '--steps', '2', '--batch-size', '2'], { env: { ...process.env, LEP_THREADS: '1' } }, (e, _stdout, stderr) =>
      done({ code: e ? ((e as { code?: number }).code ?? null) : 0, signal: e ? ((e as { signal?: string }).signal ?? null) : null, stderr }),
    ),
  );
  t.is(r.signal, null, `not killed (${r.signal}): ${r.stderr}`);
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, new RegExp(`needs at least [\\d.]+ [GM]iB: .*; this process may use ${gib(cap)} \\(its cgroup's memory limit \\+ swap`));
  t.regex(r.stderr, /\(code LEP_OUT_OF_MEMORY\)/);
  // lep info says so too, inside the cgroup and outside it.
  const info = async (inside: boolean) =>
    (JSON.parse((await promisify(execFile)('bash', ['-c', `${inside ? `echo $$ > ${cgroup.procs} && ` : ''}exec "$0" "$@"`, process.execPath, LEP, 'info', '--json'])).stdout) as { memory: { bytes: number; limit: string; description: string } }).memory;
  const capped = await info(true);
  t.like(capped, { limit: 'cgroup' });
  t.is(capped.bytes - (await info(false)).bytes, cap - totalmem(), 'the cap replaces RAM; swap is counted either way');
  t.regex(capped.description, new RegExp(`^${gib(cap)}: this process's cgroup memory limit`));
});

test('killed while writing a checkpoint: the previous checkpoint survives and the resumed run equals an uninterrupted one', async (t) => {
  const { model, data, dir } = await setup();
  const args = ['--data', data, '--steps', '6', '--batch-size', '2', '--lr', '3e-3', '--warmup-steps', '1', '--checkpoint-every', '2', '--keep-checkpoints', '5'];
  const straight = join(dir, 'straight');
  t.is((await lep(['train', model, ...args, '--out', straight])).code, 0);

  const out = join(dir, 'killed');
  const killed = await lep(['train', model, ...args, '--out', out], { LEP_FAULT_KILL_IN_CHECKPOINT: '4' });
  t.is(killed.code, 137, 'the process died inside the step-4 checkpoint write');
  const left = readdirSync(join(out, 'checkpoints')).sort();
  t.is(left[0], 'step-00000002');
  t.regex(left[1] ?? '', /^step-00000004\.tmp-\d+$/, 'the half-published checkpoint is only a temporary directory');
  t.is(JSON.parse(readFileSync(join(out, 'checkpoints', 'step-00000002', 'state.json'), 'utf8')).step, 2);

  const resumed = await lep(['train', model, ...args, '--out', out]);
  t.is(resumed.code, 0, resumed.stderr);
  t.regex(resumed.stdout, /resumed from .*step-00000002/);
  t.false(readdirSync(join(out, 'checkpoints')).some((n) => n.includes('.tmp-')), 'the stray temporary directory is cleaned up');
  const a = readSafetensors(join(straight, 'model.safetensors'));
  const b = new Map(readSafetensors(join(out, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  for (const x of a) t.true(Buffer.from(x.data).equals(b.get(x.name)!), `${x.name} bit-identical`);

  // Any checkpoint can be exported as a model: the last one is the final model, bit for bit.
  const last = join(dir, 'step6');
  const ex = await lep(['export', 'checkpoint', model, join(out, 'checkpoints', 'step-00000006'), '--out', last]);
  t.is(ex.code, 0, ex.stderr);
  t.regex(ex.stdout, /at step 6/);
  for (const x of readSafetensors(join(last, 'model.safetensors'))) t.true(Buffer.from(x.data).equals(b.get(x.name)!), `exported ${x.name}`);
  const early = join(dir, 'step2');
  t.is((await lep(['export', 'checkpoint', model, join(out, 'checkpoints', 'step-00000002'), '--out', early])).code, 0);
  const e2 = new Map(readSafetensors(join(early, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  t.false(e2.get('model.norm.weight')!.equals(b.get('model.norm.weight')!), 'step 2 is not step 6');
  const bad = await lep(['export', 'checkpoint', model, out, '--out', join(dir, 'x')]);
  t.regex(bad.stderr, /not a complete training checkpoint/);
});
