/**
 * The TS side of scripts/torch_reference.py, the eager PyTorch reference that the training parity test
 * and bench/train-torch.ts compare lep against: runs it with Debian's Python (python3-torch) and returns
 * its JSON answers. The request shapes are documented at the top of the Python script.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

import { LepError } from '../ts/errors.js';

/** Debian's system Python: the one python3-torch installs into (a pyenv `python3` on PATH has no torch). */
export const REFERENCE_PYTHON = process.env.LEP_REFERENCE_PYTHON ?? '/usr/bin/python3';
export const REFERENCE_SCRIPT = join(import.meta.dirname, '..', '..', 'scripts', 'torch_reference.py');

/** Throws a LepError saying how to install the reference when REFERENCE_PYTHON cannot import torch. */
export function checkTorchReference(): void {
  const r = spawnSync(REFERENCE_PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (r.status !== 0)
    throw new LepError(
      'LEP_NO_TORCH_REFERENCE',
      `${REFERENCE_PYTHON} cannot import torch and numpy, which the PyTorch reference needs: ${(r.error?.message ?? r.stderr).trim().split('\n').at(-1)}\nHINT: run scripts/setup.sh (it installs Debian's python3-torch).`,
    );
}

/**
 * The reference's environment: this process's (the bench compares both sides on the same OpenBLAS core),
 * except with `LEP_REFERENCE_CPU_DEFAULTS=1`, which drops the settings that force kernels on the
 * libraries (OPENBLAS_CORETYPE, ONEDNN_MAX_CPU_ISA, DNNL_MAX_CPU_ISA) so they choose for this CPU:
 * scripts/ci/blas-cores.sh forces kernels on lep and keeps the reference off them.
 */
function referenceEnv(): NodeJS.ProcessEnv {
  if (process.env.LEP_REFERENCE_CPU_DEFAULTS !== '1') return process.env;
  const env = { ...process.env };
  for (const name of ['OPENBLAS_CORETYPE', 'ONEDNN_MAX_CPU_ISA', 'DNNL_MAX_CPU_ISA']) delete env[name];
  return env;
}

/** Runs the reference on one request or a list (answered in order, in one Python process). */
export async function runTorchReference<T = unknown>(request: object | object[]): Promise<T> {
  checkTorchReference();
  const child = spawn(REFERENCE_PYTHON, [REFERENCE_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'], env: referenceEnv() });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  child.stdin.end(JSON.stringify(request));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new LepError('LEP_TORCH_REFERENCE_FAILED', `${REFERENCE_SCRIPT} exited with ${code}:\n${stderr.trim()}`);
  return JSON.parse(stdout) as T;
}
