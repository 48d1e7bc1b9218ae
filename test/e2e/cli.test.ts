import { execFile, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { commands } from '../../ts/cli/commands.js';
import { mistralTokenizerDir } from '../../ts/index.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';

const run = promisify(execFile);

async function lep(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LEP, ...args], { env: { ...process.env, LEP_THREADS: '1' } });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code };
  }
}

test('lep info prints versions, BLAS, threads, CUDA', async (t) => {
  const r = await lep('info', '--json');
  t.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  t.regex(info.torchVersion, /^\d+\.\d+/);
  t.regex(info.blas, /openblas/i);
  t.is(info.blasThreads, 1, 'LEP_THREADS=1 is applied');
  t.is(typeof info.cudaAvailable, 'boolean');
  // This CI's libtorch has no CUDA: said as such, not as a CUDA libtorch that sees no GPU.
  t.is(info.cudaVersion, '');
  const text = await lep('info');
  t.regex(text.stdout, /^CUDA +not in this libtorch$/m);
});

test('every command answers --help with its usage and an example, exit 0; an unknown flag is refused', async (t) => {
  const names = Object.keys(commands);
  t.true(names.length >= 20, names.join(', '));
  const pages = await Promise.all(names.map(async (name) => [name, await lep(...name.split(' '), '--help')] as const));
  for (const [name, r] of pages) {
    t.is(r.code, 0, `${name}: ${r.stderr}`);
    t.true(r.stdout.startsWith(`lep ${name}`), `${name}: ${r.stdout.slice(0, 80)}`);
    t.regex(r.stdout, /\nExample: lep /, name);
  }
  // lep --help lists every form of every command (lep eval has three: evaluate, --compare, convert-darumeru).
  const top = await lep('--help');
  t.is(top.code, 0, top.stderr);
  for (const name of names) {
    const usage = commands[name as keyof typeof commands]!.usage.split('\n');
    const forms = usage.slice(0, Math.max(1, usage.findIndex((l) => !l.startsWith('lep '))));
    for (const form of forms) t.true(top.stdout.includes(`\n${form}\n`), `${name}: ${form}`);
  }
  t.regex(top.stdout, /\nlep eval --compare A B/);
  const bad = await lep('info', '--jsn');
  t.not(bad.code, 0);
  t.regex(bad.stderr, /Unknown option '--jsn'/);
});

test('model create -> generate -> export gguf through the CLI', async (t) => {
  const dir = join(tempDir(), 'm');
  let r = await lep('model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', dir, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2', '--seed', '3', '--embed-std', '1');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /wrote .*: mistral, 1 layers, hidden 32, vocab 32000/);
  r = await lep('generate', dir, '--prompt', 'Hello', '--max-new-tokens', '5');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stderr, /\(5 tokens, finish: length\)/);
  const again = await lep('generate', dir, '--prompt', 'Hello', '--max-new-tokens', '5');
  t.is(again.stdout, r.stdout, 'greedy generation is deterministic');
  r = await lep('export', 'gguf', dir, '--out', `${dir}.gguf`, '--outtype', 'bf16');
  t.is(r.code, 0, r.stderr);
  t.true(existsSync(`${dir}.gguf`));
  t.regex(r.stdout, /tokenizer: llama\.cpp tokenises exactly as lep/);
  const asJson = await lep('export', 'gguf', dir, '--out', `${dir}-json.gguf`, '--outtype', 'bf16', '--json');
  t.is(asJson.code, 0, asJson.stderr);
  t.like(JSON.parse(asJson.stdout), { out: `${dir}-json.gguf`, tokenizer: { exact: true } });
  t.is(JSON.parse(asJson.stdout).bytes, readFileSync(`${dir}.gguf`).length, '--json: the same GGUF as without it');
  r = await lep('export', 'gguf', dir, '--out', `${dir}-2.gguf`, '--check-text', join(dir, 'missing.txt'));
  t.is(r.code, 1);
  t.regex(r.stderr, /--check-text .*missing\.txt cannot be read \(ENOENT\)/);
  t.false(existsSync(`${dir}-2.gguf`));
});

test('CLI errors name the problem and exit non-zero', async (t) => {
  let r = await lep('generate', '/nonexistent/model', '--prompt', 'x');
  t.is(r.code, 1);
  t.regex(r.stderr, /\/nonexistent\/model has no config.json; is it a Hugging Face model directory\?\nHINT: give a model's folder/);
  r = await lep('model', 'create', '--tokenizer', mistralTokenizerDir());
  t.is(r.code, 1);
  t.regex(r.stderr, /missing --out/);
  r = await lep('export', 'gguf', mistralTokenizerDir(), '--out', '/tmp/x.gguf', '--outtype', 'q4');
  t.regex(r.stderr, /Expected "f32" or "f16" or "bf16" for outType \(--outtype\) but received "q4"\nHINT: outType \(--outtype\): Storage type/);
  r = await lep('model', 'create', '--bogus');
  t.regex(r.stderr, /Unknown option '--bogus'.*\nHINT: the flags are listed below/s);
  // A negative number after a flag reads as another flag in Node's parser: the hint says how to pass it.
  r = await lep('train', mistralTokenizerDir(), '--steps', '-3');
  t.regex(r.stderr, /argument is ambiguous.*\nHINT: .*a value that starts with a dash goes as --flag=VALUE/s);
  // The demo checks --vocab before it fetches, trains or writes anything.
  const out = join(tempDir(), 'demo-never-written');
  r = await lep('demo', '--vocab', 'Extended,Klingon', '--out', out);
  t.is(r.code, 1);
  t.regex(r.stderr, /--vocab: unknown vocabulary 'Klingon'\nHINT: choose from Extended, BPE, Optimized/);
  t.false(existsSync(out));
  r = await lep('demo', '--vocab', ' , ', '--out', out);
  t.regex(r.stderr, /--vocab is empty/);
});

test('lep --version and -V print the package version and exit 0', async (t) => {
  const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = await lep(flag);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `lep ${version}\n`);
  }
});

