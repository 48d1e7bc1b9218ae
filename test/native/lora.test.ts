import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { LepModel, mergeAdapter, trainModel } from '../../ts/index.js';
import { readSafetensors, writeSafetensors } from '../../ts/checkpoint/index.js';
import { ADAPTER_WEIGHTS_FILE, readAdapterConfig, saveAdapter } from '../../ts/lora/index.js';
import { writeBlocks } from '../../ts/train/index.js';
import type { NativeLoraOptions } from '../../ts/binding/NativeTypes.js';
import { runJob } from '../../ts/binding/runJob.js';

const runJobForTest = <T>(start: Parameters<typeof runJob<T>>[0]) => runJob(start, {});
import { LEP_CLI, rejectsAborted, tempDir, tinyModel } from '../helpers.js';

const TOY_INSTRUCT = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'instruct');
const SEQS = [
  [1, 500, 40, 1200, 7, 88, 3000, 12, 9, 10],
  [1, 8000, 65, 66, 67, 900, 901, 5],
];

async function logprobs(m: LepModel): Promise<number[]> {
  return (await m.score(SEQS)).flatMap((s) => Array.from(s.tokenLogprobs));
}

function f64(t: { data: Uint8Array }): Float64Array {
  return new Float64Array(new Uint8Array(t.data).slice().buffer);
}

test('PEFT initialisation leaves the output unchanged; merged and unmerged adapters give the same log-probabilities', async (t) => {
  const m = await LepModel.load(TOY_INSTRUCT);
  const before = await logprobs(m);
  const lora: NativeLoraOptions = { rank: 4, alpha: 16, targets: ['q_proj', 'v_proj', 'down_proj'], layers: [0, 5], modulesToSave: [], seed: 3 };
  await runJobForTest((p) => m.native.addLora(lora, p));
  t.true(m.native.info().loraParameters > 0);
  t.deepEqual(await logprobs(m), before, 'B = 0 at initialisation: the output is exactly the base model output');
  m.dispose();

  const r = await LepModel.load(TOY_INSTRUCT);
  await runJobForTest((p) => r.native.addLora({ ...lora, init: 'random' }, p));
  const unmerged = await logprobs(r);
  await runJobForTest((p) => r.native.mergeLora(p));
  t.is(r.native.info().loraParameters, 0);
  const merged = await logprobs(r);
  const moved = Math.max(...before.map((x, i) => Math.abs(x - unmerged[i]!)));
  t.true(moved > 1e-2, `random adapters change the output (max |Δ logprob| ${moved})`);
  const worst = Math.max(...merged.map((x, i) => Math.abs(x - unmerged[i]!)));
  t.true(worst < 1e-4, `merged vs unmerged: max |Δ logprob| ${worst}`);
  r.dispose();
});

