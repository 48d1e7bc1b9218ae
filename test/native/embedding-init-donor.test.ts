/**
 * The donor rules of `lep init` (omp, focus; cpp/core/sparse_code.*, cpp/core/donor_rows.*, docs/method.md §2)
 * against scripts/donor_init_reference.py, an independent float64 NumPy implementation (plain OMP with
 * numpy.linalg.lstsq per step, sparsemax by Michelot's iteration): the solve alone on random
 * dictionaries, then `lep init --rule omp|focus --aux-model` end to end on float64 checkpoints (coefficients from
 * init_provenance.json, rows from the written safetensors), and the option errors.
 */
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { getNative } from '../../ts/binding/loadNative.js';
import { weightFilesOf } from '../../ts/checkpoint/modelDir.js';
import { initEmbeddings } from '../../ts/init/initEmbeddings.js';
import type { ProvenanceEntry } from '../../ts/init/provenance.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { seededRandom } from '../../ts/util/random.js';
import { LEP_CLI as CLI, tempDir, tinyModel } from '../helpers.js';
import { extendedTokenizerDir, LLAMA3_DIR } from '../initHelpers.js';

const PYTHON = '/usr/bin/python3'; // Debian's python3 with numpy (the pyenv python3 on PATH has none)
const REFERENCE = join(process.cwd(), 'scripts', 'donor_init_reference.py');
const EMBED = 'model.embed_tokens.weight';
const HEAD = 'lm_head.weight';
const WORDS = ['▁привет', '▁мир', '▁лалала', '▁молоко', '▁человек'];
const hasReference = spawnSync(PYTHON, ['-c', 'import numpy, torch'], { encoding: 'utf8' }).status === 0;

function normals(n: number, r: () => number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-300)) * Math.cos(2 * Math.PI * r());
  return out;
}

/** The F64 embedding matrices of a model, by name: [values, columns]. */
function readF64(modelDir: string): Map<string, { values: Float64Array; cols: number; dtype: string }> {
  const out = new Map<string, { values: Float64Array; cols: number; dtype: string }>();
  for (const f of weightFilesOf(modelDir))
    for (const t of getNative().readSafetensors(f))
      if (t.name === EMBED || t.name === HEAD) out.set(t.name, { values: new Float64Array(t.data.slice().buffer), cols: t.shape[1]!, dtype: t.dtype });
  return out;
}

