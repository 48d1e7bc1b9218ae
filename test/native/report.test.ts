/**
 * The run report (ts/report): train.log parsing, the Table 3-shaped table, escaping, and the page itself
 * rendered by headless Chromium from a real (tiny) training run. Chromium is Debian's `chromium`,
 * installed by scripts/setup.sh; without it the rendering test fails rather than skips.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';

import test from 'ava';

import { LepModel, readTexts, Tokenizer, type LepError } from '../../ts/index.js';
import { textMetrics } from '../../ts/eval/textMetrics.js';
import { EVAL_LOSS_COLOR, LOSS_COLOR } from '../../ts/report/charts.js';
import { paletteColor } from '../../ts/report/svg.js';
import { formatTable, modelLabel, parseTrainLog, renderReport, tableHtml, writeReport, type ReportInput, type ReportRow } from '../../ts/report/writeReport.js';
import { packDocuments, writeBlocks } from '../../ts/train/packBlocks.js';
import { trainModel } from '../../ts/train/trainModel.js';
import { corpora } from '../corpora.js';
import { tempDir, tinyModel } from '../helpers.js';

const LLAMA3_8K = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'llama3-8k');
const HOSTILE = `<img src=x onerror="alert('x')"> & </td></tr><script>alert(1)</script>`;

// ---- parseTrainLog ----

test('parseTrainLog: train and eval lines of a step merge; a resume drops the abandoned tail; a partial last line is skipped', (t) => {
  const log = [
    'step 0 | eval_loss 9.0100 | bpc 3.5000',
    'step 1 | loss 9.1000 | lr 1.00e-03 | grad_norm 1.234 | 812 tok/s | 0.4 s',
    'step 2 | loss 8.5000 | lr 2.00e-03 | grad_norm 1.100 | 830 tok/s | 0.8 s',
    'step 2 | eval_loss 8.7000',
    'step 3 | loss 8.1000 | lr 2.00e-03 | grad_norm 0.900 | 840 tok/s | 1.2 s',
    // killed after step 3, newest checkpoint at step 2: step 3 is redone
    'resume from /runs/x/checkpoints/step-00000002',
    'step 3 | loss 8.0000 | lr 2.00e-03 | grad_norm 0.950 | 700 tok/s | 0.4 s',
    'step 4 | loss NaN | lr 2.00e-03 | grad_norm NaN | 700 tok/s | 0.8 s',
    'step 4 | eval_loss 7.5000 | bpc 2.9',
    'step 5 | loss 7.',
  ].join('\n');
  const points = parseTrainLog(log);
  t.deepEqual(points.map((p) => p.step), [0, 1, 2, 3, 4]);
  t.deepEqual(points[0], { step: 0, evalLoss: 9.01, bpc: 3.5 });
  t.deepEqual(points[2], { step: 2, loss: 8.5, evalLoss: 8.7 });
  t.is(points[3]!.loss, 8.0);
  t.true(Number.isNaN(points[4]!.loss));
  t.is(points[4]!.bpc, 2.9);
  t.deepEqual(parseTrainLog(''), []);
});

test('parseTrainLog: a malformed line is reported with its line number and a hint', (t) => {
  const good = 'step 1 | loss 9.1000 | lr 1.00e-03 | grad_norm 1.234 | 812 tok/s | 0.4 s\n';
  const cases: [string, RegExp][] = [
    [`${good}epoch 2 | loss 3\n`, /line 2: expected "step N \| \.\.\." or "resume from \.\.\."/],
    [`${good}step 2 | loss three\n`, /line 2: no number in the field "loss three"/],
    [`${good}step 2 | lr 1e-3\n`, /line 2: neither loss nor eval_loss/],
    [`${good}step 2\n`, /line 2: a step with no values/],
    [`${good}step 2 | loss  3.1 | x\n`, /line 2: cannot read the field/],
  ];
  for (const [log, message] of cases) {
    const e = t.throws(() => parseTrainLog(log));
    t.is((e as LepError).code, 'LEP_BAD_TRAIN_LOG');
    t.regex(e!.message, message);
    t.regex(e!.message, /\nHINT: pass the train\.log that `lep train` writes/);
  }
});

// ---- the table ----

const row = (vocabulary: string, method: string, groups: Record<string, number>, symbolsPerToken: number, bitsPerChar: number, microAvg?: number): ReportRow => ({
  vocabulary,
  method,
  groups,
  symbolsPerToken,
  bitsPerChar,
  ...(microAvg === undefined ? {} : { microAvg }),
});

test('formatTable: Table 3 columns; the best of each column in bold (lower bits/char, ties, missing values)', (t) => {
  const rows = [
    row('original', '-', { 'Copy-EN': 0.95, 'Copy-RU': 0.917 }, 2.41, 1.3, 0.607),
    row('Extended', 'swap', { 'Copy-EN': 0.95, 'Copy-RU': 0.614, QA: 0.3 }, 3.62, 1.25, 0.608),
    row('Extended', 'conversion', { 'Copy-EN': 0.94, 'Copy-RU': 0.651 }, 3.62, 1.27, 0.609),
    row('BPE | v2', 'overlap', {}, 3.9, Number.NaN),
  ];
  const md = formatTable({ rows });
  t.is(
    md,
    [
      '| vocabulary | method | Copy-EN | Copy-RU | QA | Micro-Avg | symbols/token | bits/char |',
      '|---|---|---:|---:|---:|---:|---:|---:|',
      // a tie is bold on both rows; a column with one value (QA) has no winner
      '| original | - | **0.950** | **0.917** | – | 0.607 | 2.41 | 1.300 |',
      '| Extended | swap | **0.950** | 0.614 | 0.300 | 0.608 | 3.62 | **1.250** |',
      '| Extended | conversion | 0.940 | 0.651 | – | **0.609** | 3.62 | 1.270 |',
      '| BPE \\| v2 | overlap | – | – | – | – | **3.90** | – |',
      '',
    ].join('\n'),
  );
  // no group scores and no Micro-Avg anywhere: only the held-out text columns
  t.regex(formatTable({ rows: [row('original', '-', {}, 2.4, 1.3)] }), /^\| vocabulary \| method \| symbols\/token \| bits\/char \|\n/);
});

test('report HTML escapes a hostile model name in the table, the legends and the tooltips', (t) => {
  const rows = [row(HOSTILE, `"swap'`, { [HOSTILE]: 0.5 }, 3, 1.2), row('original', '-', { [HOSTILE]: 0.4 }, 2, 1.4)];
  rows[0]!.tasks = { [HOSTILE]: 0.7 };
  const html = renderReport({ title: HOSTILE, date: 'today', seconds: 1, machine: HOSTILE, rows, training: [{ label: HOSTILE, points: [{ step: 1, loss: 2 }, { step: 2, loss: 1.5 }] }], notes: [HOSTILE] });
  t.false(/<script|<img|onerror="/i.test(html), 'markup from a model name reached the page');
  t.true(html.includes('&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt; &amp; &lt;/td&gt;&lt;/tr&gt;&lt;script&gt;'));
  t.true(tableHtml({ rows }).includes('<td>&quot;swap&#39;</td>'));
  // the table keeps its shape: header + 2 rows, 2 + 3 cells each
  t.is((tableHtml({ rows }).match(/<tr>/g) ?? []).length, 3);
  t.is((tableHtml({ rows }).match(/<td/g) ?? []).length, 10);
});

test('writeReport: a malformed input is refused naming the field', (t) => {
  const input = { title: 't', date: 'd', seconds: 1, machine: 'm', rows: [row('original', '-', {}, 2, 1)], training: [] } as ReportInput;
  const bad = (patch: (i: ReportInput) => void) => {
    const copy = structuredClone(input);
    patch(copy);
    return t.throws(() => writeReport(copy, tempDir()))!.message;
  };
  t.is(bad((i) => ((i.rows[0] as unknown as Record<string, unknown>).bitsPerChar = '1.2')), 'Expected a number for report rows[0].bitsPerChar but received "1.2"');
  t.is(bad((i) => (i.rows[0]!.groups = { QA: null as unknown as number })), 'Expected a number for report rows[0].groups.QA but received null');
  t.is(bad((i) => (i.training = [{ label: 'x', points: [{ step: '1' as unknown as number }] }])), 'Expected a number for report training[0].points[0].step but received "1"');
});

// ---- the page in headless Chromium, from a real training run ----

/** Debian's `chromium` (or `chromium-browser` elsewhere) on PATH; a missing one fails the test with what to do. */
function findChromium(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter))
    for (const name of ['chromium', 'chromium-browser']) if (dir && existsSync(join(dir, name))) return join(dir, name);
  throw new Error('chromium was not found on PATH; the report test renders the page in headless Chromium\nHINT: run scripts/setup.sh (it installs the Debian package `chromium`)');
}

