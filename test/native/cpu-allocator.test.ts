// lep's CPU allocator (cpp/core/cpu_allocator.h): a model's large tensors live in mappings a child process
// never gets (MADV_DONTFORK: the kernel's "dc" flag in /proc/self/smaps), on huge pages where the kernel
// lets a mapping ask ("hg"); a training job's blocks are given back when it ends; the numbers are the same
// as with libtorch's own allocator; LEP_CPU_ALLOCATOR chooses. Each case runs in its own process, since
// the variable is read when lep.node loads.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import test from 'ava';

import { LEP_CLI, tempDir } from '../helpers.js';
import { writeBlocks } from '../../ts/train/packBlocks.js';

const INDEX = fileURLToPath(new URL('../../ts/index.js', import.meta.url));
const TOY = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family', 'base');
// The kernel's transparent huge page mode (undefined where the kernel has none).
const THP = (() => {
  try {
    return /\[(\w+)\]/.exec(readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))?.[1];
  } catch {
    return undefined;
  }
})();

// Loads the toy model in float32 (its bf16 checkpoint converted: 12 MB embeddings and head, allocated),
// reads its own smaps, trains 3 steps (reading smaps at each), reads them after, and prints what it saw
// with a score and the losses.
const CHILD = `
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
const lep = await import(process.argv[1]);
const [model, data, out] = process.argv.slice(2);
// Anonymous kB in lep's blocks: mappings a child does not get ("dc") and that are not V8's (which marks
// its heap so too, reserved with MAP_NORESERVE: "nr"); of those, in ones asking for huge pages ("hg").
const smaps = () => {
  const r = { blocks: 0, hugeAsked: 0 };
  let anon = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    const m = /^Anonymous:\\s+(\\d+) kB/.exec(line);
    if (m) anon = Number(m[1]);
    if (!line.startsWith('VmFlags:')) continue;
    const flags = line.split(/\\s+/);
    if (flags.includes('dc') && !flags.includes('nr')) { r.blocks += anon; if (flags.includes('hg')) r.hugeAsked += anon; }
    anon = 0;
  }
  return r;
};
lep.setThreads(1);
const m = await lep.LepModel.load(model, { dtype: 'f32' });
const loaded = smaps();
const child = spawnSync('true').status;  // a child still starts and runs
// A model in its stored dtype (bf16) stays in its checkpoint's pages, mapped copy-on-write: are they marked?
const inPlace = await lep.LepModel.load(model, { dtype: 'bf16' });
const mappedFlags = [];
let path = '';
for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
  if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) path = line.trim().split(/\\s+/)[5] ?? '';
  else if (line.startsWith('VmFlags:') && path.endsWith('model.safetensors')) mappedFlags.push(line.includes(' dc'));
}
inPlace.dispose();
const [scored] = await m.score([[1, 300, 5000, 17, 29, 31000, 8]]);
m.dispose();
// Sampled at each step of a job that cannot end by itself first (its progress events arrive after the
// steps they report, maybe after a short job's end): stopped after three.
let during = { blocks: 0, hugeAsked: 0 };
const losses = [];
const stop = new AbortController();
await lep.trainModel(model, out, { data, steps: 100000, batchSize: 2, lr: 1e-3, warmupSteps: 0, seed: 3, signal: stop.signal,
  onProgress: (e) => {
    if (e.phase !== 'train') return;
    losses.push(e.loss);
    const now = smaps();
    if (now.blocks > during.blocks) during = now;
    if (losses.length === 3) stop.abort();
  } }).catch((e) => { if (e.code !== 'LEP_ABORTED') throw e; });
// The job gives its blocks back as its thread ends, just after its promise settles.
let after = smaps();
for (let i = 0; i < 100 && after.blocks >= during.blocks / 10; i++) { await new Promise((r) => setTimeout(r, 100)); after = smaps(); }
console.log(JSON.stringify({ allocator: lep.lepInfo().allocator, loaded, child, mappedFlags, during, after, logprobs: Array.from(scored.tokenLogprobs), losses: losses.slice(0, 3) }));
`;

