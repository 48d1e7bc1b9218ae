// Runs and outputs through the real CLI on the toy family: Ctrl-C/SIGTERM, the output lock, resuming,
// outputs that appear whole, outputs that would overwrite inputs, and named errors for hostile input.
// Serial: the tests spawn lep processes (see README, "Known hazard"), and each is a training run on 2 cores.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { listCorpusFiles } from '../../ts/corpus/listCorpusFiles.js';
import { corpora } from '../corpora.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';

const FIXTURES = join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'toy-family');
const BASE = join(FIXTURES, 'base');
const INSTRUCT = join(FIXTURES, 'instruct');
const ENV = { ...process.env, LEP_THREADS: '1' };

interface Ran {
  stdout: string;
  stderr: string;
  code: number;
}

async function lep(...args: string[]): Promise<Ran> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [LEP, ...args], { env: ENV });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number | null };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code ?? -1 };
  }
}

/**
 * Starts lep, sends `signal` once stderr matches `when` (or, for a function, once it returns true for the
 * child's pid, polled every 5 ms), and resolves with what it printed and its exit code.
 */
function lepInterrupted(args: string[], when: RegExp | ((pid: number) => boolean), signal: NodeJS.Signals): Promise<Ran & { pid: number; sent: boolean }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [LEP, ...args], { env: ENV });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const send = (): void => {
      sent = true;
      child.kill(signal);
    };
    const poll = typeof when === 'function' ? setInterval(() => !sent && when(child.pid!) && send(), 5) : undefined;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (!sent && when instanceof RegExp && when.test(stderr)) send();
    });
    child.on('error', fail);
    child.on('close', (code) => {
      clearInterval(poll);
      done({ stdout, stderr, code: code ?? -1, pid: child.pid!, sent });
    });
  });
}

/** The id of a process that has exited (for stale locks and orphaned temporaries). */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

const tempsIn = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((n) => /\.tmp-\d+/.test(n)) : []);

let blocks: Promise<string> | undefined;
/** Training blocks of the toy tokenizer, packed once through the CLI. */
function packed(): Promise<string> {
  blocks ??= (async () => {
    const out = join(tempDir(), 'blocks.safetensors');
    const r = await lep('data', 'pack', '--tokenizer', BASE, '--out', out, '--seq-len', '32', '--max-chars', '20000', (await corpora())['en.txt']!);
    if (r.code !== 0) throw new Error(r.stderr);
    return out;
  })();
  return blocks;
}

const trainArgs = (data: string, out: string, ...more: string[]): string[] => ['train', BASE, '--data', data, '--out', out, '--embeddings-only', '--batch-size', '1', ...more];

test.serial('lep train: Ctrl-C stops at a step with a checkpoint and exit 130, says how to resume; the rerun says it resumes and finishes', async (t) => {
  const data = await packed();
  const out = join(tempDir(), 'run');
  const r = await lepInterrupted(trainArgs(data, out, '--steps', '30'), /^step 2\/30/m, 'SIGINT');
  t.is(r.code, 130, r.stderr);
  t.regex(r.stderr, /SIGINT received, stopping at the next safe point/);
  const m = /^lep train: training stopped at step (\d+) of 30; checkpoint (\S+)\nHINT: run again \(the same command or call\) to resume from it\.$/m.exec(r.stderr);
  t.truthy(m, r.stderr);
  const step = Number(m![1]);
  t.true(step >= 2 && step < 30);
  t.true(existsSync(join(m![2]!, 'state.json')));
  t.false(existsSync(join(out, 'config.json')), 'no final model');
  t.false(existsSync(join(out, 'lep.lock')), 'the lock is released');
  t.deepEqual(tempsIn(out), []);

  const again = await lep(...trainArgs(data, out, '--steps', '30'));
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, new RegExp(`^lep train: resuming from .*step-0*${step} \\(step ${step} of 30\\)`, 'm'));
  t.regex(again.stdout, /30 steps, loss \d.*\(resumed from /);
  t.true(existsSync(join(out, 'config.json')));
  t.deepEqual(tempsIn(out), []);
});