async function chromium(browser: string, profile: string, args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)(
    browser,
    // A profile of our own: parallel test processes must not share Chromium's profile lock.
    ['--headless=new', '--no-sandbox', '--disable-gpu', '--force-color-profile=srgb', '--hide-scrollbars', `--user-data-dir=${profile}`, ...args],
    { timeout: 90_000, maxBuffer: 64 << 20 },
  );
  return stdout;
}

/** RGBA pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes). */
function readPng(file: string): { width: number; height: number; rgba: Uint8Array } {
  const buf = readFileSync(file);
  if (!buf.subarray(0, 8).equals(Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]))) throw new Error(`${file} is not a PNG`);
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  for (let off = 8; off < buf.length; ) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0 || (data[9] !== 2 && data[9] !== 6)) throw new Error(`unsupported PNG: bit depth ${data[8]}, colour type ${data[9]}, interlace ${data[12]}`);
      channels = data[9] === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels]! : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter];
      if (pred === undefined) throw new Error(`bad PNG filter ${filter} on row ${y}`);
      out[y * stride + x] = (line[x]! + pred) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(out.subarray(i * channels, i * channels + 3), i * 4);
    rgba[i * 4 + 3] = channels === 4 ? out[i * channels + 3]! : 255;
  }
  return { width, height, rgba };
}

