/**
 * The main job (`npm start`): the whole method on built-in defaults, on this machine's CPU.
 *   1. the Debian corpora (fetched once, cached);
 *   2. `lep adapt` with the shipped toy recipes (recipes/toy-ru-extended.yaml: Extended vocabulary;
 *      recipes/toy-ru-bpe.yaml: a full Russian BPE replacement) on the committed toy base/instruct family:
 *      tokenizer, init, embedding training on the base, propagation into the instruct model by swap,
 *      overlap and conversion;
 *   3. every propagated model and the original instruct model measured on held-out Russian and English
 *      text: symbols per token and bits per character (comparable across vocabularies), and a greedy
 *      Russian answer through the chat template;
 *   4. the recipes' calibration stage: the swap-propagated model of each vocabulary self-calibrated with
 *      LoRA (answers of the original instruct model plus Russian copy examples), measured the same way;
 *   5. the best propagated model exported to GGUF for llama.cpp.
 * Prints a table shaped like the paper's Table 3 and writes DIR/report.html (table, training curves, bars;
 * self-contained) and DIR/results.json. Resumable: finished stages are kept (see ts/adapt/adapt.ts).
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';

import { adapt, type AdaptProgress } from '../adapt/adapt.js';
import { LepError } from '../errors.js';
import { readRecipe } from '../adapt/recipe.js';
import { exportGguf } from '../checkpoint/gguf.js';
import { fetchCorpora } from '../corpus/fetchDebian.js';
import { evaluate } from '../eval/evaluate.js';
import { LepModel } from '../model/LepModel.js';
import { lepInfo } from '../runtime.js';
import { formatTable, parseTrainLog, writeReport, type ReportInput, type TrainingRun } from '../report/writeReport.js';
import { userCacheDir } from '../util/userCacheDir.js';
import { parse } from './args.js';

export const usage = `lep demo [--out DIR] [--quick]   the whole pipeline on built-in defaults (default DIR: ./lep-demo)
  --quick: fewer training steps and less evaluation text (minutes instead of ~20 minutes on 2 cores)`;

const PACKAGE_ROOT = resolve(import.meta.dirname, '..', '..', '..');
const RECIPES = { Extended: 'toy-ru-extended.yaml', BPE: 'toy-ru-bpe.yaml' } as const;
/** The npm package holding the toy family when lep is installed rather than cloned (release:pack makes it). */
const TOY_FAMILY_PACKAGE = 'lep-toy-family';

/**
 * Where the demo keeps its corpora and evaluation suites: a clone's own .cache (shared with the tests,
 * which fetch the same corpora), else the user's cache folder: an installed package's folder is not ours
 * to write.
 */
function demoCacheDir(): string {
  return existsSync(join(PACKAGE_ROOT, 'test', 'fixtures')) ? join(PACKAGE_ROOT, '.cache') : userCacheDir();
}

/** The toy base/instruct family: a clone's test/fixtures/toy-family, else the lep-toy-family package. */
function toyFamilyDir(): string {
  const clone = join(PACKAGE_ROOT, 'test', 'fixtures', 'toy-family');
  if (existsSync(join(clone, 'base', 'config.json'))) return clone;
  try {
    return dirname(createRequire(import.meta.url).resolve(`${TOY_FAMILY_PACKAGE}/package.json`));
  } catch {
    throw new LepError(
      'LEP_DEMO_NO_TOY_FAMILY',
      `lep demo runs on a toy model family that is not part of the lep package (27 MB).\nHINT: npm install ${TOY_FAMILY_PACKAGE} (offline: the ${TOY_FAMILY_PACKAGE}-<version>.tgz that \`npm run release:pack\` writes into release/).`,
    );
  }
}

const PROMPT = 'Скопируй этот текст без изменений:\n\nОткрывает диалоговое окно для выбора файла.';

