/**
 * Peak memory of making and loading a bf16 model, measured in a child process (a fresh peak RSS, no
 * neighbouring test's memory) against the file size: `model create --dtype bf16` draws the weights into
 * a bf16 model (holding them in f32 and converting at save peaked at 3x the file: 48 GB for LLaMa-3-8B
 * shapes), and loading a bf16 checkpoint in bf16 copies each tensor straight into its parameter (through
 * an f32 copy, the largest tensor in f32 was added to the peak: 2 GiB at LLaMa-3-8B shapes).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { readSafetensors } from '../../ts/checkpoint/safetensors.js';
import { createModel, LepModel, mistralTokenizerDir } from '../../ts/index.js';
import { runJob } from '../../ts/binding/runJob.js';
import { saveAdapter } from '../../ts/lora/index.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { LEP_CLI, memoryCgroup, tempDir, underUlimit } from '../helpers.js';

const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));
const TOY = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'base');

// The children's common start: lep, and kb(key), a /proc/self/status field in bytes.
const PRELUDE = `
import { readFileSync } from 'node:fs';
const lep = await import(process.argv[1]);
const kb = (key) => Number(new RegExp(key + ':\\\\s+(\\\\d+) kB').exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
`;

// Loads the addon first, so the measured growth is the model's (and the job's) alone.
const CHILD = `${PRELUDE}const m = await lep.LepModel.load(process.argv[2]).catch(() => undefined);
const before = kb('VmHWM');
await lep.createModel(process.argv[3], { tokenizerDir: lep.mistralTokenizerDir(), hiddenSize: 1024, intermediateSize: 2816,
  numHiddenLayers: 8, numAttentionHeads: 8, dtype: 'bf16' });
console.log(JSON.stringify({ before, peak: kb('VmHWM') }));
`;

// Measured on a 346 MiB file: 2.58x (the mmap'ed file, the parameters and the tokenizer), 3.02x when
// each tensor went through an f32 copy.
const LOAD_LIMIT = 2.8;

test('model create in bf16 never holds an f32 copy of the model', async (t) => {
  const dir = tempDir();
  const out = join(dir, 'model');
  // A missing model dir: loading fails, but the addon (libtorch) is loaded by then.
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, INDEX, join(dir, 'none'), out], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const { before, peak } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; peak: number };
  const bf16Bytes = statSync(join(out, 'model.safetensors')).size;
  const grown = peak - before;
  t.log(`file ${(bf16Bytes / 2 ** 20).toFixed(0)} MiB, peak RSS grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
  // Measured: 1.96x the file with the model drawn in bf16 (the weights, the largest tensor drawn in f32
  // and the allocator's slack), 3.57x when it was held in f32 and converted at save.
  t.true(grown < 2.5 * bf16Bytes, `peak RSS grew by ${grown} bytes for a ${bf16Bytes}-byte bf16 model`);
});

// A model whose embeddings are most of it, so that one f32 copy of the largest tensor shows.
// A toy model's load first: what the first load of any model maps once (libtorch's lazily loaded pages;
// ~180 MiB more with Debian's CUDA libtorch) is not the load under test's.
const LOAD_CHILD = `${PRELUDE}(await lep.LepModel.load(process.argv[3], { dtype: 'bf16' })).dispose();
const before = kb('VmHWM');
const m = await lep.LepModel.load(process.argv[2], { dtype: 'bf16' });
console.log(JSON.stringify({ before, peak: kb('VmHWM') }));
m.dispose();
`;

test('loading a bf16 checkpoint in bf16 with copies (LEP_MMAP=0) holds no f32 copy of a tensor', async (t) => {
  const out = join(tempDir(), 'model');
  // Made here: the child's peak is the load's alone.
  await createModel(out, { tokenizerDir: mistralTokenizerDir(), hiddenSize: 2048, numHiddenLayers: 1, numAttentionHeads: 16, dtype: 'bf16' });
  // The copying path: by default these weights stay in the mapped file (next test).
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', LOAD_CHILD, INDEX, out, TOY], { encoding: 'utf8', env: { ...process.env, LEP_MMAP: '0' } });
  t.is(r.status, 0, r.stderr);
  const { before, peak } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; peak: number };
  const bf16Bytes = statSync(join(out, 'model.safetensors')).size;
  const grown = peak - before;
  t.log(`file ${(bf16Bytes / 2 ** 20).toFixed(0)} MiB, peak RSS grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
  t.true(grown < LOAD_LIMIT * bf16Bytes, `peak RSS grew by ${grown} bytes loading a ${bf16Bytes}-byte bf16 model`);
});

// Loads a model in float32 and saves it in bf16 (as a LoRA merge or a float32 training of a bf16 model does).
const SAVE_CHILD = `${PRELUDE}const { saveModelDir } = await import(process.argv[3]);
const m = await lep.LepModel.load(process.argv[2], { dtype: 'f32' });
(await import('node:fs')).writeFileSync('/proc/self/clear_refs', '5');  // the peak from here on: the load's is higher
const before = kb('VmHWM');
await saveModelDir(m, process.argv[2], process.argv[4], { dtype: 'bf16' });
console.log(JSON.stringify({ before, peak: kb('VmHWM') }));
m.dispose();
`;

test('saving a float32 model in bf16 converts one tensor at a time: no bf16 copy of the whole model', async (t) => {
  const dir = tempDir();
  const src = join(dir, 'model');
  await createModel(src, { tokenizerDir: mistralTokenizerDir(), hiddenSize: 1024, intermediateSize: 2816, numHiddenLayers: 8, numAttentionHeads: 8, dtype: 'bf16' });
  const out = join(dir, 'saved');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', SAVE_CHILD, INDEX, src, fileURLToPath(new URL('../../ts/checkpoint/index.js', import.meta.url)), out], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const { before, peak } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; peak: number };
  const bf16Bytes = statSync(join(out, 'model.safetensors')).size;
  t.true(readFileSync(join(out, 'model.safetensors')).equals(readFileSync(join(src, 'model.safetensors'))), 'bf16 -> f32 -> bf16 is exact');
  const grown = peak - before;
  t.log(`file ${(bf16Bytes / 2 ** 20).toFixed(0)} MiB, peak RSS grew ${(grown / 2 ** 20).toFixed(0)} MiB while saving`);
  // Its largest tensor is a fifth of the file; converted all at once before writing, the peak grew by the whole file.
  t.true(grown < 0.6 * bf16Bytes, `peak RSS grew by ${grown} bytes saving a ${bf16Bytes}-byte bf16 model`);
});

// lep lora merge of a bf16 model in a child: its peak RSS growth, after loading the addon.
const MERGE_CHILD = `${PRELUDE}const { mergeAdapter } = await import(process.argv[3]);
await lep.LepModel.load(process.argv[2] + '-none').catch(() => undefined);
const before = kb('VmHWM');
await mergeAdapter(process.argv[2], process.argv[4], process.argv[5]);
console.log(JSON.stringify({ before, peak: kb('VmHWM') }));
`;

test('lep lora merge of a bf16 model holds no float32 copy of it (an 8B model took 32 GB)', async (t) => {
  const dir = tempDir();
  const src = join(dir, 'model');
  await createModel(src, { tokenizerDir: mistralTokenizerDir(), hiddenSize: 1024, intermediateSize: 2816, numHiddenLayers: 8, numAttentionHeads: 8, dtype: 'bf16' });
  // A random adapter on every q_proj (B drawn too, so that the merge changes them).
  const lora = { rank: 8, alpha: 16, targets: ['q_proj'], modulesToSave: [], init: 'random' as const };
  const m = await LepModel.load(src, { dtype: 'bf16' });
  await runJob((p) => m.native.addLora({ ...lora, seed: 2 }, p), {});
  await saveAdapter(m, lora, join(dir, 'adapter'), src);
  m.dispose();
  const out = join(dir, 'merged');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', MERGE_CHILD, INDEX, src, fileURLToPath(new URL('../../ts/lora/index.js', import.meta.url)), join(dir, 'adapter'), out], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const { before, peak } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; peak: number };
  const bf16Bytes = statSync(join(src, 'model.safetensors')).size;
  const grown = peak - before;
  t.log(`file ${(bf16Bytes / 2 ** 20).toFixed(0)} MiB, peak RSS grew ${(grown / 2 ** 20).toFixed(0)} MiB merging`);
  // Measured on a 321 MiB file: 505 MiB loaded in bf16 (the file's pages, all read by the save, the
  // tokenizer, one q_proj's copy-on-write), 1190 MiB through a float32 load.
  t.true(grown < 2.2 * bf16Bytes, `peak RSS grew by ${grown} bytes merging into a ${bf16Bytes}-byte bf16 model`);
});

// Loads a model, scores one sequence, and reports the anonymous resident set around both.
const MAP_CHILD = `${PRELUDE}await lep.LepModel.load(process.argv[2] + '-none').catch(() => undefined);
const before = kb('RssAnon');
const m = await lep.LepModel.load(process.argv[2], { dtype: 'bf16' });
const loaded = kb('RssAnon');
const [s] = await m.score([Array.from({ length: 64 }, (_, i) => (i * 7919) % 32000)]);
console.log(JSON.stringify({ loaded: loaded - before, scored: kb('RssAnon') - before, logprobs: Array.from(s.tokenLogprobs) }));
m.dispose();
`;

test('a CPU model stored in its compute dtype stays in its mmap\'ed file: no anonymous copy, the same scores as a copied one, and writes never reach the file', async (t) => {
  const out = join(tempDir(), 'model');
  await createModel(out, { tokenizerDir: mistralTokenizerDir(), hiddenSize: 2048, numHiddenLayers: 1, numAttentionHeads: 16, dtype: 'bf16' });
  const file = join(out, 'model.safetensors');
  const bytes = statSync(file).size;
  const child = (env: Record<string, string>) => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', MAP_CHILD, INDEX, out], { encoding: 'utf8', env: { ...process.env, ...env } });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { loaded: number; scored: number; logprobs: number[] };
  };
  const mapped = child({ LEP_MMAP: '1' });
  const copied = child({ LEP_MMAP: '0' });
  t.log(`file ${(bytes / 2 ** 20).toFixed(0)} MiB; anonymous memory after load and a score: mapped ${(mapped.loaded / 2 ** 20).toFixed(0)} / ${(mapped.scored / 2 ** 20).toFixed(0)} MiB, copied ${(copied.loaded / 2 ** 20).toFixed(0)} / ${(copied.scored / 2 ** 20).toFixed(0)} MiB`);
  // Measured on a 346 MiB file: mapped 86 / 87 MiB, copied 429 / 438 MiB (both load the tokenizer too).
  t.true(copied.loaded - mapped.loaded > 0.9 * bytes, `the copy holds the weights (${copied.loaded} bytes), the mapping does not (${mapped.loaded})`);
  t.true(mapped.scored - mapped.loaded < 0.1 * bytes, `reading the mapped weights copies none of them (${mapped.scored - mapped.loaded} bytes)`);
  t.deepEqual(mapped.logprobs, copied.logprobs, 'the same weights, the same scores to the bit');

  // Training writes into the mapped embeddings (AdamW in place): the written pages are this process's copy.
  const hash = () => createHash('sha256').update(readFileSync(file)).digest('hex');
  const before = hash();
  // In this process too (a suite run under LEP_MMAP=0 would otherwise test the copy).
  const inherited = process.env.LEP_MMAP;
  process.env.LEP_MMAP = '1';
  t.teardown(() => (inherited === undefined ? delete process.env.LEP_MMAP : (process.env.LEP_MMAP = inherited)));
  const tok = Tokenizer.fromDir(out);
  const { blocks } = await packDocuments(Array(16).fill(['Привет, мир! Hello world, the quick brown fox.']), tok, { seqLen: 16 });
  const data = join(tempDir(), 'blocks.safetensors');
  writeBlocks(data, blocks);
  const trained = join(tempDir(), 'trained');
  await trainModel(out, trained, { data, params: 'embeddings', dtype: 'bf16', steps: 2, batchSize: 2, lr: 1e-2, warmupSteps: 0 });
  t.is(hash(), before, 'the checkpoint is unchanged');
  const embed = (dir: string) => readSafetensors(join(dir, 'model.safetensors')).find((x) => x.name === 'model.embed_tokens.weight')!.data;
  t.false(Buffer.from(embed(trained)).equals(Buffer.from(embed(out))), 'training moved the embeddings (the check is not vacuous)');

  const bad = spawnSync(process.execPath, ['--input-type=module', '-e', MAP_CHILD, INDEX, out], { encoding: 'utf8', env: { ...process.env, LEP_MMAP: 'yes' } });
  t.not(bad.status, 0);
  t.regex(bad.stderr, /LEP_MMAP is 'yes'; it must be 1 .* or 0[\s\S]*HINT: unset LEP_MMAP/);
});

// Loads the model mapped (LEP_MMAP=1) and reports its data segments after (VmData: the private writable
// memory that RLIMIT_DATA limits, and what vm.overcommit_memory=2 charges). With argv[3], a data limit is
// in force: then the same model again copied, and again mapped, must each fail for memory, cleanly.
const LIMIT_CHILD = `${PRELUDE}await lep.LepModel.load(process.argv[2] + '-none').catch(() => undefined);
const m = await lep.LepModel.load(process.argv[2], { dtype: 'bf16' });
const [s] = await m.score([[1, 2, 3, 4, 5]]);
const out = { loaded: kb('VmData'), logprob: s.tokenLogprobs[2], again: [] };
if (process.argv[3]) {
  for (const mmap of ['0', '1']) {
    process.env.LEP_MMAP = mmap;
    out.again.push(await lep.LepModel.load(process.argv[2], { dtype: 'bf16' }).then(() => 'loaded', (e) => ({ code: e.code, message: e.message })));
  }
}
console.log(JSON.stringify(out));
`;

test('a mapped load is charged once the model, not twice, against a data limit (ulimit -d, strict overcommit)', async (t) => {
  const out = join(tempDir(), 'model');
  await createModel(out, { tokenizerDir: mistralTokenizerDir(), hiddenSize: 2048, numHiddenLayers: 1, numAttentionHeads: 16, dtype: 'bf16' });
  const bytes = statSync(join(out, 'model.safetensors')).size;
  const child = (limit?: number) => {
    // ulimit -d (KiB) sets RLIMIT_DATA.
    const node = [process.execPath, '--input-type=module', '-e', LIMIT_CHILD, INDEX, out];
    const [file, args] = limit === undefined ? [node[0]!, node.slice(1)] : underUlimit(`-d ${Math.floor(limit / 1024)}`, [...node, 'limited']);
    const r = spawnSync(file, args, { encoding: 'utf8', env: { ...process.env, LEP_MMAP: '1' } });
    t.is(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as { loaded: number; logprob: number; again: ({ code: string; message: string } | string)[] };
  };
  const free = child();
  // Room for 0.4x the model above what the load holds after it: the parameters allocated before the
  // mapping replaced them (1x) failed here with LEP_TORCH "DefaultCPUAllocator: can't allocate memory".
  const limited = child(free.loaded + 0.4 * bytes);
  t.log(`file ${(bytes / 2 ** 20).toFixed(0)} MiB; data segments after a mapped load ${(free.loaded / 2 ** 20).toFixed(0)} MiB; limit ${((free.loaded + 0.4 * bytes) / 2 ** 20).toFixed(0)} MiB`);
  t.is(limited.logprob, free.logprob, 'loaded and scored under the limit');
  // The limit binds: a second copy (LEP_MMAP=0) or mapping of the model does not fit, and each says so.
  t.is(limited.again.length, 2);
  for (const [i, failed] of limited.again.entries()) {
    t.like(failed, { code: 'LEP_OUT_OF_MEMORY' }, `second load, ${i ? 'mapped' : 'copied'}`);
    if (typeof failed === 'string') continue;
    t.regex(failed.message, i ? /cannot map .*model\.safetensors \(\d+ bytes\) into memory/ : /^lep's CPU allocator: cannot allocate memory: you tried to allocate \d+ bytes \(mmap: Cannot allocate memory\)/);
    t.regex(failed.message, /HINT: free memory, or raise the limit this process met \(ulimit -v or -d/);
  }
});

test('model create refuses a model it cannot hold under a cgroup memory limit, instead of being killed while drawing it', async (t) => {
  const cap = 512 * 2 ** 20;
  const cgroup = memoryCgroup(cap);
  if (typeof cgroup === 'string') return t.fail(cgroup);
  t.teardown(cgroup.remove);
  const dir = tempDir();
  const create = (out: string, hidden: string) =>
    spawnSync('bash', ['-c', `echo $$ > ${cgroup.procs} && exec "$0" "$@"`, process.execPath, LEP_CLI, 'model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', join(dir, out), '--hidden-size', hidden, '--layers', '2', '--heads', '8'], { encoding: 'utf8' });
  // 32000 x 4096 embeddings, untied, and two layers: 0.66 B parameters, about 3 GiB in f32.
  const big = create('big', '4096');
  t.is(big.signal, null, `not killed: ${big.stderr}`);
  t.is(big.status, 1, big.stderr);
  t.regex(big.stderr, /creating a random model of \d+\.\d+ B parameters in f32 needs at least \d+\.\d GiB .*; this process may use 512\.0 MiB \(its cgroup's memory limit/);
  t.regex(big.stderr, /HINT: --dtype bf16 halves the weights; fewer --layers or a smaller --hidden-size/);
  t.regex(big.stderr, /\(code LEP_OUT_OF_MEMORY\)/);
  t.false(existsSync(join(dir, 'big')));
  // What fits is made there.
  const small = create('small', '64');
  t.is(small.status, 0, small.stderr);
  t.true(existsSync(join(dir, 'small', 'model.safetensors')));
});

test('lep info says whether loads map the weights, as LEP_MMAP is now', (t) => {
  const info = (value: string | undefined) => {
    const env = { ...process.env };
    if (value === undefined) delete env.LEP_MMAP;
    else env.LEP_MMAP = value;
    const r = spawnSync(process.execPath, [LEP_CLI, 'info'], { encoding: 'utf8', env });
    t.is(r.status, 0, r.stderr);
    return /^weights {7}(.*)$/m.exec(r.stdout)?.[1] ?? `no weights line in:\n${r.stdout}`;
  };
  t.regex(info(undefined), /^mapped: .* \(LEP_MMAP unset\); LEP_MMAP=0 copies them$/);
  t.regex(info('1'), /^mapped: .* \(LEP_MMAP=1\)/);
  t.regex(info('0'), /^copied into memory \(LEP_MMAP=0\); unset LEP_MMAP to map them$/);
  t.regex(info('yes'), /^LEP_MMAP='yes' is refused by every model load/);
});