/** Sends `signal` to `pid` `times` times, 1 ms apart. */
function signalTimes(pid: number, signal: NodeJS.Signals, times: number): void {
  for (let i = 0; i < times; i++) {
    process.kill(pid, signal);
    spawnSync('sleep', ['0.001']);
  }
}

test.serial('a signal that quits at once while a native job computes exits 130, not with a segfault, and leaves no lock or temporary', async (t) => {
  // process.exit ran libtorch's and oneDNN's static destructors under the job's thread: exit 139 in 3 of 6
  // double Ctrl-Cs during training and in 6 of 6 Ctrl-Cs during lep eval (a resource-limit hunt).
  const model = join(tempDir(), 'model');
  const made = await lep('model', 'create', '--tokenizer', BASE, '--out', model, '--hidden-size', '256', '--layers', '4', '--heads', '4');
  t.is(made.code, 0, made.stderr);
  const data = await packed();
  for (let round = 0; round < 3; round++) {
    const out = join(tempDir(), 'run');
    // The second SIGINT arrives while the step after step 1 runs (each takes tens of milliseconds here).
    const r = await lepInterrupted(['train', model, '--data', data, '--out', out, '--batch-size', '4', '--steps', '200'], (pid) => {
      if (!existsSync(join(out, 'train.log')) || !readFileSync(join(out, 'train.log'), 'utf8').includes('step 1 ')) return false;
      signalTimes(pid, 'SIGINT', 2);
      return true;
    }, 'SIGINT');
    t.is(r.code, 130, `round ${round}: ${r.stderr}`);
    t.regex(r.stderr, /interrupted by SIGINT; its temporary files were removed/);
    t.false(existsSync(join(out, 'lep.lock')), 'the lock is released');
    t.deepEqual(tempsIn(out), []);
  }
  // lep eval quits at the first signal, mid-generation.
  const task = join(tempDir(), 'copy.jsonl');
  writeFileSync(task, [JSON.stringify({ task: { name: 'copy', group: 'Copy', metric: 'copy_sentence', maxNewTokens: 48 } }), ...Array.from({ length: 64 }, (_, i) => JSON.stringify({ id: `c${i}`, messages: [{ role: 'user', content: `Copy: the cat sat on mat number ${i}.` }], gold: 'x' }))].join('\n') + '\n');
  for (let round = 0; round < 3; round++) {
    const r = await lepInterrupted(['eval', model, '--tasks', task, '--progress', 'json'], /"done"/, 'SIGINT');
    t.is(r.code, 130, `eval round ${round}: ${r.stderr}`);
    t.regex(r.stderr, /interrupted by SIGINT/);
  }
});