test('LoRA gradients (adapters and a fully trained lm_head) match central finite differences in float64', async (t) => {
  const dir = await tinyModel({ dtype: 'f64', hiddenSize: 16, numHiddenLayers: 2, numAttentionHeads: 2, numKeyValueHeads: 1, embedStd: 0.5, seed: 5 });
  const lora: NativeLoraOptions = { rank: 2, alpha: 3, targets: ['q_proj', 'o_proj', 'up_proj'], layers: [1], modulesToSave: ['lm_head'], init: 'random', seed: 11 };
  const tokens = new Int32Array(SEQS[0]!.slice(0, 8).concat(SEQS[1]!.slice(0, 8)));
  const lossMask = new Uint8Array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1]);  // loss on "assistant" tokens only
  const adapterFile = join(tempDir(), 'adapter.safetensors');
  const m = await LepModel.load(dir, { dtype: 'f64' });
  await runJobForTest((p) => m.native.addLora(lora, p));
  await runJobForTest((p) => m.native.saveLora({ file: adapterFile, dtype: 'f64' }, p));
  const ref = await m.native.lossAndGrads({ tokens, rows: 2, cols: 8, lossMask, params: 'lora' }, null).promise;
  m.dispose();
  t.is(ref.headGradRows, ref.grads['lm_head.weight']!.length / 16, 'lm_head is saved whole: every row gets a gradient');
  t.deepEqual(Object.keys(ref.grads).sort(), [
    'lm_head.weight',
    'model.layers.1.mlp.up_proj.lora_A.weight',
    'model.layers.1.mlp.up_proj.lora_B.weight',
    'model.layers.1.self_attn.o_proj.lora_A.weight',
    'model.layers.1.self_attn.o_proj.lora_B.weight',
    'model.layers.1.self_attn.q_proj.lora_A.weight',
    'model.layers.1.self_attn.q_proj.lora_B.weight',
  ]);
  const saved = readSafetensors(adapterFile);
  const lossWith = async (name: string, index: number, delta: number) => {
    const file = join(tempDir(), 'shifted.safetensors');
    writeSafetensors(file, saved.map((x) => {
      if (x.name !== `base_model.model.${name}`) return x;
      const data = f64(x);
      data[index] = data[index]! + delta;
      return { ...x, data: new Uint8Array(data.buffer) };
    }));
    const s = await LepModel.load(dir, { dtype: 'f64' });
    await runJobForTest((p) => s.native.loadLora({ ...lora, file }, p));
    const r = await s.native.lossAndGrads({ tokens, rows: 2, cols: 8, lossMask, params: 'lora' }, null).promise;
    s.dispose();
    return r.loss;
  };
  const probes: [string, number][] = [
    ['model.layers.1.self_attn.q_proj.lora_A.weight', 5],
    ['model.layers.1.self_attn.q_proj.lora_B.weight', 3],
    ['model.layers.1.self_attn.o_proj.lora_B.weight', 17],
    ['model.layers.1.mlp.up_proj.lora_A.weight', 20],
    ['model.layers.1.mlp.up_proj.lora_B.weight', 40],
    ['lm_head.weight', 1200 * 16 + 5],
  ];
  for (const [name, index] of probes) {
    const eps = 1e-5;
    const fd = ((await lossWith(name, index, eps)) - (await lossWith(name, index, -eps))) / (2 * eps);
    const analytic = ref.grads[name]![index]!;
    const rel = Math.abs(fd - analytic) / Math.max(1e-8, Math.abs(fd) + Math.abs(analytic));
    t.true(Math.abs(analytic) > 1e-9, `${name}[${index}] has a non-zero gradient`);
    t.true(rel < 1e-5, `${name}[${index}]: analytic ${analytic} vs finite difference ${fd} (rel ${rel})`);
  }
});

