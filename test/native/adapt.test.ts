// lep adapt end to end on a tiny base/instruct pair (the instruct made from the base by a few steps of
// full training, so it is derived from it as the method needs), Russian Debian text, an Extended
// vocabulary: every stage runs, every method writes a model that loads and speaks through the chat
// template; a second run resumes (nothing redone); a changed training option redoes training and
// propagation only; an input whose content changed redoes what reads it, a copy with a new time does not.
// Each stage folder holds the stage's own record, tagged with the recipe section it ran with (adapt keeps
// no notes of its own), and init's manifest.json stays init's. Runs that earlier leps began (their notes
// in OUT/stages, or lep 0.1.0's in the stage folders) resume.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

import test from 'ava';

import { DEFAULT_MERGE_ORDER } from '../../ts/tokenizer/extend.js';
import { adapt, MANIFEST_FILE, STAGE_NOTES_DIR, STAGES, type AdaptProgress } from '../../ts/adapt/adapt.js';
import { readStageRecord, STAGE_RECORD_FILE } from '../../ts/stage/stageRecord.js';
import type { StageProgress } from '../../ts/stage/stageProgress.js';
import { resolveRecipePaths, validateRecipe } from '../../ts/adapt/recipe.js';
import { LepModel, readTexts, Tokenizer, trainModel } from '../../ts/index.js';
import { packDocuments, writeBlocks } from '../../ts/train/index.js';
import { TOY_CHAT_TEMPLATE } from '../../ts/train/instructData.js';
import { CORPORA, corpora } from '../corpora.js';
import { LEP_CLI, tempDir, tinyModel } from '../helpers.js';

async function family(): Promise<{ base: string; instruct: string; data: string }> {
  const base = await tinyModel({ modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 4, maxPositionEmbeddings: 128, embedStd: 0.02, chatTemplate: TOY_CHAT_TEMPLATE });
  const tok = Tokenizer.fromDir(base);
  const docs: string[][] = [];
  for await (const d of readTexts((await corpora())['en.txt']!, { mode: 'document', maxChars: 20_000 })) docs.push(d.split('\n'));
  const { blocks } = await packDocuments(docs, tok, { seqLen: 64 });
  const data = join(tempDir(), 'en.safetensors');
  writeBlocks(data, blocks);
  const instruct = join(tempDir(), 'instruct');
  await trainModel(base, instruct, { data, steps: 4, batchSize: 4, lr: 1e-3, warmupSteps: 1 });
  return { base, instruct, data };
}