test('an unknown command says so on stderr with the nearest command, exits 2 and prints no help', async (t) => {
  let r = await lep('genrate', 'x');
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^lep: unknown command 'genrate'\nHINT: did you mean 'generate'\?/);
  t.regex(r.stderr, /\(code LEP_UNKNOWN_COMMAND\)/);
  r = await lep('tokenizer', 'trian');
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown command 'tokenizer trian'\nHINT: did you mean 'tokenizer train'\?/);
  r = await lep('exprot', 'gguf', 'M');
  t.regex(r.stderr, /unknown command 'exprot'\nHINT: did you mean 'export gguf'\?/);
  r = await lep('--bogus');
  t.is(r.code, 2);
  t.regex(r.stderr, /unknown option '--bogus' before the command/);
  r = await lep('tokenizer');
  t.regex(r.stderr, /'tokenizer' takes a subcommand: 'tokenizer train', 'tokenizer extend'/);
  r = await lep('frobnicate');
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /unknown command 'frobnicate'\nHINT: lep --help lists the commands/);
});

test('sampling without --seed draws a seed, prints it, and --seed repeats the run', async (t) => {
  const dir = join(tempDir(), 'm');
  let r = await lep('model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', dir, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2', '--seed', '3', '--embed-std', '1');
  t.is(r.code, 0, r.stderr);
  const sample = ['generate', dir, '--prompt', 'Hello', '--max-new-tokens', '8', '--temperature', '1'];
  const seedOf = (stderr: string): string => /lep generate: sampling with seed (\d+) \(pass --seed \1 to repeat\)/.exec(stderr)?.[1] ?? 'none';
  const first = await lep(...sample);
  t.is(first.code, 0, first.stderr);
  const second = await lep(...sample);
  t.not(seedOf(first.stderr), 'none', first.stderr);
  t.not(seedOf(second.stderr), seedOf(first.stderr), 'each unseeded run draws its own seed');
  r = await lep(...sample, '--seed', seedOf(first.stderr));
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, first.stdout, 'the printed seed repeats the run');
  t.notRegex(r.stderr, /sampling with seed/, 'a given seed is not announced');
  r = await lep('generate', dir, '--prompt', 'Hello', '--max-new-tokens', '2');
  t.notRegex(r.stderr, /sampling with seed/, 'greedy decoding needs no seed');
});

/** Runs lep with stdout or stderr on /dev/full (every write fails with ENOSPC); returns the exit code and the other stream. */
function withFullStream(which: 'stdout' | 'stderr', args: string[]): Promise<{ code: number | null; text: string }> {
  const full = openSync('/dev/full', 'w');
  const child = spawn(process.execPath, [LEP, ...args], { env: { ...process.env, LEP_THREADS: '1' }, stdio: ['ignore', which === 'stdout' ? full : 'pipe', which === 'stderr' ? full : 'pipe'] });
  closeSync(full);
  let text = '';
  (which === 'stdout' ? child.stderr : child.stdout)!.on('data', (d: Buffer) => (text += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, text })));
}

test('a stdout that cannot be written (a full disk) fails the command with a message; a failing stderr does not stop the work', async (t) => {
  // It exited 0 with an empty file (info --json), or threw a stack trace (generate's streamed text).
  const dir = join(tempDir(), 'm');
  t.is((await lep('model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', dir, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2')).code, 0);
  for (const args of [['info', '--json'], ['generate', dir, '--prompt', 'Hello', '--max-new-tokens', '3']]) {
    const r = await withFullStream('stdout', args);
    t.is(r.code, 1, `${args[0]}: ${r.text}`);
    t.regex(r.text, /lep: cannot write the output to stdout: ENOSPC\nHINT: .*\n\(code LEP_IO_ENOSPC\)\n$/, args[0]);
    t.notRegex(r.text, /\n    at /, `${args[0]}: no stack trace`);
  }
  // Notes and progress lost on stderr: the model is written all the same, exit 0 (a training died at once).
  const out = join(tempDir(), 'm2');
  const r = await withFullStream('stderr', ['model', 'create', '--tokenizer', mistralTokenizerDir(), '--out', out, '--arch', 'mistral', '--hidden-size', '32', '--layers', '1', '--heads', '2']);
  t.is(r.code, 0, r.text);
  t.true(existsSync(join(out, 'model.safetensors')));
  const gen = await withFullStream('stderr', ['generate', out, '--prompt', 'Hello', '--max-new-tokens', '3']);
  t.is(gen.code, 0);
  t.true(gen.text.length > 0, 'the generated text reached stdout');
});
