// `--progress json` on the stage commands: stderr carries only stage progress events, one JSON object a
// line ({stage, phase, done, total, etaSeconds?, detail?}), counted up to each phase's total, and warnings
// as {stage, warning}. The stages
// run on a tiny random model, so the test checks the events, not what the stages learn.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { TOY_CHAT_TEMPLATE } from '../../ts/train/instructData.js';
import type { StageProgress } from '../../ts/stage/stageProgress.js';
import { LEP_CLI as LEP, tempDir, tinyModel } from '../helpers.js';


type Line = StageProgress | { stage: string; warning: string };

/** Runs a lep command with --progress json; returns its stderr lines, each of which must be JSON. */
async function lines(t: { fail(m: string): void }, ...args: string[]): Promise<Line[]> {
  const { stderr } = await promisify(execFile)(process.execPath, [LEP, ...args, '--progress', 'json'], { env: { ...process.env, LEP_THREADS: '1' }, maxBuffer: 1 << 26 });
  return stderr.split('\n').filter((l) => l !== '').map((l) => {
    try {
      return JSON.parse(l) as Line;
    } catch {
      t.fail(`not a JSON progress line: ${l}`);
      return undefined as never;
    }
  });
}

/** Each event is well formed, every phase named shows, and each of `complete` counts up to its total. */
function checkEvents(t: { true(v: boolean, m?: string): void; deepEqual(a: unknown, b: unknown, m?: string): void }, all: Line[], stage: string, phases: string[], complete = phases): void {
  const es = all.filter((e): e is StageProgress => !('warning' in e));
  t.true(es.length > 0, `${stage}: events`);
  for (const e of es) {
    t.true(e.stage === stage && typeof e.phase === 'string' && Number.isFinite(e.done) && Number.isFinite(e.total) && e.done >= 0, `${stage}: ${JSON.stringify(e)}`);
    t.true(e.etaSeconds === undefined || e.etaSeconds >= 0, `${stage}: eta ${e.etaSeconds}`);
  }
  t.deepEqual([...new Set(es.map((e) => e.phase))].filter((p) => phases.includes(p)).sort(), [...phases].sort(), `${stage}: phases`);
  for (const p of complete) {
    const last = es.filter((e) => e.phase === p).pop()!;
    t.true(last.total > 0 && last.done === last.total, `${stage}/${p} ends at its total: ${JSON.stringify(last)}`);
  }
}

/** A seeded text of made-up Latin and Cyrillic words: enough distinct pieces for a small BPE. */
function corpus(file: string): void {
  const syllables = ['ка', 'ро', 'ми', 'ле', 'на', 'ту', 'си', 'во', 'ba', 'ko', 're', 'mi', 'ta', 'lu', 'se', 'no'];
  let x = 12345;
  const next = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 16) % syllables.length;
  const word = () => Array.from({ length: 1 + (next() % 3) }, () => syllables[next()]).join('');
  writeFileSync(file, Array.from({ length: 2000 }, () => Array.from({ length: 8 }, word).join(' ') + '.').join('\n') + '\n');
}