/** Pixels within `tolerance` (per channel) of a #rrggbb colour: anti-aliased strokes are close, fills exact. */
function countColor(png: { rgba: Uint8Array }, hex: string, tolerance = 12): number {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
  let n = 0;
  for (let i = 0; i < png.rgba.length; i += 4) if (Math.abs(png.rgba[i]! - r) <= tolerance && Math.abs(png.rgba[i + 1]! - g) <= tolerance && Math.abs(png.rgba[i + 2]! - b) <= tolerance) n++;
  return n;
}

async function packedRussian(file: string, maxChars: number, path: string): Promise<string> {
  const tok = Tokenizer.fromDir(LLAMA3_8K);
  const docs: string[][] = [];
  for await (const d of readTexts(file, { mode: 'document', maxChars })) docs.push(d.split('\n'));
  const { blocks, result } = await packDocuments(docs, tok, { seqLen: 48 });
  writeBlocks(path, blocks, undefined, result.targetChars);
  return path;
}

async function heldOut(dir: string, file: string): Promise<{ symbolsPerToken: number; bitsPerChar: number }> {
  const m = await LepModel.load(dir);
  try {
    const r = await textMetrics(m, file, { maxChars: 4000 });
    return { symbolsPerToken: r.symbolsPerToken, bitsPerChar: r.bitsPerChar };
  } finally {
    m.dispose();
  }
}

