// `--json` on the commands that produce data: one JSON document on stdout with the stage's result, progress
// and notes on stderr.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { mistralTokenizerDir } from '../../ts/index.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';


async function lepJson(...args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(process.execPath, [LEP, ...args, '--json'], { env: { ...process.env, LEP_THREADS: '1' } });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/**
 * A tiny model, a task file whose `lep eval --json` document is about 166 kB (200 items with long ids), and
 * the command line that evaluates it (progress as JSON lines on stderr).
 */
async function bigEvalOutput(): Promise<{ dir: string; lep: string[] }> {
  const dir = tempDir();
  const model = join(dir, 'm');
  await lepJson('model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', model, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2', '--seed', '3');
  const tasks = join(dir, 'long-ids.jsonl');
  const header = { task: { name: 'long_ids', group: 'Copy (EN)', kind: 'generate', metric: 'copy_sentence', maxNewTokens: 1 } };
  const items = Array.from({ length: 200 }, (_, i) => ({ id: `item-${i}-${'x'.repeat(600)}`, messages: [{ role: 'user', content: `Copy ${i}` }], gold: `Copy ${i}` }));
  writeFileSync(tasks, [header, ...items].map((l) => JSON.stringify(l)).join('\n'));
  return { dir, lep: [process.execPath, LEP, 'eval', model, '--tasks', tasks, '--format', 'plain', '--shots', '0', '--json', '--progress', 'json'] };
}
test('model create, generate, data pack and train print their result as one JSON document', async (t) => {
  const dir = tempDir();
  const model = join(dir, 'm');
  const created = await lepJson('model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', model, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2', '--seed', '3');
  t.is(created.out, model);
  t.like(created.config, { hiddenSize: 32, numHiddenLayers: 1, vocabSize: 32000 });
  const generated = await lepJson('generate', model, '--prompt', 'Hello', '--max-new-tokens', '4');
  t.is((generated.tokens as number[]).length, 4);
  t.is(typeof generated.text, 'string');
  t.is(generated.finishReason, 'length');
  const text = join(dir, 'text.txt');
  writeFileSync(text, Array.from({ length: 200 }, (_, i) => `Line ${i} of a small training text, with some words in it.`).join('\n'));
  const data = join(dir, 'blocks.safetensors');
  const packed = await lepJson('data', 'pack', '--tokenizer', model, '--out', data, '--seq-len', '32', text);
  t.is(packed.out, data);
  t.true((packed.blocks as number) > 2);
  const trained = await lepJson('train', model, '--data', data, '--out', join(dir, 'run'), '--steps', '2', '--batch-size', '2', '--embeddings-only');
  t.like(trained, { outDir: join(dir, 'run'), stepsDone: 2 });
  t.true(Number.isFinite(trained.lastLoss));
});

test('a --json document larger than a pipe buffer arrives whole when the reader is slow', async (t) => {
  // The reader takes nothing until the command has printed its last progress line, so the 64 KiB pipe is
  // full when the command exits: before the fix, process.exit dropped the rest of the document.
  const { dir, lep } = await bigEvalOutput();
  // A shell pipeline, so the reader is a plain process: it waits for the evaluation's last progress event
  // (stderr goes to a file; two minutes at most), gives the command a second to reach its exit, then reads.
  const errFile = join(dir, 'stderr.jsonl');
  const script = `"$@" 2>"$ERR" | { for _ in $(seq 1200); do grep -q '"detail":"task 1/1 score' "$ERR" 2>/dev/null && break; sleep 0.1; done; sleep 1; cat; }; exit \${PIPESTATUS[0]}`;
  const child = spawn('bash', ['-c', script, 'reader', ...lep], { env: { ...process.env, LEP_THREADS: '1', ERR: errFile } });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => chunks.push(b));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const stdout = Buffer.concat(chunks).toString();
  const stderr = existsSync(errFile) ? readFileSync(errFile, 'utf8') : '';
  t.is(code, 0, stderr);
  t.true(stdout.length > 128 * 1024, `${stdout.length} bytes`);
  const result = JSON.parse(stdout) as { tasks: Array<{ records: unknown[] }> };
  t.is(result.tasks[0]!.records.length, 200);
});

test('a reader that leaves early (| head -c 10) does not make the command fail', async (t) => {
  // stdout and stderr share the pipe that head closes: both meet EPIPE, which Node threw with a stack
  // trace (exit 1) while the command waited for its output to flush.
  const { dir, lep } = await bigEvalOutput();
  const r = spawnSync('bash', ['-c', '"$@" 2>&1 | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}', 'reader', ...lep, '--out', join(dir, 'results.json')], { env: { ...process.env, LEP_THREADS: '1' } });
  t.is(r.status, 0, r.stderr.toString());
  t.is((JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as { tasks: Array<{ records: unknown[] }> }).tasks[0]!.records.length, 200, 'the results file is whole');
});