interface Smaps { blocks: number; hugeAsked: number }
interface Seen { allocator: string; loaded: Smaps; child: number; mappedFlags: boolean[]; during: Smaps; after: Smaps; logprobs: number[]; losses: number[] }

function run(env: NodeJS.ProcessEnv): { seen?: Seen; stderr: string; status: number | null } {
  const dir = tempDir();
  try {
    const data = join(dir, 'blocks.safetensors');
    let s = 5;
    writeBlocks(data, Array.from({ length: 6 }, () => Array.from({ length: 65 }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 32000)));
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, INDEX, TOY, data, join(dir, 'out')],
      { encoding: 'utf8', timeout: 240_000, killSignal: 'SIGKILL', env: { ...process.env, ...env } });
    const seen = r.status === 0 ? (JSON.parse(r.stdout.trim().split('\n').pop()!) as Seen) : undefined;
    return { seen, stderr: r.stderr, status: r.status };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// One process per allocator, run by the first test that needs it.
const runs = new Map<string, ReturnType<typeof run>>();
const runWith = (allocator: string) => runs.get(allocator) ?? runs.set(allocator, run({ LEP_CPU_ALLOCATOR: allocator })).get(allocator)!;

test("lep's allocator: a float32 model's large tensors are in mappings a child process never gets, on huge pages where the kernel allows", (t) => {
  const lepRun = runWith('');
  t.is(lepRun.status, 0, lepRun.stderr);
  const seen = lepRun.seen!;
  t.regex(seen.allocator, /^lep's: blocks of 1 MiB or more mapped apart, never copied into child processes/);
  t.is(seen.child, 0);
  // Embeddings and LM head in float32: 32000 x 96 x 4 bytes = 12 000 kB each (at least one of them if tied).
  t.true(seen.loaded.blocks >= 12_000, `anonymous in lep's blocks: ${seen.loaded.blocks} kB`);
  if (THP === 'madvise' || THP === 'always') t.true(seen.loaded.hugeAsked > 0, 'blocks of 2 MiB or more ask for huge pages');
  // A model loaded in its stored dtype over the checkpoint's mapping: the pages a write would copy are marked too.
  t.true(seen.mappedFlags.length > 0, 'the checkpoint is mapped');
  t.true(seen.mappedFlags.every(Boolean), 'its mapping is never copied into a child');
});

test("lep's allocator: a training job's parameters, gradients and moments are never copied into a child, and are given back when it ends", (t) => {
  const lepRun = runWith('');
  const seen = lepRun.seen!;
  t.truthy(seen, lepRun.stderr);
  // The job's own float32 model (loaded anew from the bf16 checkpoint), its gradients and AdamW's moments: at
  // least 4 x the 12 000 kB of the embeddings.
  t.true(seen.during.blocks >= 48_000, `anonymous in lep's blocks during training: ${seen.during.blocks} kB`);
  t.true(seen.after.blocks < seen.during.blocks / 10, `after the job: ${seen.after.blocks} kB still in lep's blocks`);
});

test("libtorch's allocator (LEP_CPU_ALLOCATOR=libtorch) gives the same losses and log-probabilities, bit for bit", (t) => {
  const lepRun = runWith(''), torchRun = runWith('libtorch');
  t.is(torchRun.status, 0, torchRun.stderr);
  t.truthy(lepRun.seen, lepRun.stderr);
  const a = lepRun.seen!, b = torchRun.seen!;
  t.regex(b.allocator, /^libtorch's own \(LEP_CPU_ALLOCATOR=libtorch\)/);
  t.is(b.loaded.blocks, 0, "no block of lep's allocator");
  t.deepEqual(a.losses, b.losses);
  t.deepEqual(a.logprobs, b.logprobs);
});

// While a training job runs (its own blocks reused step after step), another model scores rows of four
// lengths: their blocks are kept, and go back once none has been reused for 10 s, though the job runs on.
const OVERLAP_CHILD = `
import { readFileSync } from 'node:fs';
const lep = await import(process.argv[1]);
const [model, data, out] = process.argv.slice(2);
const blocks = () => {
  let anon = 0, kB = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\\n')) {
    const m = /^Anonymous:\\s+(\\d+) kB/.exec(line);
    if (m) anon = Number(m[1]);
    if (!line.startsWith('VmFlags:')) continue;
    const flags = line.split(/\\s+/);
    if (flags.includes('dc') && !flags.includes('nr')) kB += anon;
    anon = 0;
  }
  return kB;
};
lep.setThreads(1);
const scorer = await lep.LepModel.load(model, { dtype: 'f32' });
const stop = new AbortController();
let steps = 0;
const training = lep.trainModel(model, out, { data, steps: 100000, batchSize: 2, lr: 1e-3, warmupSteps: 0, seed: 3, signal: stop.signal,
  onProgress: (e) => { if (e.phase === 'train') steps++; } }).catch((e) => { if (e.code !== 'LEP_ABORTED') throw e; });
while (steps < 2) await new Promise((r) => setTimeout(r, 50));
const before = blocks();
for (const n of [200, 180, 160, 140]) await scorer.score([Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 31000))]);
const kept = blocks();
const t0 = Date.now();
let later = kept;
while (Date.now() - t0 < 60000 && later > before + (kept - before) / 4) { await new Promise((r) => setTimeout(r, 500)); later = blocks(); }
const seconds = (Date.now() - t0) / 1000;
stop.abort();
await training;
console.log(JSON.stringify({ before, kept, later, seconds }));
`;

test("lep's allocator: blocks a finished job freed are given back after 10 s unused, though another job still runs", (t) => {
  const dir = tempDir();
  const data = join(dir, 'blocks.safetensors');
  let s = 5;
  writeBlocks(data, Array.from({ length: 6 }, () => Array.from({ length: 65 }, () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) % 32000)));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', OVERLAP_CHILD, INDEX, TOY, data, join(dir, 'out')],
    { encoding: 'utf8', timeout: 240_000, killSignal: 'SIGKILL', env: { ...process.env, LEP_CPU_ALLOCATOR: '' } });
  t.is(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stdout.trim().split('\n').pop()!) as { before: number; kept: number; later: number; seconds: number };
  t.log(seen);
  // Measured: 160 MiB beside the training, +86 MiB kept after the scores, back to 160 MiB after 10 s.
  t.true(seen.kept - seen.before > 40_000, `the scores' blocks are kept for reuse (${seen.kept - seen.before} kB)`);
  t.true(seen.later <= seen.before + (seen.kept - seen.before) / 4, `and given back while the training runs (${seen.later - seen.before} kB left after ${seen.seconds} s)`);
  t.true(seen.seconds >= 5, `not at once (${seen.seconds} s; the last score ended just before the count began)`);
});

