/**
 * Embedding patches (issue 5, item 2): after embedding-only training only `embed_tokens` and `lm_head`
 * differ from the base model, so instead of a full copy a patch directory holds
 *
 *   embeddings.safetensors   the two matrices as stored (same dtype, same bytes)
 *   patch.json               what the base must look like: every other tensor's name, dtype and shape
 *   config.json, generation_config.json, tokenizer files   of the adapted model
 *
 * and `applyEmbeddingPatch` puts it back on the base: every tensor of the result is byte-identical to the
 * adapted model's. The base is rewritten one safetensors file at a time, so peak memory is one shard.
 */
import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

import { getNative } from '../binding/loadNative.js';
import type { NativeTensorData, NativeTensorInfo } from '../binding/NativeTypes.js';
import { copyTokenizerFiles, inspectWeights, readModelDir } from '../checkpoint/modelDir.js';
import { callNative, LepError } from '../errors.js';
import { writeJsonAtomic } from '../util/atomicWrite.js';
import { checkBesideModels, checkOutputPath } from '../util/checkOutputPath.js';
import { writeDirAtomicSync } from '../util/writeDirAtomic.js';

export const PATCH_TENSORS_FILE = 'embeddings.safetensors';
export const PATCH_FILE = 'patch.json';
const EMBEDDING_TENSORS = ['model.embed_tokens.weight', 'lm_head.weight'];

interface PatchJson {
  format: 'lep-embedding-patch/1';
  /** The embedding tensors in the patch. */
  tensors: string[];
  /** Every other tensor of the adapted model: the base must have exactly these, with these sampled bytes. */
  base: Record<string, { dtype: string; shape: number[]; sample: string }>;
}

/**
 * sha256 of up to 3 x 4 KiB of a tensor's bytes (start, middle, end): tells a different base with the same
 * shapes apart (other training gives other bytes everywhere) without reading gigabytes twice.
 */
function sampleHash(fd: number, dataStart: number, t: NativeTensorInfo): string {
  const h = createHash('sha256');
  const len = t.end - t.begin;
  const chunk = Math.min(4096, len);
  const buf = Buffer.alloc(chunk);
  for (const at of new Set([0, Math.floor((len - chunk) / 2), len - chunk])) {
    readSync(fd, buf, 0, chunk, dataStart + t.begin + at);
    h.update(buf);
  }
  return h.digest('hex');
}

/** name -> dtype, shape and sampled-bytes hash of every tensor of the checkpoint files but the embeddings. */
function fingerprint(files: string[]): PatchJson['base'] {
  const out: PatchJson['base'] = {};
  for (const f of files) {
    const fd = openSync(f, 'r');
    try {
      const len = Buffer.alloc(8);
      readSync(fd, len, 0, 8, 0);
      const dataStart = 8 + Number(len.readBigUInt64LE(0));
      for (const t of callNative(() => getNative().inspectSafetensors(f)).tensors)
        if (!EMBEDDING_TENSORS.includes(t.name)) out[t.name] = { dtype: t.dtype, shape: t.shape, sample: sampleHash(fd, dataStart, t) };
    } finally {
      closeSync(fd);
    }
  }
  return out;
}

/** The trained model's config, generation config and tokenizer: the patch carries them to the applied model. */
function copyModelFiles(from: string, to: string): void {
  for (const f of ['config.json', 'generation_config.json']) if (existsSync(join(from, f))) copyFileSync(join(from, f), join(to, f));
  copyTokenizerFiles(from, to);
}

/**
 * Writes the embedding patch of the model in `modelDir` to the directory `outDir`, which appears whole
 * (written aside and renamed; an earlier patch there is replaced). Returns the patch's size in bytes.
 */
export function writeEmbeddingPatch(modelDir: string, outDir: string): { outDir: string; bytes: number } {
  checkBesideModels(outDir, '--patch', { MODEL_DIR: modelDir });
  const model = readModelDir(modelDir);
  outDir = resolve(outDir);
  const tensors: NativeTensorData[] = [];
  const base = fingerprint(model.weightFiles);
  for (const f of model.weightFiles) {
    const info = callNative(() => getNative().inspectSafetensors(f)).tensors;
    if (!info.some((t) => EMBEDDING_TENSORS.includes(t.name))) continue;
    // readSafetensors reads a whole file; embedding matrices are usually in the first or last shard.
    for (const t of callNative(() => getNative().readSafetensors(f))) if (EMBEDDING_TENSORS.includes(t.name)) tensors.push(t);
  }
  if (!tensors.some((t) => t.name === EMBEDDING_TENSORS[0]))
    throw new LepError('LEP_MISSING_TENSOR', `${modelDir}: checkpoint lacks model.embed_tokens.weight`);
  writeDirAtomicSync(outDir, '--patch', (dir) => {
    callNative(() => getNative().writeSafetensors(join(dir, PATCH_TENSORS_FILE), tensors, { format: 'pt' }));
    const patch: PatchJson = { format: 'lep-embedding-patch/1', tensors: tensors.map((t) => t.name), base };
    writeJsonAtomic(join(dir, PATCH_FILE), patch);
    copyModelFiles(modelDir, dir);
  });
  return { outDir, bytes: tensors.reduce((s, t) => s + t.data.length, 0) };
}