function reference<T>(mode: 'code' | 'init', spec: unknown): T {
  const path = join(tempDir(), 'spec.json');
  writeFileSync(path, JSON.stringify(spec));
  const r = spawnSync(PYTHON, [REFERENCE, mode, path], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`reference failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** Rewrites a model's embedding matrices as F64 (the donor rules read any float dtype; F64 makes 1e-8 checks possible). */
function embeddingsToF64(modelDir: string, zeroRows: number[] = []): void {
  for (const f of weightFilesOf(modelDir)) {
    const tensors = getNative().readSafetensors(f).map((t) => {
      if (t.name !== EMBED && t.name !== HEAD) return t;
      const f32 = new Float32Array(t.data.slice().buffer);
      const f64 = Float64Array.from(f32);
      for (const r of zeroRows) f64.fill(0, r * t.shape[1]!, (r + 1) * t.shape[1]!);
      return { ...t, dtype: 'F64' as const, data: new Uint8Array(f64.buffer) };
    });
    getNative().writeSafetensors(f, tensors, getNative().inspectSafetensors(f).metadata);
  }
}

test('sparse codes equal the plain NumPy reference within 1e-8 (omp: same atoms in the same order; focus: same support)', (t) => {
  if (!hasReference) return t.fail(`${PYTHON} lacks numpy: install python3-numpy (scripts/setup.sh does)`);
  const r = seededRandom(11);
  const dim = 16, n = 200, b = 25, k = 10;
  const atoms = normals(n * dim, r);
  const targets = normals(b * dim, r);
  // Target 0 is exactly 2·atom 3 − atom 17: omp must pick those two first and find 2 and −1.
  for (let j = 0; j < dim; j++) targets[j] = 2 * atoms[3 * dim + j]! - atoms[17 * dim + j]!;
  for (const method of ['omp', 'focus'] as const) {
    const mine = getNative().sparseCode({ method, targets, atoms, dim, k, dtype: 'float64' });
    const ref = reference<{ indices: number[]; coeffs: number[] }[]>('code', { method, k, dim, targets: Array.from(targets), atoms: Array.from(atoms) });
    let worst = 0;
    ref.forEach((want, i) => {
      // Target 0 lies in the span of two atoms: once they are chosen the residual is rounding noise, and
      // which atoms that noise picks next is arbitrary in any implementation. It is checked below.
      if (i === 0) return;
      const got = new Map<number, number>();
      for (let j = 0; j < mine.width; j++) {
        const w = mine.coeffs[i * mine.width + j]!;
        if (method === 'omp' || w !== 0) got.set(mine.indices[i * mine.width + j]!, w);
      }
      if (method === 'omp') t.deepEqual(Array.from(mine.indices.subarray(i * mine.width, (i + 1) * mine.width)), want.indices, `target ${i}: atoms in order`);
      else t.deepEqual([...got.keys()].sort((a, c) => a - c), want.indices, `target ${i}: support`);
      want.indices.forEach((a, j) => (worst = Math.max(worst, Math.abs(got.get(a)! - want.coeffs[j]!) / Math.max(1, Math.abs(want.coeffs[j]!)))));
    });
    t.log(`${method}: worst coefficient difference ${worst.toExponential(2)}`);
    t.true(worst <= 1e-8, `${method}: ${worst}`);
    if (method === 'omp') {
      t.deepEqual(Array.from(mine.indices.subarray(0, 2)), [3, 17]);
      t.deepEqual(ref[0]!.indices.slice(0, 2), [3, 17]);
      t.true(Math.abs(mine.coeffs[0]! - 2) < 1e-12 && Math.abs(mine.coeffs[1]! + 1) < 1e-12, 'exact span: 2 and −1');
      t.true(Array.from(mine.coeffs.subarray(2, k)).every((c) => Math.abs(c) < 1e-12), 'and nothing else');
    } else {
      for (let i = 0; i < b; i++) {
        const s = Array.from(mine.coeffs.subarray(i * mine.width, (i + 1) * mine.width)).reduce((x, y) => x + y, 0);
        if (Math.abs(s - 1) > 1e-12) t.fail(`focus weights of target ${i} sum to ${s}`);
      }
    }
    // float32 gives the same atoms on this well-conditioned problem, coefficients to float32 precision.
    const f32 = getNative().sparseCode({ method, targets, atoms, dim, k, dtype: 'float32' });
    if (method === 'omp') t.deepEqual(Array.from(f32.indices.subarray(k, 2 * k)), Array.from(mine.indices.subarray(k, 2 * k)), 'target 1 in float32');
  }
  t.throws(() => getNative().sparseCode({ method: 'omp', targets, atoms, dim, k: n + 1 }), { message: /k must be in \[1, 200\]/ });
});

interface RefSide { [newId: string]: { old: number[]; weights: number[]; row: number[] } }

for (const method of ['omp', 'focus'] as const)
  test.serial(`lep init --rule ${method}: coefficients and rows equal the float64 reference within 1e-8; never-trained rows are neither atoms nor targets`, async (t) => {
    if (!hasReference) return t.fail(`${PYTHON} lacks numpy: install python3-numpy (scripts/setup.sh does)`);
    const model = await tinyModel({ tokenizerDir: LLAMA3_DIR, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02, seed: 3 });
    const tokDir = extendedTokenizerDir(LLAMA3_DIR, WORDS);
    const newTok = Tokenizer.fromDir(tokDir);
    // The donor: another model (other width, other weights) whose tokenizer is the new one.
    const donor = await tinyModel({ tokenizerDir: tokDir, modelType: 'llama', hiddenSize: 24, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02, seed: 9 });
    const hello = newTok.tokenToId('ĠÐ¿ÑĢÐ¸Ð²ÐµÑĤ')!;
    const world = newTok.tokenToId('ĠÐ¼Ð¸ÑĢ')!;
    embeddingsToF64(model, [100, 200, 300]); // never-trained old rows: no atoms
    embeddingsToF64(donor, [world, 500]);    // a never-trained donor row: Ġмир keeps its mean; donor 500 is no atom
    const out = join(tempDir(), 'init');
    const r = await initEmbeddings(model, tokDir, out, { rule: method, auxModel: donor, ...(method === 'omp' ? { ompK: 6 } : {}), solveDtype: 'float64' });
    t.true(r.counts[method] >= WORDS.length, `${r.counts[method]} ${method} rows`);
    t.is(r.input.donor!.atoms, 8005 - 4, 'shared tokens minus the zero rows on either side');
    t.is(r.input.donor!.keptMean, 1);
    const prov = JSON.parse(readFileSync(join(out, 'init_provenance.json'), 'utf8')) as { tokens: ProvenanceEntry[]; aux_model: string; solve_dtype: string };
    t.is(prov.solve_dtype, 'float64');
    const rowDonor = prov.tokens.map((e) => (e.source === method ? Tokenizer.fromDir(donor).tokenToId(e.token!)! : -1));
    const ids = [...Array(8005).keys()];
    const ref = reference<Record<string, RefSide>>('init', {
      method, k: 6, old: weightFilesOf(model)[0], donor: weightFilesOf(donor)[0], donorTied: false, sharedOld: ids, sharedDonor: ids, rowDonor,
    });
    const after = readF64(out);
    let worstW = 0, worstRow = 0, checked = 0;
    for (const [name, side] of [[EMBED, 'input'], [HEAD, 'output']] as const) {
      const m = after.get(name)!;
      t.is(m.dtype, 'F64');
      for (const [id, want] of Object.entries(ref[name]!)) {
        const e = prov.tokens[Number(id)]!;
        const old = side === 'input' ? e.old : e.old_output!;
        const weights = side === 'input' ? e.weights! : e.weights_output!;
        const got = new Map(old.map((o, j) => [o, weights[j]!]));
        if (method === 'omp') t.deepEqual(old, want.old, `${name} ${id}: shared tokens in the order chosen`);
        else t.deepEqual([...got.keys()].sort((a, b) => a - b), [...want.old].sort((a, b) => a - b), `${name} ${id}: support`);
        want.old.forEach((o, j) => (worstW = Math.max(worstW, Math.abs(got.get(o)! - want.weights[j]!))));
        const mine = m.values.subarray(Number(id) * m.cols, (Number(id) + 1) * m.cols);
        want.row.forEach((v, j) => (worstRow = Math.max(worstRow, Math.abs(mine[j]! - v))));
        t.false(old.some((o) => o === 100 || o === 200 || o === 300 || o === 500), 'zero rows are no atoms');
        checked++;
      }
      t.false(String(world) in ref[name]!, 'Ġмир has no donor row');
    }
    t.log(`${method}: ${checked} rows, worst coefficient difference ${worstW.toExponential(2)}, worst row difference ${worstRow.toExponential(2)}`);
    t.true(checked >= 2 * WORDS.length);
    t.true(worstW <= 1e-8, `coefficients ${worstW}`);
    t.true(worstRow <= 1e-8, `rows ${worstRow}`);
    t.like(prov.tokens[world], { source: method, donor_kept_mean: ['input', 'output'] });
    t.true(prov.tokens[hello]!.weights!.length > 0);
    if (method === 'omp') t.true(r.input.donor!.meanResidual > 0 && r.input.donor!.meanResidual < 1, `residual ${r.input.donor!.meanResidual}`);
  });

test.serial('option errors name the flag and say what to do; the CLI prints the donor summary', async (t) => {
  const model = await tinyModel({ tokenizerDir: LLAMA3_DIR, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02 });
  const tokDir = extendedTokenizerDir(LLAMA3_DIR, WORDS);
  const x = (): string => join(tempDir(), 'x');
  const e1 = await t.throwsAsync(initEmbeddings(model, tokDir, x(), { rule: 'omp' }));
  t.is((e1 as { code?: string }).code, 'LEP_BAD_OPTION');
  t.regex(e1!.message, /rule "omp" \(--rule omp\) needs an auxiliary model \(auxModel, --aux-model\) but none was given\nHINT: pass --aux-model DIR/);
  const e2 = await t.throwsAsync(initEmbeddings(model, tokDir, x(), { auxModel: model }));
  t.regex(e2!.message, /auxModel \(--aux-model\) applies to the rules "omp", "focus" but the rule is "mean"\nHINT:/);
  const e3 = await t.throwsAsync(initEmbeddings(model, tokDir, x(), { rule: 'focus', auxModel: model, ompK: 8 }));
  t.regex(e3!.message, /ompK \(--omp-k\) applies to the rule "omp" but the rule is "focus"\nHINT:/);
  const e4 = await t.throwsAsync(initEmbeddings(model, tokDir, x(), { rule: 'omp', auxModel: model, ompK: 0 }));
  t.regex(e4!.message, /Expected a positive integer for ompK \(--omp-k\) but received 0/);
  const e0 = await t.throwsAsync(initEmbeddings(model, tokDir, x(), { rule: 'median' as 'mean' }));
  t.regex(e0!.message, /Expected "mean" or "random" or "global-mean" or "omp" or "focus" for rule \(--rule\) but received "median"\nHINT: rule \(--rule\): Rows of new tokens: mean .*\(the paper's rule/);
  const e5 = await t.throwsAsync(initEmbeddings(model, tokDir, x(), { rule: 'omp', auxModel: model, solveDtype: 'f16' as 'float32' }));
  t.regex(e5!.message, /Expected "float32" or "float64" for solveDtype \(--solve-dtype\)/);
  const e6 = await t.throwsAsync(initEmbeddings(model, tokDir, model, { rule: 'omp', auxModel: tokDir }));
  t.regex(e6!.message, /--out \S+ is the input MODEL_DIR/);
  // The model as its own donor: it lacks the new tokens, so every new row stays the mean (counted as mean).
  const self = await initEmbeddings(model, tokDir, x(), { rule: 'omp', auxModel: model });
  t.is(self.counts.omp, 0);
  t.true(self.counts.mean > 0);
  const donor = await tinyModel({ tokenizerDir: tokDir, modelType: 'llama', hiddenSize: 24, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, maxPositionEmbeddings: 128, embedStd: 0.02, tieWordEmbeddings: true });
  const { stdout } = await promisify(execFile)('node', [CLI, 'init', model, '--tokenizer', tokDir, '--out', x(), '--rule', 'omp', '--aux-model', donor, '--omp-k', '4']);
  t.regex(stdout, /omp \d+/);
  t.regex(stdout, /input side: \d+ rows from the auxiliary model over 8005 shared tokens, relative residual in its space mean 0\.\d+ max/);
  t.regex(stdout, /output side: \d+ rows from the auxiliary model over 8005 shared tokens/);
  t.deepEqual((await initEmbeddings(model, tokDir, x(), { rule: 'omp', auxModel: donor, ompK: 23 })).warnings, []);
  const seen: string[] = [];
  const wide = await initEmbeddings(model, tokDir, x(), { rule: 'omp', auxModel: donor, ompK: 24, onWarning: (w) => seen.push(w) });
  t.deepEqual(wide.warnings, seen);
  t.regex(seen[0] ?? '', /ompK 24 \(--omp-k\) is not below the auxiliary model's hidden size 24[\s\S]*HINT: use --omp-k well below/);
  const bad = await t.throwsAsync(promisify(execFile)('node', [CLI, 'init', model, '--tokenizer', tokDir, '--out', x(), '--rule', 'omp']));
  t.regex((bad as unknown as { stderr: string }).stderr, /needs an auxiliary model[\s\S]*HINT: pass --aux-model DIR/);
});