test('tokenizer train, init, data pack, train, propagate, calibrate and eval report --progress json events', async (t) => {
  t.timeout(10 * 60_000);
  const dir = tempDir();
  const text = join(dir, 'text.txt');
  corpus(text);
  const base = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 });
  const instruct = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2 }); // the base's twin: propagation expects an instruct model fine-tuned from the base
  const cfg = join(instruct, 'tokenizer_config.json');
  writeFileSync(cfg, JSON.stringify({ ...JSON.parse(readFileSync(cfg, 'utf8')), chat_template: TOY_CHAT_TEMPLATE }));

  const tok = join(dir, 'tok');
  checkEvents(t, await lines(t, 'tokenizer', 'train', '--corpus', text, '--vocab-size', '200', '--no-byte-fallback', '--out', tok), 'tokenizer', ['corpus', 'bpe', 'save'], ['corpus', 'save'] /* SentencePiece's log reports merges every few */);
  const inited = join(dir, 'init');
  checkEvents(t, await lines(t, 'init', base, '--tokenizer', tok, '--out', inited), 'init', []);
  const data = join(dir, 'blocks.safetensors');
  checkEvents(t, await lines(t, 'data', 'pack', '--tokenizer', inited, '--out', data, '--seq-len', '32', text), 'data', ['packing']);
  // With --max-blocks packing stops early: the events count documents read and never go down (the last
  // one said the documents packed, fewer than an earlier event's count).
  const early = (await lines(t, 'data', 'pack', '--tokenizer', inited, '--out', join(dir, 'few.safetensors'), '--seq-len', '32', '--max-blocks', '3', text))
    .map((e) => Number(/^(\d+) documents read, /.exec('detail' in e ? e.detail ?? '' : '')?.[1]));
  t.true(early.length >= 2 && early.every(Number.isFinite), JSON.stringify(early));
  t.deepEqual(early, [...early].sort((a, b) => a - b));
  const trained = join(dir, 'trained');
  checkEvents(t, await lines(t, 'train', inited, '--data', data, '--eval-data', data, '--eval-every', '2', '--out', trained, '--steps', '2', '--batch-size', '2', '--embeddings-only'), 'train', ['train', 'eval']);
  checkEvents(t, await lines(t, 'propagate', '--base', base, '--donor', trained, '--instruct', instruct, '--out', join(dir, 'prop')), 'propagate', ['input correlation', 'output correlation']);

  // A warning is a JSON line too: an instruct model unrelated to the base (another seed).
  const unrelated = await tinyModel({ hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, numKeyValueHeads: 2, seed: 8 });
  const warned = await lines(t, 'propagate', '--base', base, '--donor', trained, '--instruct', unrelated, '--out', join(dir, 'prop-unrelated'));
  t.true(warned.some((e) => 'warning' in e && e.stage === 'propagate' && /correlate at only/.test(e.warning)), 'the correlation warning as {stage, warning}');
  checkEvents(t, warned, 'propagate', ['input correlation', 'output correlation']);

  const prompts = join(dir, 'prompts.jsonl');
  writeFileSync(prompts, ['Назови цвет неба.', 'Say hello.', 'Сколько будет два плюс два?'].map((c) => JSON.stringify({ messages: [{ role: 'user', content: c }] })).join('\n') + '\n');
  checkEvents(t, await lines(t, 'calibrate', instruct, '--self', '--original', instruct, '--prompts', prompts, '--max-new-tokens', '4', '--copy-text', text, '--copy-examples', '16', '--seq-len', '128', '--steps', '2', '--out', join(dir, 'cal')), 'calibrate', ['answers', 'train']);

  // Text mode (the default) shows the same steps as lines for people: the answers, then the training steps.
  const calArgs = ['calibrate', instruct, '--self', '--original', instruct, '--prompts', prompts, '--max-new-tokens', '4', '--copy-text', text, '--copy-examples', '16', '--seq-len', '128', '--steps', '2'];
  const { stderr } = await promisify(execFile)(process.execPath, [LEP, ...calArgs, '--out', join(dir, 'cal-text')], { env: { ...process.env, LEP_THREADS: '1' } });
  t.regex(stderr, /^answers 3\/3$/m);
  t.regex(stderr, /^step 2\/2 loss /m);

  const task = join(dir, 'copy.jsonl');
  writeFileSync(task, [JSON.stringify({ task: { name: 'copy', group: 'Copy', metric: 'copy_sentence', maxNewTokens: 4 } }), ...['Кошка сидела.', 'Open the file.'].map((s, i) => JSON.stringify({ id: `c${i}`, messages: [{ role: 'user', content: `Copy: ${s}` }], gold: s }))].join('\n') + '\n');
  checkEvents(t, await lines(t, 'eval', instruct, '--tasks', task), 'eval', ['copy']);
});