test('lep adapt: all stages, three propagated models, resume, and a changed option redoes only what follows it', async (t) => {
  const files = await corpora();
  const { base, instruct } = await family();
  const dir = tempDir();
  const recipe = resolveRecipePaths(
    validateRecipe({
      base,
      instruct,
      corpus: { train: files['ru.txt'], eval: files['heldout/ru.txt'], maxChars: 300_000 },
      tokenizer: { kind: 'extend', vocabSize: 1500 },
      train: { seqLen: 64, steps: 6, batchSize: 4, lr: 1e-3, warmupSteps: 1, evalBlocks: 4, newRowsOnly: true },
    }),
    dir,
  );
  const out = join(dir, 'adapt');
  const events: AdaptProgress[] = [];
  const r = await adapt(recipe, out, { onProgress: (p) => events.push(p) });
  t.deepEqual(r.ran, STAGES.filter((s) => s !== 'calibrate'), 'no calibrate stage without a calibrate section');
  t.is(r.outDir, out);
  t.deepEqual(Object.keys(r.models).sort(), ['conversion', 'overlap', 'swap']);
  t.deepEqual([...new Set(events.map((e) => e.stage))], STAGES.filter((s) => s !== 'calibrate'), 'progress covers every stage in order');
  // Packing reports how far through the corpus it is (a fraction, so the CLI shows a percentage and ETA).
  const packing = events.filter((e) => e.stage === 'data' && /^packing training text: [\d.]+ of [\d.]+ MB$/.test(e.detail));
  t.true(packing.length >= 2, `${packing.length} packing progress events`);
  t.true(packing.every((e, i) => e.fraction! > 0 && e.fraction! < 1 && (i === 0 || e.fraction! >= packing[i - 1]!.fraction!)), 'rising fractions below 1');
  // Each stage's own record in its folder (Extended: the tokenizer stage's SentencePiece donor, and the
  // extended tokenizer), tagged with the adapt stage and its recipe section; no notes of adapt's own.
  const folders = { 'tokenizer-donor': ['tokenizer', 'tokenizer'], tokenizer: ['extend', 'tokenizer'], init: ['init', 'init'], data: ['data', 'data'], train: ['train', 'train'], 'propagate-conversion': ['propagate', 'propagate'], 'propagate-overlap': ['propagate', 'propagate'], 'propagate-swap': ['propagate', 'propagate'] } as const;
  for (const [dir, [stage, adaptStage]] of Object.entries(folders)) {
    const record = readStageRecord(join(out, dir));
    t.is(record.stage, stage, dir);
    t.is((record.tags?.adapt as { stage: string }).stage, adaptStage, dir);
  }
  t.like(readStageRecord(join(out, 'train')).tags, { adapt: { options: { train: { steps: 6, newRowsOnly: true } } } });
  t.false(existsSync(join(out, STAGE_NOTES_DIR)), 'no OUT/stages');
  for (const s of ['tokenizer', 'data', 'train', 'propagate-conversion']) t.false(existsSync(join(out, s, MANIFEST_FILE)), `adapt writes no ${MANIFEST_FILE} into ${s}`);
  t.deepEqual(Object.keys(r.records), ['tokenizer', 'init', 'data', 'train', 'propagate']);
  t.deepEqual(r.records.propagate!.map((x) => x.resolved.method), ['swap', 'overlap', 'conversion']);
  // One propagation job for every method (overlap and conversion accumulate their shared rows once): each
  // side's solve is the job's, so both reports carry the same solve time; two jobs would time two solves.
  const sides = (m: string) => (r.records.propagate!.find((x) => x.resolved.method === m)!.result as { sides: { solveSeconds: number }[] }).sides;
  t.deepEqual(sides('overlap').map((x) => x.solveSeconds), sides('conversion').map((x) => x.solveSeconds));
  t.true(sides('conversion').every((x) => x.solveSeconds > 0));
  // init's manifest.json is lep init's own (inputs with hashes), not overwritten by adapt.
  const initManifest = JSON.parse(readFileSync(join(out, 'init', MANIFEST_FILE), 'utf8'));
  t.like(initManifest, { stage: 'init', options: { rule: 'mean' }, result: { newSize: (r.records.init![0]!.result as { newSize: number }).newSize } });
  t.regex(initManifest.inputs.newTokenizer.files['tokenizer.json'], /^[0-9a-f]{64}$/);
  t.false('finished' in initManifest);
  // The run's own record, written last: the recipe, its inputs, and where each stage's record is.
  const run = readStageRecord(out, 'adapt');
  t.deepEqual(run.inputs.map((i) => i.role), ['base', 'instruct', 'corpus', 'evalCorpus']);
  const stages = (run.result as { stages: Record<string, { records: string[]; ran: boolean }> }).stages;
  t.deepEqual(stages.init, { records: [join('init', STAGE_RECORD_FILE)], ran: true });
  t.deepEqual(stages.tokenizer!.records, [join('tokenizer-donor', STAGE_RECORD_FILE), join('tokenizer', STAGE_RECORD_FILE)]);
  t.deepEqual(stages.propagate!.records, Object.keys(r.models).map((m) => join(`propagate-${m}`, STAGE_RECORD_FILE)));
  for (const s of Object.values(stages)) for (const f of s.records) t.true(existsSync(join(out, f)), f);
  t.like(readStageRecord(join(out, 'data'), 'data').resolved, { seqLen: 64, evalBlocks: 4, maxChars: 300_000 });

  // New rows only: rows copied from the base (every original Mistral token) did not move in training.
  const trained = JSON.parse(readFileSync(join(out, 'train', 'train-config.json'), 'utf8'));
  t.true(trained.rows.length > 0 && trained.rows.every((id: number) => id >= 32000), 'only new tokens (ids after the original 32000) train');

  const tok = Tokenizer.fromDir(r.models.conversion!);
  t.true(tok.size > 32000, 'the Extended vocabulary');
  t.truthy(tok.chatTemplate, 'the instruct model chat template is carried over');
  for (const [method, model] of Object.entries(r.models)) {
    const m = await LepModel.load(model);
    const prompt = m.tokenizer!.applyChatTemplate([{ role: 'user', content: 'Привет' }]);
    const g = await m.generate(prompt, { maxNewTokens: 4, addSpecialTokens: false });
    t.is(g.tokens.length > 0, true, method);
    m.dispose();
  }

  const again = await adapt(recipe, out);
  t.deepEqual(again.ran, [], 'a finished run is not redone');
  t.deepEqual(again.records, r.records, 'the records of the kept stages');
  // The merge order is compared as resolved: naming the default changes nothing (so a changed default,
  // new-first -> keep-ascii, redoes the tokenizer of a run that left it unset).
  t.deepEqual((await adapt({ ...recipe, tokenizer: { ...recipe.tokenizer, mergeOrder: DEFAULT_MERGE_ORDER } }, out)).ran, [], 'the default, named');
  // A stage folder without its record did not finish (killed before its last write): that stage is redone.
  rmSync(join(out, 'propagate-swap', STAGE_RECORD_FILE));
  t.deepEqual((await adapt(recipe, out)).ran, ['propagate']);
  const changed = await adapt({ ...recipe, train: { ...recipe.train, steps: 7 } }, out);
  t.deepEqual(changed.ran, ['train', 'propagate']);
  // A training stage stopped before its record (killed) goes on from its newest checkpoint, and says so.
  rmSync(join(out, 'train', STAGE_RECORD_FILE));
  const resumedEvents: AdaptProgress[] = [];
  t.deepEqual((await adapt({ ...recipe, train: { ...recipe.train, steps: 7 } }, out, { onProgress: (p) => resumedEvents.push(p) })).ran, ['train', 'propagate']);
  t.true(resumedEvents.some((e) => e.stage === 'train' && /^resuming from \S+step-0*7 \(step 7 of 7\)$/.test(e.detail)), JSON.stringify(resumedEvents.filter((e) => e.stage === 'train')));
  // Inputs are compared by content: the instruct weights rewritten as they were, with a new time, change
  // nothing; one bit of one weight changed redoes what reads them.
  const weights = join(instruct, 'model.safetensors');
  const bytes = readFileSync(weights);
  writeFileSync(weights, bytes);
  utimesSync(weights, new Date(), new Date(Date.now() + 5000));
  t.deepEqual((await adapt({ ...recipe, train: { ...recipe.train, steps: 7 } }, out)).ran, [], 'same bytes, new time');
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 4) ^ 1, bytes.length - 4);  // the lowest mantissa bit of a weight near the end (f32 or bf16)
  writeFileSync(weights, bytes);
  const touched = await adapt({ ...recipe, train: { ...recipe.train, steps: 7 } }, out);
  t.deepEqual(touched.ran, ['propagate']);
});