interface Row {
  vocabulary: string;
  method: string;
  model: string;
  groups: Record<string, number>;
  microAvg: number;
  tasks: Record<string, number>;
  ru: { symbolsPerToken: number; bitsPerChar: number };
  en: { symbolsPerToken: number; bitsPerChar: number };
  answer: string;
}

/**
 * Progress across stages: on a terminal one line rewritten in place (stage, step, bar); otherwise only
 * the lines worth keeping in a log (a stage starting or finishing, evaluation results).
 */
function stageProgress(p: AdaptProgress): void {
  const label = `   [${p.index}/${p.stages} ${p.stage}] ${p.detail}`;
  const keep = p.fraction === 0 || p.fraction === 1 || /eval|packing/.test(p.detail);
  if (!process.stdout.isTTY) {
    if (keep) console.log(label);
    return;
  }
  const bar = p.fraction === undefined ? '' : ` [${'#'.repeat(Math.round(p.fraction * 20)).padEnd(20, '.')}]`;
  process.stdout.write(`\r\x1b[K${label}${bar}${keep ? '\n' : ''}`);
}

export async function run(argv: string[]): Promise<void> {
  const { values } = parse(argv, { out: { type: 'string' }, quick: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const toyFamily = toyFamilyDir();
  const out = resolve((values.out as string | undefined) ?? 'lep-demo');
  const quick = Boolean(values.quick);
  mkdirSync(out, { recursive: true });
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  const info = lepInfo();
  console.log(`lep ${info.lepVersion} on libtorch ${info.torchVersion}, ${info.blas} (${info.blasThreads} threads), CUDA ${info.cudaAvailable ? 'yes' : 'no'}`);

  console.log('\n1. corpora (Debian packages, cached)');
  const corpora = await fetchCorpora({ cacheDir: join(demoCacheDir(), 'corpora') });
  console.log(`   ${Object.keys(corpora.files).join(', ')}${corpora.cached ? ' (cached)' : ''}`);

  const rows: Row[] = [];
  const heldOut = { ru: corpora.files['heldout/ru.txt']!, en: corpora.files['heldout/en.txt']! };
  const measure = async (vocabulary: string, method: string, dir: string) => {
    const m = await LepModel.load(dir);
    try {
      // The built-in Darumeru-style suites (held-out Debian material) through the chat template, and bits
      // per character / symbols per token on held-out text.
      const e = await evaluate(m, ['all'], {
        limit: quick ? 12 : undefined,
        textMaxChars: quick ? 20_000 : 100_000,
        suitesDir: join(demoCacheDir(), 'eval-suites'),
        corporaDir: join(demoCacheDir(), 'corpora'),
      });
      const prompt = m.tokenizer!.applyChatTemplate([{ role: 'user', content: PROMPT }]);
      const answer = (await m.generate(prompt, { maxNewTokens: 32, addSpecialTokens: false })).text;
      const r: Row = {
        vocabulary, method, model: dir, groups: e.summary.groups, microAvg: e.summary.microAvg,
        tasks: Object.fromEntries(e.tasks.map((x) => [x.name, x.score])),
        ru: pick(e.text.ru!), en: pick(e.text.en!), answer,
      };
      rows.push(r);
      console.log(`   ${vocabulary.padEnd(9)} ${method.padEnd(10)} Micro-Avg ${r.microAvg.toFixed(3)}; RU ${r.ru.symbolsPerToken.toFixed(2)} sym/tok, ${r.ru.bitsPerChar.toFixed(3)} bpc  (${elapsed()})`);
    } finally {
      m.dispose();
    }
  };
  const pick = (x: { symbolsPerToken: number; bitsPerChar: number }) => ({ symbolsPerToken: x.symbolsPerToken, bitsPerChar: x.bitsPerChar });

  let step = 2;
  let instructMeasured = false;
  for (const [vocabulary, file] of Object.entries(RECIPES)) {
    const recipe = { ...readRecipe(join(PACKAGE_ROOT, 'recipes', file)), base: join(toyFamily, 'base'), instruct: join(toyFamily, 'instruct') };
    if (quick) {
      recipe.train = { ...recipe.train, steps: 60, evalEvery: 30, warmupSteps: 6 };
      if (recipe.calibrate) recipe.calibrate = { ...recipe.calibrate, prompts: 32, copyExamples: 32, maxNewTokens: 48 };
    }
    if (!instructMeasured) {
      console.log(`\n${step++}. the original instruct model (${recipe.instruct})`);
      await measure('original', '-', recipe.instruct);
      instructMeasured = true;
    }
    console.log(`\n${step++}. lep adapt recipes/${file} -> ${join(out, vocabulary)}`);
    const r = await adapt(recipe, join(out, vocabulary), {
      onProgress: stageProgress,
    });
    for (const [method, dir] of Object.entries(r.models)) await measure(vocabulary, method, dir);
    for (const [method, dir] of Object.entries(r.calibrated)) await measure(vocabulary, `${method} + calibration`, dir);
  }

  const training: TrainingRun[] = [];
  for (const vocabulary of Object.keys(RECIPES)) {
    const log = join(out, vocabulary, 'train', 'train.log');
    if (existsSync(log)) training.push({ label: `${vocabulary}: embedding training of the base`, points: parseTrainLog(readFileSync(log, 'utf8')) });
  }
  const report: ReportInput = {
    title: 'lep demo: the toy family moved onto Russian',
    date: new Date().toISOString(),
    seconds: (Date.now() - t0) / 1000,
    machine: `${info.blasThreads} BLAS threads, libtorch ${info.torchVersion}, ${info.blas}${info.cudaAvailable ? ', CUDA' : ''}`,
    rows: rows.map((r) => ({ vocabulary: r.vocabulary, method: r.method, groups: r.groups, microAvg: r.microAvg, tasks: r.tasks, symbolsPerToken: r.ru.symbolsPerToken, bitsPerChar: r.ru.bitsPerChar })),
    training,
    notes: [
      'Group scores: the built-in Darumeru-style suites (copy, translation, FAQ, dictionary choice, man-page summary) built from held-out Debian material, zero-shot through each model\'s chat template. Symbols per token and bits per character: held-out Russian Debian text (never trained on).',
      ...rows.map((r) => `${r.vocabulary}/${r.method}: English held-out ${r.en.bitsPerChar.toFixed(3)} bits/char; answer to ${JSON.stringify(PROMPT)}: ${JSON.stringify(r.answer)}`),
    ],
  };
  console.log(`\nResults on held-out Russian Debian text (${quick ? 'quick run' : 'full run'}, ${elapsed()} in all):\n`);
  console.log(formatTable(report));
  const best = rows.filter((r) => r.method !== '-' && !r.method.includes('calibration')).reduce((a, b) => (b.ru.bitsPerChar < a.ru.bitsPerChar ? b : a));
  const gguf = join(out, `${best.vocabulary}-${best.method}.f16.gguf`);
  // The demo always exports its best model; an Extended or Optimized Mistral vocabulary is one llama.cpp
  // tokenises differently (docs/reliability.md), so it is written with --force and the measured agreement shown.
  const exported = await exportGguf(best.model, gguf, { outType: 'f16', force: true });
  console.log(`\nThe best by Russian bits/char (${best.vocabulary}, ${best.method}) exported for llama.cpp: ${gguf} (${(statSync(gguf).size / 1e6).toFixed(1)} MB)`);
  if (exported.warning) console.log(`  warning: ${exported.warning}`);
  console.log(`\nA Russian copy request through each model's chat template: ${JSON.stringify(PROMPT)}`);
  for (const r of rows) console.log(`   ${r.vocabulary}/${r.method}: ${JSON.stringify(r.answer)}`);
  const written = writeReport({ ...report, seconds: (Date.now() - t0) / 1000 }, out);
  console.log(`\nwrote ${written.html} and ${written.json}`);
}