test('lep info prints the allocator in use', (t) => {
  const line = (allocator: string) => {
    const r = spawnSync(process.execPath, [LEP_CLI, 'info'], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LEP_CPU_ALLOCATOR: allocator } });
    t.is(r.status, 0, r.stderr);
    return /^allocator {5}(.*)$/m.exec(r.stdout)?.[1] ?? `no allocator line in:\n${r.stdout}`;
  };
  t.regex(line(''), new RegExp(`^lep's: .*\\(transparent_hugepage: ${THP ?? 'unknown'}\\); LEP_CPU_ALLOCATOR=libtorch for libtorch's own$`));
  t.regex(line('libtorch'), /^libtorch's own \(LEP_CPU_ALLOCATOR=libtorch\)/);
});

test('an unknown LEP_CPU_ALLOCATOR is said on stderr and in lep info, and libtorch\'s allocator runs', (t) => {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const lep = await import(process.argv[1]); console.log(lep.lepInfo().allocator);`, INDEX],
    { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LEP_CPU_ALLOCATOR: 'jemalloc' } });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /^lep: LEP_CPU_ALLOCATOR is 'jemalloc', which is neither lep nor libtorch: libtorch's own allocator runs\. Unset it for lep's\.$/m);
  t.regex(r.stdout, /^libtorch's own: LEP_CPU_ALLOCATOR is 'jemalloc', which is neither lep nor libtorch \(unset it for lep's\)$/m);
});