test.serial('a second Ctrl-C while a checkpoint is written leaves no step folder that the rerun fails on', async (t) => {
  // The CLI's exit removed the checkpoint's temporary folder while the job still wrote it, and the job
  // renamed what was left into place: step-N without trainable.safetensors, which every rerun resumed from
  // and failed on (a kill hunt: 14 of 17 tries with this trigger). The trainer now checks its files first.
  const model = join(tempDir(), 'model');
  const made = await lep('model', 'create', '--tokenizer', BASE, '--out', model, '--hidden-size', '256', '--layers', '4', '--heads', '4');
  t.is(made.code, 0, made.stderr);
  const data = await packed();
  const args = (out: string): string[] => ['train', model, '--data', data, '--out', out, '--batch-size', '2', '--steps', '12', '--checkpoint-every', '3'];
  let hits = 0;
  for (let round = 0; round < 3; round++) {
    const out = join(tempDir(), 'run');
    const ckpts = join(out, 'checkpoints');
    // The moment the first checkpoint's weights are on disk and the rest is still being written.
    const r = await lepInterrupted(args(out), (pid) => {
      const writing = existsSync(ckpts) && readdirSync(ckpts).some((n) => /^step-\d+\.tmp-\d+$/.test(n) && existsSync(join(ckpts, n, 'trainable.safetensors')));
      if (writing) signalTimes(pid, 'SIGINT', 2);
      return writing;
    }, 'SIGINT');
    if (!r.sent) {
      t.is(r.code, 0, `round ${round}, no write caught: ${r.stderr}`);
      continue;
    }
    t.is(r.code, 130, `round ${round}: ${r.stderr}`);
    hits++;
    const steps = existsSync(ckpts) ? readdirSync(ckpts).filter((n) => /^step-\d+$/.test(n)) : [];
    for (const n of steps)
      for (const f of ['trainable.safetensors', 'optimizer.safetensors', 'state.json']) t.true(existsSync(join(ckpts, n, f)), `round ${round}: ${n} has ${f}`);
    const again = await lep(...args(out));
    t.is(again.code, 0, `round ${round}, rerun: ${again.stderr}`);
    t.regex(again.stdout, /12 steps, loss \d/);
    t.deepEqual(tempsIn(out), []);
  }
  t.log(`${hits} of 3 rounds signalled while a checkpoint was written`);
  t.true(hits > 0, 'no round caught a checkpoint being written');
});

test.serial('lep adapt: a signal in its training stage names the step and checkpoint; the rerun keeps the stages before and says training resumes', async (t) => {
  const files = await corpora();
  const dir = tempDir();
  const recipe = join(dir, 'recipe.json');
  writeFileSync(recipe, JSON.stringify({
    base: BASE,
    instruct: INSTRUCT,
    corpus: { train: files['ru.txt'], eval: files['heldout/ru.txt'], maxChars: 100_000 },
    tokenizer: { kind: 'extend', vocabSize: 1200 },
    train: { seqLen: 32, steps: 400, batchSize: 2, lr: 1e-3, warmupSteps: 1, newRowsOnly: true, checkpointEvery: 5 },
    propagate: { methods: ['swap'] },
  }));
  const out = join(dir, 'out');
  // Once training has written a checkpoint (a log that is not a TTY shows a stage's start and end only).
  const ckpts = join(out, 'train', 'checkpoints');
  const r = await lepInterrupted(['adapt', recipe, '--out', out], () => existsSync(ckpts) && readdirSync(ckpts).some((n) => /^step-\d+$/.test(n)), 'SIGTERM');
  t.is(r.code, 143, r.stderr);
  const m = /^lep adapt: training stopped at step (\d+) of \d+; checkpoint (\S+)\nHINT: run again \(the same command or call\) to resume from it\.$/m.exec(r.stderr);
  t.truthy(m, r.stderr);
  t.deepEqual(tempsIn(out), []);
  const again = await lep('adapt', recipe, '--out', out);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stderr, /\[1\/5 tokenizer\] done before, kept/);
  t.regex(again.stderr, new RegExp(`\\[4/5 train\\] resuming from ${m![2]} \\(step ${m![1]} of 400\\)`));
});

test.serial('a step folder missing a checkpoint file is not resumed from: removed, named in train.log, the run resumes from the one before', async (t) => {
  const data = await packed();
  const out = join(tempDir(), 'run');
  t.is((await lep(...trainArgs(data, out, '--steps', '6', '--checkpoint-every', '3'))).code, 0);
  const broken = join(out, 'checkpoints', 'step-00000006');
  rmSync(join(broken, 'trainable.safetensors'));
  const r = await lep(...trainArgs(data, out, '--steps', '6', '--checkpoint-every', '3'));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /^lep train: resuming from \S+step-00000003 \(step 3 of 6\)/m);
  t.regex(readFileSync(join(out, 'train.log'), 'utf8'), new RegExp(`^removed ${broken}: an incomplete checkpoint`, 'm'));
  t.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['step-00000003', 'step-00000006']);
});