/** Applies the patch in `patchDir` to the base model in `baseDir`, writing the adapted model to `outDir`. */
export function applyEmbeddingPatch(patchDir: string, baseDir: string, outDir: string): { outDir: string; files: string[] } {
  checkOutputPath(outDir, '--out', { PATCH_DIR: patchDir, BASE_DIR: baseDir });
  const patchPath = join(patchDir, PATCH_FILE);
  if (!existsSync(patchPath) || !existsSync(join(patchDir, PATCH_TENSORS_FILE)))
    throw new LepError('LEP_BAD_PATCH', `${patchDir} is not an embedding patch (no ${PATCH_FILE} or ${PATCH_TENSORS_FILE})\nHINT: make one with writeEmbeddingPatch (lep train --embeddings-only --patch DIR).`);
  let patch: PatchJson;
  try {
    patch = JSON.parse(readFileSync(patchPath, 'utf8')) as PatchJson;
  } catch (e) {
    throw new LepError('LEP_BAD_PATCH', `cannot read ${patchPath}: ${(e as Error).message}\nHINT: write the patch again (lep train --embeddings-only --patch DIR).`);
  }
  if (patch?.format !== 'lep-embedding-patch/1' || typeof patch.base !== 'object' || !Array.isArray(patch.tensors))
    throw new LepError('LEP_BAD_PATCH', `${patchPath}: not a lep embedding patch (format ${JSON.stringify(patch?.format)})\nHINT: write the patch again (lep train --embeddings-only --patch DIR).`);
  const base = readModelDir(baseDir);
  outDir = resolve(outDir);
  // The base must have exactly the adapted model's other tensors, or the result would be another model.
  const have = inspectWeights(base);
  const sampled = fingerprint(base.weightFiles);
  for (const [name, want] of Object.entries(patch.base)) {
    const got = have.get(name);
    const what = !got || got.dtype !== want.dtype || got.shape.join('x') !== want.shape.join('x')
      ? `tensor ${name} is ${got ? `${got.dtype} ${got.shape.join('x')}` : 'missing'}, the patch expects ${want.dtype} ${want.shape.join('x')}`
      : sampled[name]?.sample !== want.sample ? `tensor ${name} holds other values than the patched model's` : undefined;
    if (what)
      throw new LepError(
        'LEP_PATCH_MISMATCH',
        `${baseDir} is not the base of this patch: ${what}\nHINT: apply the patch to the model the embeddings were trained on (same architecture, dtype and weights).`,
      );
  }
  const extra = [...have.keys()].filter((n) => !(n in patch.base) && !EMBEDDING_TENSORS.includes(n));
  if (extra.length) throw new LepError('LEP_PATCH_MISMATCH', `${baseDir} has tensors the patched model lacks: ${extra.slice(0, 5).join(', ')}\nHINT: apply the patch to the model the embeddings were trained on.`);
  const embeddings = EMBEDDING_TENSORS.filter((n) => have.has(n));
  if (embeddings.length !== patch.tensors.length || !embeddings.every((n) => patch.tensors.includes(n)))
    throw new LepError(
      'LEP_PATCH_MISMATCH',
      `${baseDir} has ${embeddings.join(' and ') || 'no embedding tensors'} but the patch holds ${patch.tensors.join(' and ')}: one model is tied and the other is not` +
        '\nHINT: apply the patch to the model the embeddings were trained on.',
    );
  const patchTensors = new Map(callNative(() => getNative().readSafetensors(join(patchDir, PATCH_TENSORS_FILE))).map((t) => [t.name, t]));

  const files: string[] = [];
  // Written aside and renamed: a killed run leaves no half-patched model that looks finished.
  writeDirAtomicSync(outDir, '--out', (dir) => {
    for (const f of base.weightFiles) {
      const { metadata } = callNative(() => getNative().inspectSafetensors(f));
      const tensors = callNative(() => getNative().readSafetensors(f))
        .filter((t) => !EMBEDDING_TENSORS.includes(t.name) || patchTensors.has(t.name))
        .map((t) => patchTensors.get(t.name) ?? t);
      callNative(() => getNative().writeSafetensors(join(dir, basename(f)), tensors, metadata));
      files.push(basename(f));
    }
    if (existsSync(join(baseDir, 'model.safetensors.index.json'))) {
      const weightMap: Record<string, string> = {};
      let total = 0;
      for (const f of files)
        for (const t of callNative(() => getNative().inspectSafetensors(join(dir, f))).tensors) {
          weightMap[t.name] = f;
          total += t.end - t.begin;
        }
      writeJsonAtomic(join(dir, 'model.safetensors.index.json'), { metadata: { total_size: total }, weight_map: Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : 1))) });
    }
    copyModelFiles(patchDir, dir);
  });
  return { outDir, files };
}