test('lep adapt: two instruct models and LoRA + embeddings CPT, merged with alpha / alphaScale into each', async (t) => {
  const files = await corpora();
  const { base, instruct, data } = await family();
  const dir = tempDir();
  // A second fine-tune of the same base; both under distinct folder names (OUT/propagate-<method>/<name>).
  await trainModel(base, join(dir, 'code'), { data, steps: 4, batchSize: 4, lr: 2e-3, warmupSteps: 1, seed: 5 });
  symlinkSync(instruct, join(dir, 'chat'));
  const recipe = resolveRecipePaths(
    validateRecipe({
      base,
      instruct: ['chat', 'code'],
      corpus: { train: files['ru.txt'], maxChars: 200_000 },
      tokenizer: { kind: 'extend', vocabSize: 1200 },
      train: { seqLen: 64, steps: 3, batchSize: 4, lr: 1e-3, warmupSteps: 1, evalBlocks: 2, lora: { rank: 2, alpha: 4 } },
      propagate: { methods: ['conversion'], alphaScale: 2 },
    }),
    dir,
  );
  const out = join(dir, 'adapt');
  const r = await adapt(recipe, out);
  t.true(existsSync(join(out, 'train', 'adapter', 'adapter_config.json')), 'the CPT stage trained a LoRA');
  const adapter = JSON.parse(readFileSync(join(out, 'train', 'adapter', 'adapter_config.json'), 'utf8'));
  t.deepEqual(adapter.modules_to_save, ['embed_tokens', 'lm_head'], 'embeddings and head trained with it');
  t.deepEqual(r.targets.conversion!.map((x) => x.out), [join(out, 'propagate-conversion', 'chat'), join(out, 'propagate-conversion', 'code')]);
  for (const { out: model } of r.targets.conversion!) {
    const report = JSON.parse(readFileSync(join(model, 'propagate_report.json'), 'utf8'));
    t.is(report.options.alphaScale, 2);
    t.is(report.lora.mergedScale, 4 / 2 / 2);
    const m = await LepModel.load(model);
    m.dispose();
  }
  t.deepEqual((await adapt(recipe, out)).ran, [], 'resumes: nothing redone');
  t.deepEqual(readStageRecord(join(out, 'propagate-conversion', 'code'), 'propagate').resolved.instruct, join(dir, 'code'));
  // A run an earlier lep started kept notes of its own, OUT/stages/<stage>.json: the recipe section it
  // ran with and its inputs' sizes and modification times (`files`); its records carry no tag. Such
  // notes, made here from the tags, resume the run; a note whose file times no longer hold does not.
  const notes = join(out, STAGE_NOTES_DIR);
  mkdirSync(notes);
  const folderOf: Record<string, string> = { tokenizer: 'tokenizer', init: 'init', data: 'data', train: 'train', propagate: 'propagate-conversion/chat' };
  const chatWeights = join(instruct, 'model.safetensors');
  for (const [stage, folder] of Object.entries(folderOf)) {
    const st = statSync(chatWeights);
    const options = { ...(readStageRecord(join(out, folder)).tags!.adapt as { options: object }).options, ...(stage === 'propagate' ? { files: [[chatWeights, st.size, Math.round(st.mtimeMs)]] } : {}) };
    writeFileSync(join(notes, `${stage}.json`), JSON.stringify({ stage, options, result: null, seconds: 1, finished: new Date().toISOString() }));
  }
  const records = readdirSync(out, { recursive: true }).map(String).filter((f) => f.endsWith(STAGE_RECORD_FILE) && f !== STAGE_RECORD_FILE);
  t.true(records.length >= 6, records.join(' '));
  for (const f of records) {
    const { tags: _tags, ...untagged } = JSON.parse(readFileSync(join(out, f), 'utf8'));
    writeFileSync(join(out, f), JSON.stringify(untagged));
  }
  t.deepEqual((await adapt(recipe, out)).ran, [], 'a run with notes in OUT/stages resumes: nothing redone');
  // lep 0.1.0: the notes were manifest.json inside each stage folder, and no stage kept a record.
  for (const [stage, folder] of Object.entries(folderOf)) renameSync(join(notes, `${stage}.json`), join(out, stage === 'propagate' ? 'propagate-conversion' : folder, MANIFEST_FILE));
  rmSync(notes, { recursive: true });
  for (const f of records) rmSync(join(out, f));
  t.deepEqual((await adapt(recipe, out)).ran, [], 'a 0.1.0 run resumes: nothing redone');
  // The propagate note's file times no longer hold (the instruct weights touched): propagation is redone,
  // and the run's stages are tagged records from then on.
  utimesSync(chatWeights, new Date(), new Date(Date.now() + 5000));
  t.deepEqual((await adapt(recipe, out)).ran, ['propagate']);
  t.is((readStageRecord(join(out, 'propagate-conversion', 'code')).tags?.adapt as { stage: string }).stage, 'propagate');
  t.throws(() => validateRecipe({ ...recipe, propagate: { alphaScale: 2 }, train: { seqLen: 64 } }), { message: /alphaScale needs train\.lora/ });
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (docs/architecture.md, fork hazard).
test.serial('lep adapt --progress json: one stage progress object a line on stderr, counts and ETAs included; the summary names the calibrated model', async (t) => {
  const files = await corpora();
  const { base, instruct } = await family();
  const dir = tempDir();
  const recipe = join(dir, 'recipe.json');
  writeFileSync(recipe, JSON.stringify({
    base, instruct,
    corpus: { train: files['ru.txt'], maxChars: 100_000 },
    tokenizer: { kind: 'extend', vocabSize: 1200 },
    train: { seqLen: 64, steps: 3, batchSize: 4, lr: 1e-3, warmupSteps: 1 },
    propagate: { methods: ['swap'] },
    calibrate: { mode: 'self', prompts: 4, maxNewTokens: 8, corpora: CORPORA, copyText: files['ru.txt'], copyExamples: 4, seqLen: 64, train: { steps: 2, batchSize: 2, warmupSteps: 1 } },
  }));
  const r = spawnSync('node', [LEP_CLI, 'adapt', recipe, '--out', join(dir, 'out'), '--progress', 'json'], { encoding: 'utf8' });
  t.is(r.status, 0, r.stderr);
  const events = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as StageProgress);
  t.true(events.every((e) => typeof e.stage === 'string' && typeof e.phase === 'string' && typeof e.done === 'number' && typeof e.total === 'number'));
  t.deepEqual([...new Set(events.map((e) => e.stage))], ['tokenizer', 'init', 'data', 'train', 'propagate', 'calibrate']);
  // The summary on stdout names every model the run wrote, the calibrated one included.
  const out = join(dir, 'out');
  t.is(r.stdout, `${out}: ran tokenizer, init, data, train, propagate, calibrate\n  swap: ${join(out, 'propagate-swap')}\n  swap + calibration: ${join(out, 'calibrate-swap')}\n`);
  const steps = events.filter((e) => e.stage === 'train' && e.phase === 'train');
  t.deepEqual(steps.map((e) => [e.done, e.total]), [[1, 3], [2, 3], [3, 3]]);
  t.true(steps.every((e) => typeof e.etaSeconds === 'number' && e.etaSeconds >= 0), JSON.stringify(steps));
  t.is(steps.at(-1)!.etaSeconds, 0);
  t.regex(steps[0]!.detail!, /^step 1\/3 loss \d+\.\d{3}$/);
  t.true(events.some((e) => e.stage === 'data' && e.phase === 'packing' && e.total > 0 && e.done > 0), 'packing counts bytes of the corpus');
  t.deepEqual(events.filter((e) => e.phase === 'stage' && e.done === 1).map((e) => e.stage), ['tokenizer', 'init', 'data', 'train', 'propagate', 'calibrate'], 'each stage ends with done 1 of 1');
  const bad = spawnSync('node', [LEP_CLI, 'adapt', recipe, '--out', join(dir, 'out'), '--progress', 'xml'], { encoding: 'utf8' });
  t.not(bad.status, 0);
  t.regex(bad.stderr, /Expected text or json for --progress but received "xml"\nHINT: --progress json prints one JSON object a line/);
});