test.serial('lep train checkpoints by default, every tenth of the run', async (t) => {
  const data = await packed();
  const out = join(tempDir(), 'run');
  const r = await lep(...trainArgs(data, out, '--steps', '10', '--keep-checkpoints', '20'));
  t.is(r.code, 0, r.stderr);
  t.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), Array.from({ length: 10 }, (_, i) => `step-${String(i + 1).padStart(8, '0')}`));
  t.is(JSON.parse(readFileSync(join(out, 'train-config.json'), 'utf8')).checkpointEvery, 1);
});

test.serial('two lep train on one --out: the second is refused naming the holder; a stale lock is taken over', async (t) => {
  const data = await packed();
  const out = join(tempDir(), 'run');
  // 5000 steps: the first run must still be training when the second has loaded libtorch, however busy the
  // machine is; it is stopped with SIGTERM once the second has been refused.
  let second: Ran | undefined;
  const first = await new Promise<Ran & { pid: number }>((done) => {
    const child = spawn(process.execPath, [LEP, ...trainArgs(data, out, '--steps', '5000')], { env: ENV });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (second === undefined && /^step 1\/5000/m.test(stderr)) {
        second = { stdout: '', stderr: '', code: -2 };
        void lep(...trainArgs(data, out, '--steps', '5000')).then((r) => {
          second = r;
          child.kill('SIGTERM');
        });
      }
    });
    child.on('close', (code) => done({ stdout: '', stderr, code: code ?? -1, pid: child.pid! }));
  });
  t.is(second!.code, 1);
  t.regex(second!.stderr, new RegExp(`--out ${out} is in use by lep train \\(pid ${first.pid} on `));
  t.regex(second!.stderr, /\(code LEP_OUTPUT_LOCKED\)/);
  t.is(first.code, 143, first.stderr);
  t.regex(first.stderr, /SIGTERM received/);

  // A lock whose process is gone (kill -9, reboot) does not block the directory.
  writeFileSync(join(out, 'lep.lock'), JSON.stringify({ pid: deadPid(), host: (await import('node:os')).hostname(), command: 'lep train', since: '2026-01-01' }));
  // (other options: --no-resume starts afresh and drops the stopped run's checkpoints)
  const third = await lep(...trainArgs(data, out, '--steps', '2', '--no-resume'));
  t.is(third.code, 0, third.stderr);
  t.deepEqual(readdirSync(join(out, 'checkpoints')).sort(), ['step-00000001', 'step-00000002']);
  t.false(existsSync(join(out, 'lep.lock')));
});

test.serial('resume accepts the same data under another path (a moved project) and refuses data rewritten in place', async (t) => {
  const data = await packed();
  const dir = tempDir();
  const out = join(dir, 'run');
  const moved = join(dir, 'moved-blocks.safetensors');
  copyFileSync(data, moved);
  t.is((await lep(...trainArgs(moved, out, '--steps', '2'))).code, 0);
  const elsewhere = join(dir, 'elsewhere.safetensors');
  renameSync(moved, elsewhere);
  let r = await lep(...trainArgs(elsewhere, out, '--steps', '2'));
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /resuming from \S+step-00000002 \(step 2 of 2\)/);
  // The data rewritten in place (one byte changed at the end): refused, both fingerprints shown.
  const bytes = readFileSync(elsewhere);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 1, bytes.length - 1);
  writeFileSync(elsewhere, bytes);
  r = await lep(...trainArgs(elsewhere, out, '--steps', '2'));
  t.is(r.code, 1, r.stderr);
  t.regex(r.stderr, /was made by a run with other options: data "\S+elsewhere\.safetensors" then, "\S+elsewhere\.safetensors" now \(\d+ bytes, sha256 [0-9a-f]{16} then, \d+ bytes, sha256 [0-9a-f]{16} now\)/);
});

