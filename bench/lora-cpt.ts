/**
 * Issue 18, part 1: continued pretraining of the resized toy base with LoRA + embeddings + head (the
 * authors' later pipeline: LoRA r 32, alpha 32, dropout 0.05 on every projection, modules_to_save
 * embed_tokens and lm_head) against embeddings-only training with the same token budget (same data,
 * steps, batch and block length), each propagated into the toy instruct model by conversion. The LoRA
 * run's body is merged with alpha / S for every S of `--alpha-scales`.
 *
 * Both runs are `lep adapt` with recipes/toy-ru-extended.yaml (calibration left out, conversion only);
 * the LoRA run adds `train.lora` and `propagate.alphaScale`. Stages are cached under OUT (stage records
 * with the inputs' fingerprints), so a rebuilt toy family or corpus redoes exactly what changed, and an
 * interrupted run resumes. Each model (the original instruct model, embeddings-only, LoRA at each S) is
 * scored with `evaluate(model, ['all'])`: the built-in tasks' Micro-Avg and held-out bits per character.
 *
 * Needs the corpora (node dist/ts/cli/main.js corpora fetch) and test/fixtures/toy-family.
 * Usage: npx tsc -p tsconfig.json && node dist/bench/lora-cpt.js [--out DIR] [--alpha-scales 1,2,4]
 *        [--steps N] [--limit N]
 * Appends one JSON line per model to bench/results/lora-cpt.jsonl.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { adapt } from '../ts/adapt/adapt.js';
import { readRecipe, type AdaptRecipe } from '../ts/adapt/recipe.js';
import { packageRoot } from '../ts/binding/loadNative.js';
import { evaluate } from '../ts/eval/evaluate.js';
import { propagate } from '../ts/propagate/propagate.js';
import { ADAPTER_DIR } from '../ts/train/trainModel.js';

const RESULTS = join(packageRoot, 'bench', 'results', 'lora-cpt.jsonl');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(packageRoot, '.cache', 'lora-cpt') },
      'alpha-scales': { type: 'string', default: '1,2,4' },
      steps: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  const scales = values['alpha-scales']!.split(',').map(Number);
  if (scales.some((s) => !(s > 0))) throw new Error(`--alpha-scales: positive numbers, got ${values['alpha-scales']}`);
  const out = values.out!;
  mkdirSync(out, { recursive: true });
  const shipped = readRecipe(join(packageRoot, 'recipes', 'toy-ru-extended.yaml'));
  const { calibrate: _calibrate, ...base } = shipped;
  const train = { ...base.train, ...(values.steps ? { steps: Number(values.steps) } : {}) };
  const embeddingsOnly: AdaptRecipe = { ...base, train, propagate: { ...base.propagate, methods: ['conversion'] } };
  const withLora: AdaptRecipe = {
    ...embeddingsOnly,
    train: { ...train, lora: { rank: 32, alpha: 32, dropout: 0.05, modulesToSave: ['embed_tokens', 'lm_head'] } },
    propagate: { ...embeddingsOnly.propagate, alphaScale: scales[0]! },
  };
  const log = (stage: string) => (p: { stage: string; detail: string }) => console.log(`${stage}: ${p.stage} ${p.detail}`);
  const emb = await adapt(embeddingsOnly, join(out, 'embeddings-only'), { onProgress: log('embeddings-only') });
  const lora = await adapt(withLora, join(out, 'lora'), { onProgress: log('lora') });

  // The LoRA run's donor at the other alpha scales (the adapt run merged scales[0]).
  const models: { name: string; dir: string; alphaScale?: number }[] = [
    { name: 'instruct (original)', dir: base.instruct as string },
    { name: 'embeddings-only CPT, conversion', dir: emb.models.conversion! },
    { name: 'LoRA + embeddings CPT, conversion', dir: lora.models.conversion!, alphaScale: scales[0]! },
  ];
  for (const s of scales.slice(1)) {
    const dir = join(out, `lora-alpha-scale-${s}`);
    await propagate({
      base: base.base, donor: join(out, 'lora', 'train'), instruct: base.instruct as string, out: dir, method: 'conversion',
      keepOverlapRows: base.propagate?.keepOverlapRows, lora: join(out, 'lora', 'train', ADAPTER_DIR), alphaScale: s,
    });
    models.push({ name: 'LoRA + embeddings CPT, conversion', dir, alphaScale: s });
  }
  for (const m of models) {
    const r = await evaluate(m.dir, ['all'], values.limit ? { limit: Number(values.limit) } : {});
    const record = {
      bench: 'lora-cpt', date: new Date().toISOString(), model: m.name, dir: m.dir, alphaScale: m.alphaScale,
      train: { steps: train.steps, batchSize: train.batchSize, seqLen: train.seqLen }, load1: loadavg()[0],
      summary: r.summary, text: r.text, tasks: r.tasks.map((x) => ({ name: x.name, score: x.score, items: x.items })),
    };
    appendFileSync(RESULTS, `${JSON.stringify(record)}\n`);
    console.log(`${m.name}${m.alphaScale ? ` (S = ${m.alphaScale})` : ''}: ${JSON.stringify(r.summary)}; text ${JSON.stringify(Object.fromEntries(Object.entries(r.text).map(([k, v]) => [k, v.bitsPerChar])))}`);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
