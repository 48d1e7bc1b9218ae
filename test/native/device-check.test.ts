// The device check (cpp/check/device_check.cpp, scripts/device-check.sh) on this machine: no GPU here, so
// it runs the core in bf16 on the CPU against the CPU in float32, which exercises the comparisons it makes
// on a GPU (scores, greedy tokens, gradients, training and its resume, LoRA) with real differences, and its
// refusals. Propagation runs in float64 on the CPU on both sides here (difference 0): only its plumbing.
// It is built beside the addons (scripts/setup.sh, scripts/ci/libtorch26.sh: -DLEP_DEVICE_CHECK=ON).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import test from 'ava';

import { nativeBuildDir, tempDir } from '../helpers.js';

const CHECK = join(dirname(nativeBuildDir()), 'lep_device_check');

interface CheckReport {
  device: string;
  dtype: string;
  failed: number;
  checks: { name: string; pass: boolean; detail: string }[];
  timings: Record<string, { device_s: number; cpu_s: number }>;
}

function run(args: string[]) {
  return spawnSync(CHECK, args, { encoding: 'utf8', timeout: 300_000, killSignal: 'SIGKILL' });
}

test('the device check passes in bf16 on the CPU against float32, with a report of every check', (t) => {
  t.true(existsSync(CHECK), `${CHECK} is missing: run \`bash scripts/setup.sh\` (it builds with -DLEP_DEVICE_CHECK=ON)`);
  const out = tempDir('lep-device-check-');
  const r = run(['--device', 'cpu', '--dtype', 'bf16', '--out', out]);
  t.is(r.status, 0, r.stdout + r.stderr);
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8')) as CheckReport;
  t.is(report.failed, 0);
  // No GPU: the device-index and out-of-memory checks are the GPU's only.
  t.deepEqual(
    report.checks.map((c) => c.name),
    ['score', 'generate', 'gradients (all)', 'gradients (embeddings)', 'training (embeddings)', 'training resumed from a checkpoint', 'training (LoRA, dropout 0.1)', 'propagation (conversion)', 'propagation (overlap)'],
  );
  for (const c of report.checks) t.true(c.pass, `${c.name}: ${c.detail}`);
  // bf16 is not float32: the comparisons measured a difference (a check comparing a run with itself would not).
  const score = report.checks.find((c) => c.name === 'score')!.detail;
  const delta = Number(/max \|Δ log p\| (\S+)/.exec(score)?.[1]);
  t.true(delta > 0 && delta <= 0.25, score);
  t.regex(report.checks.find((c) => c.name === 'generate')!.detail, /^72 greedy tokens/);
  t.deepEqual(Object.keys(report.timings).sort(), ['4 embedding training steps, 2 checkpoints', 'generate 3 x 24 tokens', 'loss and gradients (all)', 'loss and gradients (embeddings)', 'propagate (conversion)', 'propagate (overlap)', 'score']);
  t.regex(r.stdout, /^9 passed, 0 failed$/m);
  t.log(r.stdout.split('\n').filter((l) => l.startsWith('PASS') || l.startsWith('FAIL')).join('\n'));
});

test('the device check refuses a GPU this libtorch or machine lacks, and a bad flag, with lep\'s code', (t) => {
  const out = tempDir('lep-device-check-');
  const cuda = run(['--device', 'cuda:0', '--out', out]);
  t.is(cuda.status, 2);
  t.regex(cuda.stderr, /\(code LEP_NO_CUDA\)/);
  const bad = run(['--dtype', 'f16']);
  t.is(bad.status, 2);
  t.regex(bad.stderr, /--dtype is f32 or bf16\n\(code LEP_BAD_ARGUMENT\)/);
});