test.serial('resume refuses a checkpoint made with other options, and a broken state.json is named', async (t) => {
  const data = await packed();
  const out = join(tempDir(), 'run');
  t.is((await lep(...trainArgs(data, out, '--steps', '3'))).code, 0);
  let r = await lep(...trainArgs(data, out, '--steps', '3', '--lr', '2e-4', '--seed', '5'));
  t.is(r.code, 1);
  t.regex(r.stderr, /the checkpoint \S+step-00000003 was made by a run with other options: lr 0\.0001 then, 0\.0002 now; seed 0 then, 5 now\nHINT: .*--no-resume/);
  t.regex(r.stderr, /\(code LEP_RESUME_MISMATCH\)/);
  r = await lep(...trainArgs(data, out, '--steps', '3', '--eval-every', '1'));
  t.is(r.code, 0, `evaluation settings may change: ${r.stderr}`);
  const state = join(out, 'checkpoints', 'step-00000003', 'state.json');
  writeFileSync(state, '{"step": 3, "loss": ');
  r = await lep(...trainArgs(data, out, '--steps', '3'));
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`cannot read the checkpoint state ${state}: .*\nHINT: delete .*step-00000003 to resume from the checkpoint before it, or start afresh with --no-resume`));
  t.regex(r.stderr, /\(code LEP_BAD_CHECKPOINT\)/);
  t.notRegex(r.stderr, /^\s+at /m, 'no stack trace');
});

test.serial('lep tokenizer train: SIGTERM and SIGINT leave no corpus copy, no output and no temporary file', async (t) => {
  const dir = tempDir();
  const spmTmp = join(dir, 'spm-tmp');
  mkdirSync(spmTmp);
  const ru = (await corpora())['ru.txt']!;
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    const out = join(dir, `tok-${signal}`);
    // --verbose: SentencePiece's log shows that training started (the corpus copy is then complete).
    const r = await lepInterrupted(['tokenizer', 'train', '--corpus', ru, '--out', out, '--vocab-size', '4000', '--tmp-dir', spmTmp, '--verbose'], /Loaded all \d+ sentences|trainer_interface/, signal);
    t.is(r.code, code, r.stderr);
    t.regex(r.stderr, new RegExp(`lep tokenizer train: interrupted by ${signal}; its temporary files were removed and no output was left half-written`));
    t.deepEqual(readdirSync(spmTmp), [], 'no lep-spm-* left');
    t.false(existsSync(out));
    t.deepEqual(tempsIn(dir), []);
  }
});

test.serial('init: the output appears whole, replacing the old one; temporaries of dead processes are removed', async (t) => {
  const dir = tempDir();
  const out = join(dir, 'resized');
  mkdirSync(out);
  writeFileSync(join(out, 'config.json'), '{}'); // an older lep output, replaced as a whole
  writeFileSync(join(out, 'stale.safetensors'), 'left from an older run');
  const orphan = join(dir, `resized.tmp-${deadPid()}`);
  mkdirSync(orphan);
  writeFileSync(join(orphan, 'config.json'), '{}');
  const live = join(dir, `resized.tmp-${process.pid}`);
  mkdirSync(live);
  const r = await lep('init', BASE, '--tokenizer', INSTRUCT, '--out', out);
  t.is(r.code, 0, r.stderr);
  t.false(existsSync(orphan), 'a dead process\'s temporary directory is removed');
  t.true(existsSync(live), 'a running process\'s temporary directory is left alone');
  rmSync(live, { recursive: true });
  t.false(existsSync(join(out, 'stale.safetensors')));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'manifest.json']) t.true(existsSync(join(out, f)), f);
  t.deepEqual(readdirSync(dir).sort(), ['resized']);
});

