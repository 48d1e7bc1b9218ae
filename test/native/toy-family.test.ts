// The committed toy base/instruct family (scripts/make-toy-family.ts): its claims re-measured from the
// files, on held-out Debian text the training never saw; and the script itself run end to end (--quick),
// for both families, with the properties of version 2 (issue 14): special chat tokens, an instruct model
// whose EOS is its turn-end token, and the closeness of base and instruct recorded in provenance. The
// committed files' v2 checks run once the committed family is v2 (until then ava lists them as skipped).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { LepModel, mistralTokenizerDir, readTexts, Tokenizer } from '../../ts/index.js';
import { packDocuments } from '../../ts/train/index.js';
import { evaluate } from '../../ts/eval/evaluate.js';
import { propagate } from '../../ts/propagate/propagate.js';
import { corpora } from '../corpora.js';
import { tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const FAMILY = join(ROOT, 'test', 'fixtures', 'toy-family');
const SCRIPT = join(ROOT, 'dist', 'scripts', 'make-toy-family.js');
const FAMILY_LLAMA3 = join(ROOT, 'test', 'fixtures', 'toy-family-llama3');
const provenance = () => JSON.parse(readFileSync(join(FAMILY, 'provenance.json'), 'utf8'));
const COMMITTED_V2 = provenance().version >= 2;
const MARKERS = { mistral: { specials: ['<|im_start|>', '<|im_end|>'], turnEnd: '<|im_end|>' }, llama3: { specials: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'], turnEnd: '<|eot_id|>' } } as const;

/** Version-2 properties of a family directory: markers are special tokens the template uses, the instruct EOS is the turn end, closeness recorded. */
function checkV2(t: import('ava').ExecutionContext, dir: string, family: keyof typeof MARKERS): void {
  const p = JSON.parse(readFileSync(join(dir, 'provenance.json'), 'utf8'));
  t.true(p.version === 2 || p.version === 3, `version ${p.version}`);
  // v3: the instruct stage trains its embeddings and head at a lower rate than the rest.
  if (p.version === 3) t.true(p.training.instruct.embeddingLr < p.training.instruct.lr, 'v3 instruct embeddings at a lower learning rate');
  t.is(p.family, family);
  for (const m of ['base', 'instruct']) {
    const tok = Tokenizer.fromDir(join(dir, m));
    const added = tok.json.added_tokens as { content: string; id: number; special: boolean }[];
    for (const s of MARKERS[family].specials) {
      t.true(added.some((a) => a.content === s && a.special && a.id === p.chatTokens[s]), `${m}: ${s} is a special added token`);
      t.true(tok.chatTemplate!.includes(s), `${m}: the chat template uses ${s}`);
    }
  }
  const instruct = Tokenizer.fromDir(join(dir, 'instruct'));
  t.is(instruct.specialToken('eos'), MARKERS[family].turnEnd, 'the instruct model stops at the end of its turn');
  t.is(JSON.parse(readFileSync(join(dir, 'instruct', 'generation_config.json'), 'utf8')).eos_token_id, instruct.specialId('eos'));
  t.not(Tokenizer.fromDir(join(dir, 'base')).specialToken('eos'), MARKERS[family].turnEnd, 'the base keeps the plain end of text');
  for (const side of ['input', 'output']) {
    const c = p.results.closeness[side];
    t.true(c.baseInstructCorrelation > -1 && c.baseInstructCorrelation <= 1, `${side} correlation ${c.baseInstructCorrelation}`);
    t.true(c.conversionResidual >= 0 && c.conversionResidual < 2, `${side} conversion residual ${c.conversionResidual}`);
  }
  for (const lang of ['en', 'ru']) t.true(Number.isFinite(p.results.lmLossRatio[lang]));
  t.true(p.data.instruct.lmMix > 0 && p.data.instruct.plainBlocks > 0, 'the instruct stage mixed plain text in');
}

async function heldOutBlocks(file: string, tok: Tokenizer, n: number): Promise<number[][]> {
  const docs: string[][] = [];
  for await (const d of readTexts(file, { mode: 'document' })) docs.push(d.split('\n'));
  return (await packDocuments(docs, tok, { seqLen: 128, maxBlocks: n })).blocks;
}

async function meanLoss(m: LepModel, blocks: number[][]): Promise<number> {
  let sum = 0;
  let n = 0;
  for (const s of await m.score(blocks)) for (const lp of s.tokenLogprobs) (sum -= lp, n++);
  return sum / n;
}

const share = (text: string, script: RegExp) => (text.match(script)?.length ?? 0) / Math.max(1, text.match(/\p{L}/gu)?.length ?? 0);

test('committed files: LLaMA layout, untied, Mistral tokenizer with a chat template, about 30 MB, provenance recorded', (t) => {
  // (v2 adds two special tokens after Mistral's 32000: 2 x 96 x 2 x 2 bytes more per model)
  let bytes = 0;
  let weights = 0;
  for (const m of ['base', 'instruct']) {
    const dir = join(FAMILY, m);
    for (const f of readdirSync(dir)) bytes += statSync(join(dir, f)).size;
    weights += statSync(join(dir, 'model.safetensors')).size;
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    t.is(cfg.model_type, 'llama');
    t.false(cfg.tie_word_embeddings);
    t.is(cfg.torch_dtype, 'bfloat16');
    t.deepEqual(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')).model.vocab, JSON.parse(readFileSync(join(mistralTokenizerDir(), 'tokenizer.json'), 'utf8')).model.vocab);
    t.truthy(Tokenizer.fromDir(dir).chatTemplate);
  }
  // Two bf16 models of 6.8 M parameters (27.3 MB) plus two copies of Mistral's 1.8 MB tokenizer.json.
  t.true(weights < 28e6 && bytes < 32e6, `weights ${(weights / 1e6).toFixed(1)} MB, all files ${(bytes / 1e6).toFixed(1)} MB`);
  const p = provenance();
  t.regex(p.command, /make-toy-family/);
  t.truthy(p.seeds.model);
  t.true(p.data.base.unigramEntropyNats > 5);
});

test('base: held-out loss well below the unigram entropy of its data; continues English and Russian in their scripts', async (t) => {
  const files = await corpora();
  const m = await LepModel.load(join(FAMILY, 'base'));
  const tok = m.tokenizer!;
  const entropy = provenance().data.base.unigramEntropyNats as number;
  for (const lang of ['en', 'ru']) {
    const loss = await meanLoss(m, await heldOutBlocks(files[`heldout/${lang}.txt`]!, tok, 8));
    t.log(`${lang}: held-out loss ${loss.toFixed(3)} nats vs unigram entropy ${entropy.toFixed(3)}`);
    t.true(loss < entropy - 1, `${lang} held-out loss ${loss}`);
  }
  const en = await m.generate('To insert a table, choose', { maxNewTokens: 24, stopTokens: [] });
  const ru = await m.generate('Чтобы вставить таблицу, выберите', { maxNewTokens: 24, stopTokens: [] });
  t.log(`EN: ${JSON.stringify(en.text)}\nRU: ${JSON.stringify(ru.text)}`);
  t.true(share(en.text, /\p{Script=Latin}/gu) > 0.8, en.text);
  t.true(share(ru.text, /\p{Script=Cyrillic}/gu) > 0.8, ru.text);
  m.dispose();
});

test('instruct: follows the chat template and copies held-out text better than the base', async (t) => {
  await corpora();
  const dirs = { suitesDir: join(ROOT, '.cache', 'eval-suites'), corporaDir: join(ROOT, '.cache', 'corpora') };
  // The benchmark's own protocol: the instruct model zero-shot through its chat template, the base model
  // 5-shot in the plain format; copy_sent scores min(pred/ref, ref/pred) in tokens.
  const instruct = await evaluate(join(FAMILY, 'instruct'), ['copy_sent_en', 'copy_sent_ru'], { limit: 20, ...dirs });
  const base = await evaluate(join(FAMILY, 'base'), ['copy_sent_en', 'copy_sent_ru'], { limit: 20, format: 'plain', ...dirs });
  for (const [i, task] of instruct.tasks.entries()) {
    const b = base.tasks[i]!;
    t.log(`${task.name}: instruct ${task.score.toFixed(3)} vs base ${b.score.toFixed(3)}; instruct generations without a stop: ${task.unstopped}/${task.items}`);
    // Measured (20 items): v1's chat-only instruct model 0.94 / 0.98 (EN / RU) against the base's 0.30 / 0.24;
    // v2's 0.70 / 0.56 against 0.19 / 0.28; v3's (50 items) 0.66 / 0.54. v2 keeps its language modelling (the test below) by mixing plain
    // text into the instruct stage at a low learning rate, and follows the copy request less well for it.
    t.true(task.score > 0.5 && task.score > b.score + 0.2, `${task.name}: instruct ${task.score} vs base ${b.score}`);
    // v2 left at most 4 of 20 unstopped; v3 (embeddings at a tenth of the instruct stage's rate) 4 / 7 (EN / RU).
    t.true(task.unstopped <= 8, 'the instruct model closes its answer with EOS as the template does (at least 12 of 20)');
  }
});

(COMMITTED_V2 ? test : test.skip)('committed v2 families: special chat tokens, turn-end EOS, closeness recorded; both families under ~60 MB of weights', (t) => {
  checkV2(t, FAMILY, 'mistral');
  let weights = 0;
  for (const f of [FAMILY, FAMILY_LLAMA3]) for (const m of ['base', 'instruct']) weights += statSync(join(f, m, 'model.safetensors')).size;
  checkV2(t, FAMILY_LLAMA3, 'llama3');
  t.true(weights < 62e6, `weights of both families ${(weights / 1e6).toFixed(1)} MB`);
});

(COMMITTED_V2 ? test : test.skip)('committed v2 families: the instruct model stays a language model (held-out loss within 10% of the base\'s)', async (t) => {
  const files = await corpora();
  for (const dir of [FAMILY, FAMILY_LLAMA3]) {
    const base = await LepModel.load(join(dir, 'base'));
    const instruct = await LepModel.load(join(dir, 'instruct'));
    for (const lang of ['en', 'ru']) {
      const blocks = await heldOutBlocks(files[`heldout/${lang}.txt`]!, base.tokenizer!, 8);
      const [b, i] = [await meanLoss(base, blocks), await meanLoss(instruct, blocks)];
      t.log(`${dir} ${lang}: held-out loss base ${b.toFixed(3)}, instruct ${i.toFixed(3)} (x${(i / b).toFixed(3)})`);
      t.true(i <= 1.1 * b, `${lang}: instruct ${i} vs base ${b}`);
    }
    base.dispose();
    instruct.dispose();
  }
});

test('committed Mistral family: the instruct model works with the base\'s embedding rows, as Swap assumes (copy >= 0.8x its own)', async (t) => {
  await corpora();
  const dirs = { suitesDir: join(ROOT, '.cache', 'eval-suites'), corporaDir: join(ROOT, '.cache', 'corpora'), limit: 50 };
  // Swap with the base as its own donor: the instruct model with every row of the base (its specials
  // excepted, which propagation copies from the instruct model), nothing trained.
  const swapped = join(tempDir(), 'swapped');
  await propagate({ base: join(FAMILY, 'base'), donor: join(FAMILY, 'base'), instruct: join(FAMILY, 'instruct'), out: swapped, method: 'swap' });
  const own = await evaluate(join(FAMILY, 'instruct'), ['copy_sent_en', 'copy_sent_ru'], dirs);
  const base = await evaluate(swapped, ['copy_sent_en', 'copy_sent_ru'], dirs);
  for (const [i, task] of own.tasks.entries()) {
    const b = base.tasks[i]!;
    t.log(`${task.name}: own rows ${task.score.toFixed(3)}, the base's ${b.score.toFixed(3)} (x${(b.score / task.score).toFixed(2)})`);
    // Measured (50 items): v3 0.662 -> 0.589 (EN), 0.542 -> 0.507 (RU); v2 (embeddings at the instruct
    // stage's full rate) 0.699 -> 0.327 and 0.512 -> 0.366, which made Swap fail on this family.
    t.true(b.score >= 0.8 * task.score, `${task.name}: the base's rows ${b.score} vs its own ${task.score}`);
  }
});

// serial: forking while another test's native job is inside OpenBLAS can deadlock (OpenBLAS's pre-fork handler, blas_thread_shutdown_).
test.serial('the family script runs end to end (--quick) and records its provenance', async (t) => {
  const { CORPORA } = await import('../corpora.js');
  await corpora();
  const out = join(tempDir(), 'family');
  await promisify(execFile)(process.execPath, [SCRIPT, '--quick', '--out', out, '--work', join(tempDir(), 'work'), '--corpora', CORPORA, '--threads', '1']);
  const p = JSON.parse(readFileSync(join(out, 'provenance.json'), 'utf8'));
  t.regex(p.command, /--quick/);
  for (const m of ['base', 'instruct']) {
    const model = await LepModel.load(join(out, m));
    t.is(model.config.hiddenSize, 32);
    model.dispose();
    t.true(Number.isFinite(p.results[m].heldOutLoss.en));
  }
  t.true(p.results.base.heldOutLoss.en < 10.2, 'even the quick run learns something (the random init scores ln 32000 = 10.37)');
  checkV2(t, out, 'mistral');
});

test.serial('the family script makes the LLaMa-3 byte-level family too (--family llama3 --quick)', async (t) => {
  const { CORPORA } = await import('../corpora.js');
  await corpora();
  const out = join(tempDir(), 'family');
  await promisify(execFile)(process.execPath, [SCRIPT, '--family', 'llama3', '--quick', '--out', out, '--work', join(tempDir(), 'work'), '--corpora', CORPORA, '--threads', '1']);
  checkV2(t, out, 'llama3');
  const tok = Tokenizer.fromDir(join(out, 'base'));
  t.true(tok.byteLevel, 'a byte-level BPE');
  t.is(tok.size, 8005);
  t.false(existsSync(join(out, 'base', 'tokenizer.model')));
});