test('a report from a real training run renders in headless Chromium: every table row, loss curves and bars', async (t) => {
  const browser = findChromium(); // first, so a missing browser fails at once, not after training
  const files = await corpora();
  const dir = tempDir();
  const model = await tinyModel({ tokenizerDir: LLAMA3_8K, modelType: 'llama', hiddenSize: 32, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2, maxPositionEmbeddings: 128, seed: 3, embedStd: 0.02 });
  const data = await packedRussian(files['ru.txt']!, 30_000, join(dir, 'train.safetensors'));
  const evalData = await packedRussian(files['heldout/ru.txt']!, 8_000, join(dir, 'eval.safetensors'));
  const train = { data, evalData, evalBatches: 2, evalEvery: 10, batchSize: 4, lr: 3e-3, warmupSteps: 3 };
  // Two runs, the second interrupted and resumed, so its train.log carries a real "resume from" line.
  const runA = join(dir, 'a');
  await trainModel(model, runA, { ...train, steps: 30 });
  const runB = join(dir, 'b');
  const ctrl = new AbortController();
  await t.throwsAsync(trainModel(model, runB, { ...train, steps: 20, lr: 1e-3, signal: ctrl.signal, onProgress: (e) => void (e.phase === 'train' && e.done === 6 && ctrl.abort(new Error('stop'))) }));
  await trainModel(model, runB, { ...train, steps: 20, lr: 1e-3 });
  const logB = readFileSync(join(runB, 'train.log'), 'utf8');
  t.regex(logB, /^resume from .*step-\d{8}$/m);
  const training = [
    { label: 'run A: 30 steps, lr 3e-3', points: parseTrainLog(readFileSync(join(runA, 'train.log'), 'utf8')) },
    { label: 'run B: 20 steps, lr 1e-3, resumed', points: parseTrainLog(logB) },
  ];
  t.deepEqual(training[0]!.points.filter((p) => p.loss !== undefined).map((p) => p.step), Array.from({ length: 30 }, (_, i) => i + 1));
  t.deepEqual(training[0]!.points.filter((p) => p.evalLoss !== undefined).map((p) => p.step), [0, 10, 20, 30]);
  t.true(training[0]!.points.every((p) => p.evalLoss === undefined || p.bpc! > 0));
  t.deepEqual(training[1]!.points.filter((p) => p.loss !== undefined).map((p) => p.step), Array.from({ length: 20 }, (_, i) => i + 1));

  // Held-out Russian measured on the three real models; group and task scores are the paper's numbers for
  // OpenChat-3.5 (docs/method.md, "The paper's results"), which the tiny models cannot earn.
  const ru = files['heldout/ru.txt']!;
  const [orig, a, b] = [await heldOut(model, ru), await heldOut(runA, ru), await heldOut(runB, ru)];
  const rows: ReportRow[] = [
    { vocabulary: 'original', method: '-', groups: { 'Copy-RU': 0.917 }, microAvg: 0.607, ...orig, tasks: { 'copy RU (Unigram)': 0.917, 'Micro-Avg (Extended)': 0.607 } },
    { vocabulary: 'Extended', method: 'swap', groups: { 'Copy-RU': 0.614 }, microAvg: 0.608, ...a, tasks: { 'copy RU (Unigram)': 0.614, 'Micro-Avg (Extended)': 0.608 } },
    { vocabulary: 'Extended', method: 'overlap', groups: {}, microAvg: 0.607, ...b, tasks: { 'Micro-Avg (Extended)': 0.607 } },
    { vocabulary: 'Extended', method: 'conversion', groups: { 'Copy-RU': 0.651 }, microAvg: 0.609, ...a, tasks: { 'copy RU (Unigram)': 0.651, 'Micro-Avg (Extended)': 0.609 } },
    { vocabulary: HOSTILE, method: 'swap', groups: {}, ...b },
  ];
  const input: ReportInput = { title: 'lep report test', date: new Date().toISOString(), seconds: 12.5, machine: '2 cores, libtorch, OpenBLAS', rows, training, notes: ['tiny models; group scores from the paper'] };
  const out = join(dir, 'report');
  const paths = writeReport(input, out);
  t.deepEqual(JSON.parse(readFileSync(paths.json, 'utf8')), JSON.parse(JSON.stringify(input)));

  const dom = await chromium(browser, join(dir, 'chromium'), ['--dump-dom', pathToFileURL(paths.html).href]);
  // Nothing executable or fetched: no script element, no src/href attribute survived.
  t.false(/<script|<img|<[^>]*\s(src|href)=/i.test(dom), 'the page has a script or an external reference');
  const table = /<table class="results">([\s\S]*?)<\/table>/.exec(dom)?.[1];
  t.truthy(table, 'the results table is in the rendered DOM');
  const bodyRows = [...(/<tbody>([\s\S]*)<\/tbody>/.exec(table!)?.[1] ?? '').matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<td[^>]*>(?:<strong>)?(.*?)(?:<\/strong>)?<\/td>/g)].map((c) => c[1]!));
  const unescape = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
  t.deepEqual(bodyRows.map((r) => [unescape(r[0]!), r[1]]), rows.map((r) => [r.vocabulary, r.method]));
  // vocabulary, method, Copy-RU, Micro-Avg, symbols/token, bits/char
  t.true(bodyRows.every((r) => r.length === 6));
  t.deepEqual(bodyRows.map((r) => r[5]), rows.map((r) => r.bitsPerChar.toFixed(3)));
  const bestBpc = Math.min(...rows.map((r) => r.bitsPerChar));
  t.true(new RegExp(`<td class="num best"><strong>${bestBpc.toFixed(3)}</strong></td></tr>`).test(table!), 'the lowest bits/char is highlighted');
  // The charts: one per training run (a curve through every logged step), per-task bars, two held-out bar charts.
  const svgs = [...dom.matchAll(/<svg[\s\S]*?<\/svg>/g)].map((m) => m[0]);
  t.is(svgs.length, 2 + 1 + 2);
  for (const [i, run] of training.entries()) {
    const paths = [...svgs[i]!.matchAll(/<path d="([^"]+)" fill="none" stroke="([^"]+)"/g)];
    t.deepEqual(paths.map((p) => p[2]), [LOSS_COLOR, EVAL_LOSS_COLOR]);
    t.is((paths[0]![1]!.match(/[ML]/g) ?? []).length, run.points.filter((p) => p.loss !== undefined).length);
    t.is((svgs[i]!.match(/<circle/g) ?? []).length, run.points.filter((p) => p.evalLoss !== undefined).length);
    t.true(svgs[i]!.includes('>step</text>') && svgs[i]!.includes('>loss (nats/token)</text>'), 'axis labels');
  }
  t.is((svgs[2]!.match(/<rect[^>]*fill="#[0-9a-f]{6}"[^>]*><title>/g) ?? []).length, 3 + 4, 'one bar per model and task');
  t.is((svgs[3]!.match(/<rect[^>]*><title>/g) ?? []).length, rows.length);

  const shot = join(dir, 'report.png');
  await chromium(browser, join(dir, 'chromium'), [`--screenshot=${shot}`, '--window-size=1200,2000', pathToFileURL(paths.html).href]);
  const png = readPng(shot);
  t.deepEqual([png.width, png.height], [1200, 2000]);
  t.true(statSync(shot).size > 30_000, `screenshot of ${statSync(shot).size} bytes looks blank`);
  // The curves and the bars were painted, in their colours: strokes and dots, and solid bar fills.
  const painted = { loss: countColor(png, LOSS_COLOR), evalLoss: countColor(png, EVAL_LOSS_COLOR, 4), bars: [0, 1, 2, 3].map((i) => countColor(png, paletteColor(i), 0)) };
  t.true(painted.loss > 300 && painted.evalLoss > 100 && painted.bars.every((n) => n > 200), `painted pixels: ${JSON.stringify(painted)}`);
  t.is(modelLabel(rows[1]!), 'Extended / swap');
});