test.serial('every command refuses an output that is, is inside, or contains one of its inputs', async (t) => {
  const dir = tempDir();
  const model = join(dir, 'model');
  cpSync(BASE, model, { recursive: true });
  const corpus = join(dir, 'corpus');
  mkdirSync(corpus);
  writeFileSync(join(corpus, 'a.txt'), readFileSync((await corpora())['en.txt']!, 'utf8').slice(0, 20000));
  const weights = readFileSync(join(model, 'model.safetensors'));
  const cases: [string[], RegExp][] = [
    [['export', 'gguf', model, '--out', join(model, 'model.safetensors')], /--out \S+model.safetensors is inside the input MODEL_DIR/],
    [['data', 'pack', '--tokenizer', model, '--out', join(corpus, 'blocks.safetensors'), '--seq-len', '32', corpus], /is inside the input CORPUS/],
    [['data', 'pack', '--tokenizer', model, '--out', join(corpus, 'a.txt'), '--seq-len', '32', join(corpus, '*.txt')], /falls under the input CORPUS/],
    [['tokenizer', 'train', '--corpus', join(corpus, 'a.txt'), '--out', corpus, '--vocab-size', '300'], /--out \S+corpus contains the input --corpus/],
    [['init', model, '--tokenizer', model, '--out', join(model, 'resized')], /is inside the input MODEL_DIR/],
    [['propagate', '--base', model, '--donor', model, '--instruct', INSTRUCT, '--out', dir], /contains the input --base/],
    [['train', model, '--data', join(corpus, 'a.txt'), '--out', corpus], /contains the input --data/],
    [['export', 'checkpoint', model, join(dir, 'ckpt'), '--out', model], /--out \S+model is the input MODEL_DIR/],
  ];
  for (const [args, message] of cases) {
    const r = await lep(...args);
    t.is(r.code, 1, args.join(' '));
    t.regex(r.stderr, message, args.join(' '));
    t.regex(r.stderr, /\(code LEP_OUTPUT_OVER_INPUT\)/);
  }
  t.true(readFileSync(join(model, 'model.safetensors')).equals(weights), 'the model is untouched');
  t.deepEqual(readdirSync(corpus), ['a.txt']);
  // A folder output beside the files a one-level glob reads is never read back by it (listing yields files).
  const beside = await lep('tokenizer', 'train', '--corpus', join(corpus, '*'), '--out', join(corpus, 'tok'), '--vocab-size', '200', '--no-byte-fallback');
  t.is(beside.code, 0, beside.stderr);
  t.deepEqual(await listCorpusFiles(join(corpus, '*')), [join(corpus, 'a.txt')]);
});