// Serial: this test forks Python, and a fork while another test's job is inside OpenBLAS deadlocks
// (OpenBLAS's pre-fork handler joins its worker threads; seen as a hang of the whole file).
test.serial('lep train --params lora: PEFT adapter layout field by field, merge equals lep lora merge and an independent W + (alpha/r)·B·A', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 3, numAttentionHeads: 4, numKeyValueHeads: 2, seed: 9, embedStd: 0.02 });
  // Chat-like blocks with a loss mask (assistant tokens): random ids, a fixed seed.
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const blocks = Array.from({ length: 16 }, () => Array.from({ length: 33 }, () => 1 + Math.floor(rnd() * 31000)));
  const masks = blocks.map((b) => b.map((_, i) => (i >= 16 ? 1 : 0)));
  const data = join(tempDir(), 'chat.safetensors');
  writeBlocks(data, blocks, masks);
  const out = join(tempDir(), 'lora-run');
  const run = await trainModel(dir, out, { data, params: 'lora', lora: { rank: 4, alpha: 8, targets: ['q_proj', 'v_proj', 'gate_proj'], layers: 'first-last', modulesToSave: ['embed_tokens'], seed: 1 }, steps: 4, batchSize: 4, lr: 1e-2, warmupSteps: 1 });
  t.is(run.head.gradientRows, 0, 'the untied head is frozen: no product spent on its gradient');

  // adapter_config.json: PEFT's LoraConfig fields (peft docs "PEFT checkpoint format", tuners/lora/config.py)
  const cfg = JSON.parse(readFileSync(join(out, 'adapter', 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
  t.is(cfg.peft_type, 'LORA');
  t.is(cfg.task_type, 'CAUSAL_LM');
  t.is(cfg.r, 4);
  t.is(cfg.lora_alpha, 8);
  t.is(cfg.lora_dropout, 0);
  t.deepEqual(cfg.target_modules, ['q_proj', 'v_proj', 'gate_proj']);
  t.deepEqual(cfg.layers_to_transform, [0, 2]);
  t.is(cfg.layers_pattern, 'layers');
  t.deepEqual(cfg.modules_to_save, ['embed_tokens']);
  t.is(cfg.bias, 'none');
  t.is(cfg.fan_in_fan_out, false);
  t.is(cfg.use_rslora, false);
  t.is(cfg.use_dora, false);
  t.is(cfg.inference_mode, true);
  t.is(cfg.base_model_name_or_path, dir);
  t.deepEqual(readAdapterConfig(join(out, 'adapter')), { rank: 4, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj', 'gate_proj'], layers: [0, 2], modulesToSave: ['embed_tokens'] });

  // adapter_model.safetensors: "base_model.model." + module + ".lora_A.weight" (r, in) / ".lora_B.weight" (out, r)
  const tensors = readSafetensors(join(out, 'adapter', 'adapter_model.safetensors'));
  const shapes = Object.fromEntries(tensors.map((x) => [x.name, x.shape]));
  const inter = (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { intermediate_size: number }).intermediate_size;
  const want: Record<string, number[]> = { 'base_model.model.model.embed_tokens.weight': [32000, 32] };
  for (const l of [0, 2]) {
    want[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_A.weight`] = [4, 32];
    want[`base_model.model.model.layers.${l}.self_attn.q_proj.lora_B.weight`] = [32, 4];
    want[`base_model.model.model.layers.${l}.self_attn.v_proj.lora_A.weight`] = [4, 32];
    want[`base_model.model.model.layers.${l}.self_attn.v_proj.lora_B.weight`] = [16, 4];
    want[`base_model.model.model.layers.${l}.mlp.gate_proj.lora_A.weight`] = [4, 32];
    want[`base_model.model.model.layers.${l}.mlp.gate_proj.lora_B.weight`] = [inter, 4];
  }
  t.deepEqual(shapes, want);
  t.deepEqual(new Set(tensors.map((x) => x.dtype)), new Set(['F32']));

  // The run's merged model = lep lora merge of the adapter onto the start model, byte for byte.
  const merged = join(tempDir(), 'merged');
  t.deepEqual(await mergeAdapter(dir, join(out, 'adapter'), merged), { out: merged, rank: 4, alpha: 8, alphaScale: 1, mergedScale: 2 }, 'what was merged, at which scale');
  const a = new Map(readSafetensors(join(out, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  const b = new Map(readSafetensors(join(merged, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  for (const [name, bytes] of a) t.true(bytes.equals(b.get(name)!), `${name}: run output vs lep lora merge`);
  // The command says the same (it printed only the folders).
  const said = execFileSync(process.execPath, [LEP_CLI, 'lora', 'merge', dir, join(out, 'adapter'), '--out', join(tempDir(), 'cli'), '--alpha-scale', '4'], { encoding: 'utf8' });
  t.regex(said, /merged \(rank 4, alpha 8 \/ 4\): W \+= 0\.5000 B·A$/m);
  // Untargeted tensors are untouched; targeted ones moved.
  const start = new Map(readSafetensors(join(dir, 'model.safetensors')).map((x) => [x.name, Buffer.from(x.data)]));
  t.true(start.get('model.layers.1.self_attn.q_proj.weight')!.equals(a.get('model.layers.1.self_attn.q_proj.weight')!), 'layer 1 has no adapter');
  t.true(start.get('model.layers.0.self_attn.k_proj.weight')!.equals(a.get('model.layers.0.self_attn.k_proj.weight')!), 'k_proj is not a target');
  t.true(start.get('lm_head.weight')!.equals(a.get('lm_head.weight')!), 'lm_head is not trained');
  t.false(start.get('model.layers.2.mlp.gate_proj.weight')!.equals(a.get('model.layers.2.mlp.gate_proj.weight')!));
  t.false(start.get('model.embed_tokens.weight')!.equals(a.get('model.embed_tokens.weight')!));

  // Independent merge in PyTorch from the files alone.
  const script = `
import sys, torch
sys.path.insert(0, ${JSON.stringify(join(import.meta.dirname, '..', '..', '..', 'scripts'))})
from safetensors_io import read_safetensors
base = read_safetensors(sys.argv[1], True); ad = read_safetensors(sys.argv[2], True); out = read_safetensors(sys.argv[3], True)
worst = 0.0
for name, w in base.items():
    want = w.clone()
    mod = name[:-len('.weight')]
    if 'base_model.model.' + mod + '.lora_A.weight' in ad:
        A = ad['base_model.model.' + mod + '.lora_A.weight']; B = ad['base_model.model.' + mod + '.lora_B.weight']
        want = w + (8 / 4) * (B @ A)
    if 'base_model.model.' + name in ad:
        want = ad['base_model.model.' + name]
    worst = max(worst, (want - out[name]).abs().max().item())
print(worst)
`;
  const worst = Number(execFileSync('/usr/bin/python3', ['-c', script, join(dir, 'model.safetensors'), join(out, 'adapter', 'adapter_model.safetensors'), join(out, 'model.safetensors')], { encoding: 'utf8' }).trim());
  t.true(worst < 1e-6, `PyTorch merge vs lep: max |Δ| ${worst}`);
});

test('a LoRA run with dropout, aborted and resumed, ends bit-identical to an uninterrupted one', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, seed: 4, embedStd: 0.02 });
  const blocks = Array.from({ length: 8 }, (_, i) => Array.from({ length: 17 }, (_, j) => 1 + ((i * 131 + j * 17) % 30000)));
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const opts = { data, params: 'lora' as const, lora: { rank: 2, alpha: 4, dropout: 0.3, seed: 2 }, steps: 6, batchSize: 2, lr: 1e-2, warmupSteps: 1, seed: 5 };
  const straight = join(tempDir(), 'straight');
  await trainModel(dir, straight, opts);
  const interrupted = join(tempDir(), 'interrupted');
  const ctrl = new AbortController();
  const reason = new Error('stop');
  await rejectsAborted(t, trainModel(dir, interrupted, { ...opts, signal: ctrl.signal, onProgress: (e) => { if (e.phase === 'train' && e.done === 2) ctrl.abort(reason); } }), reason);
  const r = await trainModel(dir, interrupted, opts);
  t.truthy(r.resumedFrom);
  for (const f of ['model.safetensors', 'adapter/adapter_model.safetensors']) {
    const x = new Map(readSafetensors(join(straight, f)).map((v) => [v.name, Buffer.from(v.data)]));
    const y = new Map(readSafetensors(join(interrupted, f)).map((v) => [v.name, Buffer.from(v.data)]));
    for (const [name, bytes] of x) t.true(bytes.equals(y.get(name)!), `${f} ${name} differs after resume`);
  }
});

test('lep lora merge of a bf16 model loads it in bf16 and writes the bits a float32 load and merge would (summed in float32, rounded once)', async (t) => {
  const base = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'base');
  const blocks = Array.from({ length: 8 }, (_, i) => Array.from({ length: 17 }, (_, j) => 1 + ((i * 131 + j * 17) % 30000)));
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const run = join(tempDir(), 'run');
  await trainModel(base, run, { data, params: 'lora', lora: { rank: 4, alpha: 8, targets: ['q_proj', 'down_proj'], modulesToSave: ['embed_tokens'], seed: 3 }, steps: 3, batchSize: 2, lr: 1e-2, warmupSteps: 1 });
  const adapter = join(run, 'adapter');
  const merged = join(tempDir(), 'merged');
  await mergeAdapter(base, adapter, merged);
  // The float32 way, by hand: load in float32, adapters into the model, merge, store in bf16.
  const f32 = await LepModel.load(base, { dtype: 'f32' });
  const cfg = readAdapterConfig(adapter);
  await runJobForTest((p) => f32.native.loadLora({ ...cfg, file: join(adapter, ADAPTER_WEIGHTS_FILE) }, p));
  await runJobForTest((p) => f32.native.mergeLora(p));
  const byHand = join(tempDir(), 'by-hand');
  await runJobForTest((p) => f32.native.save({ dir: byHand, dtype: 'bf16' }, p));
  f32.dispose();
  const read = (f: string) => new Map(readSafetensors(f).map((v) => [v.name, { dtype: v.dtype, bytes: Buffer.from(v.data) }]));
  const a = read(join(merged, 'model.safetensors'));
  const b = read(join(byHand, 'model.safetensors'));
  const c = read(join(run, 'model.safetensors'));
  const start = read(join(base, 'model.safetensors'));
  t.is(a.size, b.size);
  for (const [name, x] of b) {
    t.is(a.get(name)!.dtype, 'BF16', name);
    t.true(a.get(name)!.bytes.equals(x.bytes), `${name}: lep lora merge vs the float32 merge`);
    t.true(c.get(name)!.bytes.equals(x.bytes), `${name}: the training run's merged output vs the float32 merge`);
  }
  t.false(a.get('model.layers.0.mlp.down_proj.weight')!.bytes.equals(start.get('model.layers.0.mlp.down_proj.weight')!.bytes), 'a target moved');

  // Written in f32, the bf16 model is merged from a float32 load: the float32 sums themselves.
  const mergedF32 = join(tempDir(), 'merged-f32');
  await mergeAdapter(base, adapter, mergedF32, { dtype: 'f32' });
  const f32Again = await LepModel.load(base, { dtype: 'f32' });
  await runJobForTest((p) => f32Again.native.loadLora({ ...cfg, file: join(adapter, ADAPTER_WEIGHTS_FILE) }, p));
  await runJobForTest((p) => f32Again.native.mergeLora(p));
  const byHandF32 = join(tempDir(), 'by-hand-f32');
  await runJobForTest((p) => f32Again.native.save({ dir: byHandF32, dtype: 'f32' }, p));
  f32Again.dispose();
  const d = read(join(mergedF32, 'model.safetensors'));
  for (const [name, x] of read(join(byHandF32, 'model.safetensors'))) t.true(d.get(name)!.bytes.equals(x.bytes), `${name}: --dtype f32 merge vs the float32 merge`);

  // An adapter whose only tensors are modules to save, skipped: nothing to merge is refused, not a silent no-op.
  const onlySaved = join(tempDir(), 'only-saved.safetensors');
  writeSafetensors(onlySaved, readSafetensors(join(adapter, ADAPTER_WEIGHTS_FILE)).filter((x) => x.name.endsWith('embed_tokens.weight')));
  const m = await LepModel.load(base, { dtype: 'bf16' });
  await t.throwsAsync(runJobForTest((p) => m.native.mergeLoraFile({ rank: 4, alpha: 8, targets: [], modulesToSave: ['embed_tokens'], file: onlySaved, skipModulesToSave: true }, p)),
    { message: /the adapter has nothing to merge: no target projections, and its modules to save are skipped/ });
  m.dispose();
});

test('lep lora merge --dtype bf16 of a float32 model merges from its float32 weights (loaded in bf16 they were rounded before the merge)', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, seed: 6, embedStd: 0.02 });
  const blocks = Array.from({ length: 4 }, (_, i) => Array.from({ length: 17 }, (_, j) => 1 + ((i * 131 + j * 17) % 30000)));
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const run = join(tempDir(), 'run');
  await trainModel(dir, run, { data, params: 'lora', lora: { rank: 2, alpha: 4, targets: ['q_proj'], seed: 1 }, steps: 2, batchSize: 2, lr: 1e-2, warmupSteps: 1 });
  const merged = join(tempDir(), 'merged');
  await mergeAdapter(dir, join(run, 'adapter'), merged, { dtype: 'bf16' });
  const f32 = await LepModel.load(dir, { dtype: 'f32' });
  await runJobForTest((p) => f32.native.loadLora({ ...readAdapterConfig(join(run, 'adapter')), file: join(run, 'adapter', ADAPTER_WEIGHTS_FILE) }, p));
  await runJobForTest((p) => f32.native.mergeLora(p));
  const byHand = join(tempDir(), 'by-hand');
  await runJobForTest((p) => f32.native.save({ dir: byHand, dtype: 'bf16' }, p));
  f32.dispose();
  const a = new Map(readSafetensors(join(merged, 'model.safetensors')).map((v) => [v.name, Buffer.from(v.data)]));
  for (const v of readSafetensors(join(byHand, 'model.safetensors'))) t.true(a.get(v.name)!.equals(Buffer.from(v.data)), `${v.name}: bf16 output of a float32 model's merge`);
});

test('bad input: unknown target, rank above a projection, missing layer, adapter files that disagree with their config', async (t) => {
  const dir = await tinyModel({ hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2 });
  const m = await LepModel.load(dir);
  const add = (o: Partial<NativeLoraOptions>) => runJobForTest((p) => m.native.addLora({ rank: 2, alpha: 4, targets: ['q_proj'], ...o }, p));
  await t.throwsAsync(add({ targets: ['qkv_proj'] }), { message: /LoRA target 'qkv_proj' is not a projection.*\n.*HINT: targets are q_proj/s });
  await t.throwsAsync(add({ rank: 64, targets: ['k_proj'] }), { message: /LoRA rank 64 is larger than k_proj's smaller dimension 16 \(16 x 32\)/ });
  await t.throwsAsync(add({ layers: [2] }), { message: /LoRA layer 2 does not exist: the model has layers 0\.\.1/ });
  t.is(m.native.info().loraParameters, 0, 'a refused config adds nothing');
  await add({});
  await t.throwsAsync(runJobForTest((p) => m.native.save({ dir: join(tempDir(), 'x'), dtype: 'f32' }, p)), { message: /has LoRA adapters: merge them/ });
  const file = join(tempDir(), 'a.safetensors');
  await runJobForTest((p) => m.native.saveLora({ file, dtype: 'f32' }, p));
  m.dispose();

  const n = await LepModel.load(dir);
  await t.throwsAsync(runJobForTest((p) => n.native.loadLora({ rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], file }, p)), { message: /lacks 'base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight'/ });
  await t.throwsAsync(runJobForTest((p) => n.native.loadLora({ rank: 3, alpha: 4, targets: ['q_proj'], file }, p)), { message: /has shape \[2, 32\] but the model needs \[3, 32\]/ });
  await t.throwsAsync(runJobForTest((p) => n.native.loadLora({ rank: 2, alpha: 4, targets: ['q_proj'], layers: [0], file }, p)), { message: /has tensor 'base_model\.model\.model\.layers\.1\.self_attn\.q_proj\.lora_A\.weight' that its adapter_config\.json does not describe/ });
  t.is(n.native.info().loraParameters, 0, 'a refused adapter file leaves the model as it was');
  // Merged straight from the file: the same checks, before any weight changes.
  const before = await logprobs(n);
  await t.throwsAsync(runJobForTest((p) => n.native.mergeLoraFile({ rank: 2, alpha: 4, targets: ['q_proj', 'v_proj'], file }, p)), { message: /lacks 'base_model\.model\.model\.layers\.0\.self_attn\.v_proj\.lora_A\.weight'/ });
  await t.throwsAsync(runJobForTest((p) => n.native.mergeLoraFile({ rank: 3, alpha: 4, targets: ['q_proj'], file }, p)), { message: /has shape \[2, 32\] but the model needs \[3, 32\]/ });
  await t.throwsAsync(runJobForTest((p) => n.native.mergeLoraFile({ rank: 2, alpha: 4, targets: ['q_proj'], layers: [0], file }, p)), { message: /has tensor 'base_model\.model\.model\.layers\.1\.self_attn\.q_proj\.lora_A\.weight' that its adapter_config\.json does not describe/ });
  t.deepEqual(await logprobs(n), before, 'a refused merge leaves the weights as they were');
  n.dispose();

  const adapterDir = join(tempDir(), 'adapter');
  mkdirSync(adapterDir);
  copyFileSync(file, join(adapterDir, 'adapter_model.safetensors'));
  const config = (c: Record<string, unknown>) => writeFileSync(join(adapterDir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'], ...c }));
  config({ use_dora: true });
  t.throws(() => readAdapterConfig(adapterDir), { message: /use_dora = true is not supported\nHINT: lep loads plain PEFT LoRA adapters .*merge_and_unload/ });
  config({ target_modules: '.*q_proj' });
  t.throws(() => readAdapterConfig(adapterDir), { message: /a regular expression is not supported/ });
  config({ peft_type: 'IA3' });
  t.throws(() => readAdapterConfig(adapterDir), { message: /only LORA adapters are supported/ });
  await t.throwsAsync(trainModel(dir, join(tempDir(), 'o'), { data: file, params: 'lora', lora: { rank: 0 } }), { message: /lora\.rank/ });
});

test('an adapter directory is replaced whole: a save that fails after the weights leaves the previous adapter untouched', async (t) => {
  const lora: NativeLoraOptions = { rank: 2, alpha: 4, targets: ['q_proj'], layers: [0], modulesToSave: [], seed: 3 };
  const dir = join(tempDir(), 'adapter');
  const a = await LepModel.load(TOY_INSTRUCT);
  await runJobForTest((p) => a.native.addLora({ ...lora, init: 'random' }, p));
  await saveAdapter(a, lora, dir, TOY_INSTRUCT);
  a.dispose();
  const before = readFileSync(join(dir, ADAPTER_WEIGHTS_FILE));
  const b = await LepModel.load(TOY_INSTRUCT);
  await runJobForTest((p) => b.native.addLora({ ...lora, seed: 4, init: 'random' }, p));
  // The config fails after the native save wrote other weights: before the fix they sat next to the old config.
  await t.throwsAsync(saveAdapter(b, { ...lora, targets: undefined as never }, dir, TOY_INSTRUCT));
  b.dispose();
  t.true(readFileSync(join(dir, ADAPTER_WEIGHTS_FILE)).equals(before), 'the previous adapter is untouched');
  t.deepEqual(readdirSync(join(dir, '..')), ['adapter'], 'no temporary directory left');
  t.is(readAdapterConfig(dir).rank, 2);
});

test('info() beside running LoRA jobs reads a whole snapshot (before or after each job), never a map being changed', async (t) => {
  const m = await LepModel.load(await tinyModel({ hiddenSize: 64, numHiddenLayers: 4, numAttentionHeads: 4, numKeyValueHeads: 2 }));
  const lora: NativeLoraOptions = { rank: 8, alpha: 16, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'], modulesToSave: [], init: 'random', seed: 1 };
  const base = m.native.info();
  await runJobForTest((p) => m.native.addLora(lora, p));
  const withLora = m.native.info().loraParameters;
  t.true(withLora > 0);
  await runJobForTest((p) => m.native.mergeLora(p));
  t.is(m.native.info().loraParameters, 0, 'the snapshot is refreshed before the job settles');
  const seen = new Set<number>();
  let reads = 0;
  let running = true;
  // info() from the event loop as often as it turns, while jobs add and merge adapters on their thread.
  const poll = (async () => {
    while (running) {
      const i = m.native.info();
      seen.add(i.loraParameters);
      t.is(i.parameters, base.parameters);
      reads++;
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let k = 0; k < 20; k++) {
    await runJobForTest((p) => m.native.addLora({ ...lora, seed: k }, p));
    t.is(m.native.info().loraParameters, withLora);
    await runJobForTest((p) => m.native.mergeLora(p));
  }
  running = false;
  await poll;
  t.true(reads > 20, `${reads} reads`);
  t.deepEqual([...seen].filter((n) => n !== 0 && n !== withLora), [], 'only the counts before and after a job');
  m.dispose();
});
