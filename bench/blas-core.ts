/**
 * What the OpenBLAS core costs (ts/binding/blasCore.ts): f32 and f64 matmul GFLOP/s per core and lep
 * against llama.cpp (bench/llamacpp.ts), with OpenBLAS forced to each core in `--cores`, side by side.
 *
 * The point of comparison is `PRESCOTT`, the generic core Debian 12's OpenBLAS 0.3.21 falls back to on
 * CPUs it does not know (Sapphire-Rapids-class Xeons), against the core lep runs here (`default`: no
 * OPENBLAS_CORETYPE, so the library's own pick or lep's choice) and any other named core.
 *  - matmul: the best of `--reps` square `--size` torch.mm in Debian's PyTorch (the same OpenBLAS), f32
 *    and f64, at 1 BLAS thread (per core) and at one per core, cores
 *    alternating rep by rep;
 *  - llamacpp: `node dist/bench/llamacpp.js --threads N --reps R --no-record` under each core; its table's
 *    lep / llama.cpp ratios are collected (llama.cpp's own kernels do not depend on OpenBLAS).
 * Correctness: the matmul runs are preceded by lep's BLAS self-check under each core (a probe child).
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/blas-core.js [--cores PRESCOTT,default,SKYLAKEX]
 *        [--size 2048] [--reps 3] [--threads 2] [--llamacpp-reps 3] [--no-llamacpp]
 * Appends one JSON line to bench/results/blas-core.jsonl and prints a markdown table.
 */
import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { positiveInt } from './benchArgs.js';
import { runBlasProbe } from '../ts/binding/blasCore.js';
import { packageRoot } from '../ts/binding/loadNative.js';
import { lepInfo } from '../ts/index.js';

const PYTHON = '/usr/bin/python3';
const RESULTS = join(packageRoot, 'bench', 'results', 'blas-core.jsonl');

function envFor(core: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  if (core === 'default') delete env.OPENBLAS_CORETYPE;
  else env.OPENBLAS_CORETYPE = core;
  return env;
}

/** Best GFLOP/s of square matmuls in `dtype` under `core` with `threads` BLAS threads. */
function matmul(core: string, dtype: 'float32' | 'float64', size: number, reps: number, threads: number): number {
  const code = `
import json, sys, time, ctypes, torch
torch.set_num_threads(1)
for lib in ('libopenblas.so.0', 'libblas.so.3'):
    try:
        ctypes.CDLL(lib).openblas_set_num_threads(${threads}); break
    except Exception: pass
a = torch.randn(${size}, ${size}, dtype=torch.${dtype}); b = torch.randn(${size}, ${size}, dtype=torch.${dtype})
torch.mm(a, b)
best = 0
for _ in range(${reps}):
    t = time.perf_counter(); torch.mm(a, b); dt = time.perf_counter() - t
    best = max(best, 2 * ${size} ** 3 / dt / 1e9)
print(json.dumps(best))`;
  const r = spawnSync(PYTHON, ['-c', code], { env: envFor(core), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`matmul under ${core} failed: ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as number;
}

/** lep / llama.cpp ratios from bench/llamacpp.js's markdown table under `core`. */
function llamacpp(core: string, threads: number, reps: number): Record<string, number> {
  const r = spawnSync(process.execPath, [join(packageRoot, 'dist', 'bench', 'llamacpp.js'), '--threads', String(threads), '--reps', String(reps), '--no-record'],
    { env: envFor(core), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`llamacpp bench under ${core} failed: ${r.stderr.slice(-2000)}`);
  const ratios: Record<string, number> = {};
  // Rows "| metric | threads | lep tok/s | llama.cpp tok/s | lep / llama.cpp | ..." (llamacpp.ts's table).
  for (const line of r.stdout.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length > 6 && /^\d+$/.test(cells[2] ?? '') && /^\d+\.\d+$/.test(cells[5] ?? '')) ratios[cells[1]!.split(' (')[0]!] = Number(cells[5]);
  }
  return ratios;
}

function main(): void {
  const { values } = parseArgs({ options: {
    cores: { type: 'string', default: 'PRESCOTT,default,SKYLAKEX' }, size: { type: 'string', default: '2048' },
    reps: { type: 'string', default: '3' }, threads: { type: 'string', default: String(cpus().length) },
    'llamacpp-reps': { type: 'string', default: '3' }, 'no-llamacpp': { type: 'boolean', default: false },
  } });
  const cores = values.cores!.split(',');
  const size = positiveInt(values.size, 'size');
  const reps = positiveInt(values.reps, 'reps');
  const threads = positiveInt(values.threads, 'threads');
  const info = lepInfo();
  const load = [loadavg()[0]!];
  const rows: Record<string, Record<string, unknown>> = {};
  for (const core of cores) {
    const probe = runBlasProbe(core === 'default' ? undefined : core);
    if (probe.failed || !(probe.f32Error < 1e-4 && probe.f64Error < 1e-12)) throw new Error(`core ${core}: self-check failed ${JSON.stringify(probe)}`);
    rows[core] = { loaded: probe.core, f32Error: probe.f32Error, f64Error: probe.f64Error, f32: [], f64: [], f32All: [], f64All: [] };
    console.error(`${core}: loads ${probe.core}, self-check f32 ${probe.f32Error.toExponential(1)} f64 ${probe.f64Error.toExponential(1)}`);
  }
  for (let rep = 0; rep < 2; rep++)
    for (const core of cores)
      for (const dtype of ['float32', 'float64'] as const) {
        const key = dtype === 'float32' ? 'f32' : 'f64';
        (rows[core]![key] as number[]).push(matmul(core, dtype, size, reps, 1));
        (rows[core]![`${key}All`] as number[]).push(matmul(core, dtype, size, reps, threads));
      }
  if (!values['no-llamacpp'])
    for (const core of cores) rows[core]!.llamacpp = llamacpp(core, threads, positiveInt(values['llamacpp-reps'], 'llamacpp-reps'));
  load.push(loadavg()[0]!);
  const best = (xs: unknown): number => Math.max(...(xs as number[]));
  console.log(`| core (loaded) | f32 GFLOP/s, 1 thread | f64, 1 thread | f32, ${threads} threads | f64, ${threads} threads | lep / llama.cpp (${threads} threads) |`);
  console.log('|---|---:|---:|---:|---:|---|');
  for (const core of cores) {
    const r = rows[core]!;
    const ll = r.llamacpp ? Object.entries(r.llamacpp as Record<string, number>).map(([k, v]) => `${k} ${v.toFixed(2)}x`).join(', ') : '-';
    console.log(`| ${core} (${r.loaded}) | ${best(r.f32).toFixed(1)} | ${best(r.f64).toFixed(1)} | ${best(r.f32All).toFixed(1)} | ${best(r.f64All).toFixed(1)} | ${ll} |`);
  }
  console.log(`load average (1 min) ${load.map((l) => l.toFixed(1)).join(' -> ')}; ${info.cpu.model}: ${info.cpu.features}; ${info.blasConfig}`);
  mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
  appendFileSync(RESULTS, `${JSON.stringify({ bench: 'blas-core', date: new Date().toISOString(), size, reps, threads, load, cpu: info.cpu, blas: info.blasConfig, rows })}\n`);
}

main();