test.serial('hostile input gives a named error (code, file or flag, hint), never a stack trace or a hang', async (t) => {
  const dir = tempDir();
  const data = await packed();
  const broken = join(dir, 'broken');
  cpSync(INSTRUCT, broken, { recursive: true });
  const cfg = join(broken, 'tokenizer_config.json');
  const goodCfg = JSON.parse(readFileSync(cfg, 'utf8'));
  writeFileSync(cfg, JSON.stringify({ ...goodCfg, chat_template: '{% for m in messages %}{{ m.content }' }));
  const jinja = await lep('generate', broken, '--prompt', 'hi', '--chat', '--max-new-tokens', '1');
  writeFileSync(cfg, '{"bos_token": "<s>",');
  const badCfg = await lep('generate', broken, '--prompt', 'hi', '--max-new-tokens', '1');
  const rows = join(dir, 'rows.json');
  writeFileSync(rows, 'not json');
  const dangling = join(dir, 'dangling');
  symlinkSync(join(dir, 'nowhere', 'x'), dangling);
  const noConfig = join(dir, 'no-tokenizer-config');
  cpSync(INSTRUCT, noConfig, { recursive: true });
  rmSync(join(noConfig, 'tokenizer_config.json'));
  const cases: [Ran, RegExp, string][] = [
    [jinja, new RegExp(`the chat_template in ${cfg} is not a valid Jinja template: .*\nHINT: `), 'LEP_BAD_CHAT_TEMPLATE'],
    [badCfg, new RegExp(`${cfg} is not valid JSON: .*\nHINT: `), 'LEP_BAD_TOKENIZER'],
    [await lep(...trainArgs(data, join(dir, 'o1'), '--device', 'tpu')), /Expected cpu, cuda or cuda:N for device \(--device\) but received "tpu"/, 'LEP_BAD_OPTION'],
    [await lep('generate', INSTRUCT, '--prompt', 'hi', '--device', 'tpu'), /for device \(--device\) but received "tpu"/, 'LEP_BAD_OPTION'],
    [await lep(...trainArgs(data, join(dir, 'o2'), '--rows', rows)), new RegExp(`--rows ${rows} is not valid JSON: .*\nHINT: --rows takes a file holding a JSON array of token ids`), 'LEP_BAD_OPTION'],
    [await lep(...trainArgs(data, dangling)), new RegExp(`--out ${dangling} is a symbolic link to a path that does not exist\nHINT: `), 'LEP_BAD_OUTPUT'],
    [await lep('init', BASE, '--tokenizer', INSTRUCT, '--out', dangling), /is a symbolic link to a path that does not exist/, 'LEP_BAD_OUTPUT'],
    // Node's recursive mkdir spins forever on /proc: this returns at once.
    [await lep(...trainArgs(data, '/proc/lep-test/run')), /cannot create --out \/proc\/lep-test\/run: mkdir \/proc\/lep-test failed with ENOENT\nHINT: /, 'LEP_BAD_OUTPUT'],
    [await lep('init', BASE, '--tokenizer', INSTRUCT, '--out', '/proc/lep-test/x'), /cannot create --out \/proc\/lep-test\/x: mkdir \/proc\/lep-test failed with ENOENT/, 'LEP_BAD_OUTPUT'],
    [await lep('export', 'gguf', noConfig, '--out', join(dir, 'x.gguf')), new RegExp(`MODEL_DIR ${noConfig} has tokenizer.json but no tokenizer_config.json.*\nHINT: `), 'LEP_INCOMPLETE_MODEL_DIR'],
  ];
  for (const [r, message, code] of cases) {
    t.is(r.code, 1, r.stderr);
    t.regex(r.stderr, message);
    t.true(r.stderr.includes(`(code ${code})`), r.stderr);
    t.notRegex(r.stderr, /^\s+at /m, 'no stack trace');
  }
  t.false(existsSync(join(dir, 'x.gguf')));
});

test.serial('lep init and lep propagate: SIGINT and SIGTERM while writing exit 130/143, remove the temporary output, leave no OUT and say how to go on', async (t) => {
  const dir = tempDir();
  const commands: [string, (out: string) => string[]][] = [
    ['init', (out) => ['init', BASE, '--tokenizer', INSTRUCT, '--out', out]],
    ['propagate', (out) => ['propagate', '--base', BASE, '--donor', BASE, '--instruct', INSTRUCT, '--out', out]],
  ];
  for (const [command, args] of commands)
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      const out = join(dir, `${command}-${signal}`);
      // Sent once OUT.tmp-PID exists: the command is writing (init and propagate print no progress off a terminal).
      const r = await lepInterrupted(args(out), (pid) => existsSync(`${out}.tmp-${pid}`), signal);
      t.true(r.sent, `${command}: the temporary output appeared`);
      t.is(r.code, code, `${command} ${signal}: ${r.stderr}`);
      t.regex(r.stderr, new RegExp(`lep ${command}: ${signal} received, stopping at the next safe point`));
      t.regex(r.stderr, /HINT: run the same command again/, `${command} ${signal}: the resume hint`);
      t.false(existsSync(out), `${command} ${signal}: no OUT`);
      t.deepEqual(tempsIn(dir), [], `${command} ${signal}: no temporary file or directory`);
    }
});
