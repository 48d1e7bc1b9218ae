/**
 * Propagation at LLaMa-3-8B embedding scale on this machine (issue 5, "Scale"): `lep propagate --method
 * conversion` wall time and peak resident memory, against the naive approach (all three embedding pairs
 * loaded as float64 at once, T·E built in memory, torch.linalg.lstsq with gelsy per side — what the
 * reference code does on GPUs).
 *
 * Inputs (synthetic, bf16 like real checkpoints, cached under .cache/propagate-scale/): base and instruct
 * with |V_old| = 128256 rows, donor with |V_new| = 174816 rows, d = 4096, input and output matrices;
 * byte-level tokenizers whose 46560 new donor tokens split into 3–7 old single-letter tokens (so T has
 * 128256 identity rows and 46560 averaged rows, the shape of an Extended LLaMa-3 vocabulary); a LLaMa-3-8B
 * config.json. Checkpoints hold only the embedding matrices (propagation never reads anything else).
 *
 * Runs, in order: the `small` scale (rows / 16, same d) with lep and the naive script both, checking that
 * their residuals and outputs agree (correctness before timing) and measuring how well the naive memory
 * prediction fits; then the `full` scale with lep, and the naive approach only if its predicted memory
 * fits this machine (else the prediction is reported). Peak RSS is /usr/bin/time -v's maximum resident
 * set size of the child process.
 *
 * With `--baseline DIR` (a folder holding another build's lep.node, e.g. the previous commit's
 * build/Release), each scale runs lep with that addon and with this one alternately, `--reps N` times
 * each, checks that both wrote the same rows (to bf16 rounding) and reports the time ratio: on a shared
 * machine only side-by-side ratios mean anything. `--no-naive` skips the naive script.
 *
 * With `--gram blocked` (or `full`, or `full,blocked`), each scale instead runs lep with those ways of
 * accumulating AᵀA (LEP_PROPAGATE_GRAM, cpp/core/gram_update.h) and with the BLAS dsyrk, alternately, the
 * same way: old path against new path in one bench run.
 *
 * With `--instructs 2`, each scale instead times one donor into two instruct models (a second fine-tune of
 * the same base, `instruct2`): two `lep propagate` calls against one call with both (`--instruct A
 * --instruct B`), alternately `--reps N` times, after checking that the one call wrote the same bytes as
 * the two. The `d1024` scale (8016 / 10926 / 1024) is small enough to run on a busy machine.
 *
 * With `--methods 2`, each scale instead times overlap and conversion: two `lep propagate` calls (one per
 * method) against one `propagateMethods` call with both, which adds the rows the two systems share once
 * (cpp/core/propagate.h), alternately `--reps N` times; the outputs of the two must agree to bf16 rounding.
 *
 * Usage: npx tsc -p tsconfig.json && node dist/bench/propagate-scale.js [--scale small|full|d1024|both] [--keep]
 *        [--baseline DIR] [--gram blocked|full] [--reps N] [--no-naive] [--instructs 2] [--methods 2]
 * Appends JSON lines to bench/results/propagate-scale.jsonl. Deletes the synthetic files unless --keep.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync, appendFileSync } from 'node:fs';
import { loadavg, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { getNative } from '../ts/binding/loadNative.js';
import { lepInfo } from '../ts/runtime.js';
import { packageRoot } from '../ts/binding/loadNative.js';
import { BYTE_TO_CHAR } from '../ts/tokenizer/byteLevel.js';
import { Tokenizer } from '../ts/tokenizer/Tokenizer.js';
import { buildVocabularyMap } from '../ts/propagate/vocabularyMap.js';
import { propagateMethods, type PropagateRun } from '../ts/propagate/propagate.js';

const PYTHON = '/usr/bin/python3';
const HELPER = join(packageRoot, 'bench', 'propagate_scale.py');
const CLI = join(packageRoot, 'dist', 'ts', 'cli', 'main.js');
const CACHE = join(packageRoot, '.cache', 'propagate-scale');
const RESULTS = join(packageRoot, 'bench', 'results', 'propagate-scale.jsonl');

interface Scale { name: string; old: number; new: number; d: number }
const SCALES: Record<string, Scale> = {
  full: { name: 'full', old: 128256, new: 174816, d: 4096 },
  small: { name: 'small', old: 128256 / 16, new: 174816 / 16, d: 4096 },
  d1024: { name: 'd1024', old: 128256 / 16, new: 174816 / 16, d: 1024 },
};
const SPECIALS = 256;  // LLaMa-3: <|begin_of_text|> ... <|reserved_special_token_250|> at the end of the old ids

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Byte-level BPE tokenizer.json: 256 byte tokens, random letter pieces, SPECIALS added tokens, then `extra` new pieces. */
function tokenizers(s: Scale): { base: object; donor: object } {
  const r = rng(1);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const seen = new Set<string>(BYTE_TO_CHAR);
  const piece = (): string => {
    for (;;) {
      let p = r() < 0.5 ? 'Ġ' : '';
      for (let k = 3 + Math.floor(r() * 5); k > 0; k--) p += letters[Math.floor(r() * 26)];
      if (!seen.has(p)) return seen.add(p), p;
    }
  };
  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((c, i) => (vocab[c] = i));
  for (let id = 256; id < s.old - SPECIALS; id++) vocab[piece()] = id;
  const added = (size: number) => Array.from({ length: SPECIALS }, (_, k) => ({
    id: size - SPECIALS + k, content: k === 0 ? '<|begin_of_text|>' : k === 9 ? '<|eot_id|>' : `<|reserved_special_token_${k}|>`,
    single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  }));
  const json = (v: Record<string, number>, size: number) => ({
    version: '1.0', truncation: null, padding: null, added_tokens: added(size), normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true, vocab: v, merges: [] },
  });
  // The donor's new pieces follow the base's pieces and its added tokens come last (lep's tokenizers
  // number added tokens after the model vocabulary, without gaps).
  const donorVocab = { ...vocab };
  for (let id = s.old - SPECIALS; id < s.new - SPECIALS; id++) donorVocab[piece()] = id;
  return { base: json(vocab, s.old), donor: json(donorVocab, s.new) };
}

function config(vocab: number, d: number): object {
  return {
    architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: vocab, hidden_size: d, intermediate_size: LAYER_FFN,
    num_hidden_layers: 1, num_attention_heads: 32, num_key_value_heads: 8, max_position_embeddings: 8192, rms_norm_eps: 1e-5,
    rope_theta: 500000, tie_word_embeddings: false, hidden_act: 'silu', torch_dtype: 'bfloat16', bos_token_id: vocab - SPECIALS, eos_token_id: vocab - SPECIALS + 9,
  };
}

/**
 * The one decoder layer and final norm the config names (LAYER_FFN wide, zeros), in layers.safetensors
 * beside the embeddings, with an index: lep checks a checkpoint against its config before propagating,
 * and propagation never reads these.
 */
const LAYER_FFN = 256;
function writeLayers(modelDir: string, d: number): void {
  const heads = 32;
  const kv = 8;
  const hd = d / heads;
  const shapes: [string, number[]][] = [
    ['model.norm.weight', [d]], ['model.layers.0.input_layernorm.weight', [d]], ['model.layers.0.post_attention_layernorm.weight', [d]],
    ['model.layers.0.self_attn.q_proj.weight', [heads * hd, d]], ['model.layers.0.self_attn.k_proj.weight', [kv * hd, d]],
    ['model.layers.0.self_attn.v_proj.weight', [kv * hd, d]], ['model.layers.0.self_attn.o_proj.weight', [d, heads * hd]],
    ['model.layers.0.mlp.gate_proj.weight', [LAYER_FFN, d]], ['model.layers.0.mlp.up_proj.weight', [LAYER_FFN, d]], ['model.layers.0.mlp.down_proj.weight', [d, LAYER_FFN]],
  ];
  getNative().writeSafetensors(join(modelDir, 'layers.safetensors'), shapes.map(([name, shape]) => ({ name, dtype: 'BF16', shape, data: new Uint8Array(2 * shape.reduce((a, b) => a * b, 1)) })), { format: 'pt' });
  const weightMap: Record<string, string> = { 'model.embed_tokens.weight': 'model.safetensors', 'lm_head.weight': 'model.safetensors' };
  for (const [name] of shapes) weightMap[name] = 'layers.safetensors';
  writeFileSync(join(modelDir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { stdout: string; seconds: number; maxRssKiB: number } {
  const r = spawnSync('/usr/bin/time', ['-v', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, env });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(r.stderr);
  return { stdout: r.stdout, maxRssKiB: Number(rss?.[1]), seconds: Number(wall?.[1] ?? 0) * 3600 + Number(wall?.[2]) * 60 + Number(wall?.[3]) };
}

/** Bytes the naive approach holds at its peak (second side): all six matrices, both new matrices, one side's A, B and gelsy's copies of them. */
function naivePredictedBytes(s: Scale): number {
  return 8 * s.d * (2 * (2 * s.old + s.new) + 2 * s.new + 4 * s.new);
}

function synthesize(s: Scale, dir: string): void {
  const need = 2 * 2 * s.d * (2 * s.old + s.new) * 1.2 + 2 * 2 * s.d * s.new;  // inputs + output, 20% margin
  const st = statfsSync(packageRoot);
  if (st.bavail * st.bsize < need) throw new Error(`need ${(need / 2 ** 30).toFixed(1)} GiB free on ${packageRoot}, have ${((st.bavail * st.bsize) / 2 ** 30).toFixed(1)}`);
  mkdirSync(dir, { recursive: true });
  const tok = tokenizers(s);
  const chat = "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}";
  for (const [m, t, rows] of [['base', tok.base, s.old], ['instruct', tok.base, s.old], ['donor', tok.donor, s.new]] as const) {
    mkdirSync(join(dir, m), { recursive: true });
    writeFileSync(join(dir, m, 'tokenizer.json'), JSON.stringify(t));
    writeFileSync(join(dir, m, 'tokenizer_config.json'), JSON.stringify({ bos_token: '<|begin_of_text|>', eos_token: '<|eot_id|>', ...(m === 'instruct' ? { chat_template: chat } : {}) }));
    writeFileSync(join(dir, m, 'config.json'), JSON.stringify(config(rows, s.d)));
  }
  if (!existsSync(join(dir, 'donor', 'model.safetensors'))) {
    const t0 = performance.now();
    const r = spawnSync(PYTHON, [HELPER, 'synth', dir, String(s.old), String(s.new), String(s.d), '1'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('synthesis failed');
    console.log(`${s.name}: synthetic bf16 checkpoints written in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  for (const m of ['base', 'instruct', 'donor']) writeLayers(join(dir, m), s.d);
}

async function writeT(dir: string): Promise<string> {
  const map = await buildVocabularyMap(Tokenizer.fromDir(join(dir, 'base')), Tokenizer.fromDir(join(dir, 'donor')));
  const { offsets, indices } = map.averaging;
  const buf = new Int32Array(1 + offsets.length + indices.length);
  buf[0] = offsets.length - 1;
  buf.set(offsets, 1);
  buf.set(indices, 1 + offsets.length);
  const path = join(dir, 'T.bin');
  writeFileSync(path, buf);
  return path;
}

/** max |a − b| / max |b| over the embedding matrices of two bf16 checkpoints (the other tensors are copied zeros). */
function maxRelDiff(fileA: string, fileB: string): number {
  const a = new Map(getNative().readSafetensors(fileA).map((t) => [t.name, t]));
  let worst = 0;
  for (const t of getNative().readSafetensors(fileB)) {
    if (t.name !== 'model.embed_tokens.weight' && t.name !== 'lm_head.weight') continue;
    const x = bf16ToF64(a.get(t.name)!);
    const y = bf16ToF64(t);
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < y.length; i++) {
      diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
      scale = Math.max(scale, Math.abs(y[i]!));
    }
    worst = Math.max(worst, diff / scale);
  }
  return worst;
}

/**
 * Variants of lep run alternately on the same inputs, `reps` times each: another build (`LEP_NATIVE`) or
 * another Gram path (`LEP_PROPAGATE_GRAM`), the first variant being the old one. Time, peak RSS and phase
 * seconds of each run; the ratio is first / last.
 */
function compareVariants(s: Scale, dir: string, variants: [string, NodeJS.ProcessEnv][], reps: number): Record<string, unknown> {
  const runs: Record<string, unknown>[] = [];
  const outs: Record<string, string> = {};
  for (let rep = 0; rep < reps; rep++)
    for (const [name, extra] of variants) {
      const out = join(dir, `out-${name}`);
      rmSync(out, { recursive: true, force: true });
      const env = { ...process.env, ...extra };
      const load = loadavg()[0]!;
      const r = run(process.execPath, [CLI, 'propagate', '--base', join(dir, 'base'), '--donor', join(dir, 'donor'), '--instruct', join(dir, 'instruct'), '--out', out, '--method', 'conversion'], env);
      const report = JSON.parse(readFileSync(join(out, 'propagate_report.json'), 'utf8'));
      type SideJson = { side: string; solveSeconds: number; applySeconds: number; residual: number; gram?: string };
      runs.push({ variant: name, rep, seconds: r.seconds, maxRssBytes: r.maxRssKiB * 1024, load1: load,
        sides: report.sides.map((x: SideJson) => ({ side: x.side, gram: x.gram, solveSeconds: x.solveSeconds, applySeconds: x.applySeconds, residual: x.residual })) });
      console.log(`${s.name} ${name} rep ${rep}: ${r.seconds.toFixed(1)} s, peak RSS ${(r.maxRssKiB / 2 ** 20).toFixed(2)} GiB, load ${load.toFixed(1)}; ` +
        report.sides.map((x: SideJson) => `${x.side} solve ${x.solveSeconds.toFixed(1)} s apply ${x.applySeconds.toFixed(1)} s (gram ${x.gram ?? '?'}, residual ${x.residual})`).join(', '));
      outs[name] = join(out, 'model.safetensors');
    }
  // Correctness before timing: the first and last variants wrote the same rows, to bf16 rounding.
  const first = variants[0]![0], last = variants.at(-1)![0];
  const agreement = maxRelDiff(outs[last]!, outs[first]!);
  const sum = (b: string, f: (r: Record<string, unknown>) => number): number => runs.filter((r) => r.variant === b).reduce((a, r) => a + f(r), 0);
  const ratio = sum(first, (r) => r.seconds as number) / sum(last, (r) => r.seconds as number);
  console.log(`${s.name}: ${first} / ${last} time ${ratio.toFixed(2)}x; outputs agree to ${agreement.toExponential(1)} (max relative)`);
  for (const name of Object.keys(outs)) rmSync(dirname(outs[name]!), { recursive: true, force: true });
  return { variants: variants.map(([name, env]) => ({ name, env })), runs, ratio, agreement };
}

/** One donor into two instruct models: two calls against one call with both (see the module doc). */
function compareMany(s: Scale, dir: string, reps: number): Record<string, unknown> {
  if (!existsSync(join(dir, 'instruct2', 'model.safetensors'))) {
    const r = spawnSync(PYTHON, [HELPER, 'instruct2', dir, String(s.old), String(s.d), '1'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error('synthesis of instruct2 failed');
  }
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'config.json', 'layers.safetensors', 'model.safetensors.index.json'])
    writeFileSync(join(dir, 'instruct2', f), readFileSync(join(dir, 'instruct', f)));
  const common = ['propagate', '--base', join(dir, 'base'), '--donor', join(dir, 'donor'), '--method', 'conversion'];
  const insts = [join(dir, 'instruct'), join(dir, 'instruct2')];
  const singles = insts.map((_, i) => join(dir, `out-single-${i}`));
  const many = insts.map((_, i) => join(dir, `out-many-${i}`));
  const rounds: { twoCalls: number[]; oneCall: number; oneCallRssBytes: number; twoCallsRssBytes: number[] }[] = [];
  for (let k = 0; k < reps; k++) {
    const two = insts.map((inst, i) => run(process.execPath, [CLI, ...common, '--instruct', inst, '--out', singles[i]!]));
    const one = run(process.execPath, [CLI, ...common, ...insts.flatMap((inst, i) => ['--instruct', inst, '--out', many[i]!])]);
    rounds.push({ twoCalls: two.map((x) => x.seconds), oneCall: one.seconds, oneCallRssBytes: one.maxRssKiB * 1024, twoCallsRssBytes: two.map((x) => x.maxRssKiB * 1024) });
    const r = rounds.at(-1)!;
    console.log(`${s.name} round ${k + 1}: two calls ${r.twoCalls.map((x) => x.toFixed(1)).join(' + ')} s, one call ${r.oneCall.toFixed(1)} s, ratio ${((r.twoCalls[0]! + r.twoCalls[1]!) / r.oneCall).toFixed(2)}`);
  }
  // Correctness before timing counts: the one call wrote exactly what the two calls wrote.
  const identical = insts.map((_, i) => readFileSync(join(singles[i]!, 'model.safetensors')).equals(readFileSync(join(many[i]!, 'model.safetensors'))));
  if (!identical.every(Boolean)) throw new Error(`one call and two calls wrote different checkpoints: ${identical.join(', ')}`);
  const reports = many.map((o) => JSON.parse(readFileSync(join(o, 'propagate_report.json'), 'utf8')) as { sides: { residual: number; overlapCosine: number; solveSeconds: number; applySeconds: number }[] });
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const ratio = sum(rounds.map((r) => sum(r.twoCalls))) / sum(rounds.map((r) => r.oneCall));
  for (const o of [...singles, ...many]) rmSync(o, { recursive: true, force: true });
  return { rounds, ratio, identical, sides: reports.map((r) => r.sides) };
}

/** Overlap and conversion: two calls against one `propagateMethods` call (see the module doc). */
function compareMethods(s: Scale, dir: string, reps: number): Record<string, unknown> {
  const common = ['propagate', '--base', join(dir, 'base'), '--donor', join(dir, 'donor'), '--instruct', join(dir, 'instruct')];
  const methods = ['overlap', 'conversion'];
  const singles = methods.map((m) => join(dir, `out-single-${m}`));
  const joint = methods.map((m) => join(dir, `out-joint-${m}`));
  const rounds: { twoCalls: number[]; oneCall: number; oneCallRssBytes: number; twoCallsRssBytes: number[] }[] = [];
  for (let k = 0; k < reps; k++) {
    for (const o of [...singles, ...joint]) rmSync(o, { recursive: true, force: true });
    const load = loadavg()[0]!;
    const two = methods.map((m, i) => run(process.execPath, [CLI, ...common, '--method', m, '--out', singles[i]!]));
    const one = run(process.execPath, [process.argv[1]!, '--child-methods', JSON.stringify({ base: join(dir, 'base'), donor: join(dir, 'donor'), instruct: join(dir, 'instruct'), runs: methods.map((method, i) => ({ method, out: joint[i] })) })]);
    rounds.push({ twoCalls: two.map((x) => x.seconds), oneCall: one.seconds, oneCallRssBytes: one.maxRssKiB * 1024, twoCallsRssBytes: two.map((x) => x.maxRssKiB * 1024) });
    const r = rounds.at(-1)!;
    console.log(`${s.name} round ${k + 1} (load ${load.toFixed(1)}): two calls ${r.twoCalls.map((x) => x.toFixed(1)).join(' + ')} s, one call ${r.oneCall.toFixed(1)} s, ratio ${((r.twoCalls[0]! + r.twoCalls[1]!) / r.oneCall).toFixed(2)}; peak RSS ${(r.oneCallRssBytes / 2 ** 30).toFixed(2)} / ${r.twoCallsRssBytes.map((x) => (x / 2 ** 30).toFixed(2)).join(', ')} GiB`);
  }
  // Correctness: the shared rows are summed in another order, so the rows agree to bf16 rounding.
  // In Python, a chunk of rows at a time: at full scale the matrices do not fit the JS side.
  const agreement = methods.map((_, i) => {
    const r = spawnSync(PYTHON, [HELPER, 'compare', join(joint[i]!, 'model.safetensors'), join(singles[i]!, 'model.safetensors')], { encoding: 'utf8', maxBuffer: 1 << 20 });
    if (r.status !== 0) throw new Error(`compare failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { maxRelDiff: number }).maxRelDiff;
  });
  const reports = (dirs: string[]) => dirs.map((o) => (JSON.parse(readFileSync(join(o, 'propagate_report.json'), 'utf8')) as { sides: { residual: number; systemRows: number; solveSeconds: number; applySeconds: number }[] }).sides);
  const sides = { joint: reports(joint), single: reports(singles) };
  for (const [i, m] of methods.entries()) console.log(`${s.name} ${m}: rows agree to ${agreement[i]!.toExponential(1)}; residuals ${sides.joint[i]!.map((x) => x.residual).join(' / ')} (one call) vs ${sides.single[i]!.map((x) => x.residual).join(' / ')}`);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const ratio = sum(rounds.map((r) => sum(r.twoCalls))) / sum(rounds.map((r) => r.oneCall));
  for (const o of [...singles, ...joint]) rmSync(o, { recursive: true, force: true });
  return { methods, rounds, ratio, agreement, sides };
}

function bf16ToF64(t: { data: Uint8Array }): Float64Array {
  const u16 = new Uint16Array(t.data.slice().buffer);
  const f32 = new Float32Array(new Uint32Array(Array.from(u16, (x) => x << 16)).buffer);
  return Float64Array.from(f32);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { scale: { type: 'string', default: 'both' }, keep: { type: 'boolean', default: false },
    baseline: { type: 'string' }, reps: { type: 'string', default: '1' }, 'no-naive': { type: 'boolean', default: false }, instructs: { type: 'string', default: '1' },
    gram: { type: 'string' }, methods: { type: 'string', default: '1' }, 'child-methods': { type: 'string' } } });
  if (values['child-methods']) {  // the one call of compareMethods, timed by the parent
    const a = JSON.parse(values['child-methods']) as { base: string; donor: string; instruct: string; runs: PropagateRun[] };
    await propagateMethods({ base: a.base, donor: a.donor, instruct: a.instruct }, a.runs);
    return;
  }
  const scales = values.scale === 'both' ? ['small', 'full'] : [values.scale!];
  const info = getNative().info();
  for (const name of scales) {
    const s = SCALES[name]!;
    const dir = join(CACHE, `${s.name}-${s.old}-${s.new}-${s.d}`);
    synthesize(s, dir);
    const machine = { cpu: lepInfo().cpu.model, memBytes: totalmem(), torch: info.torchVersion, blas: info.blas, blasCore: info.blasCore, blasThreads: info.blasThreads, load1: loadavg()[0] };
    if (values.methods === '2') {
      const m = compareMethods(s, dir, Number(values.reps));
      appendFileSync(RESULTS, `${JSON.stringify({ bench: 'propagate-methods', date: new Date().toISOString(), scale: s, machine, ...m })}\n`);
      console.log(`${s.name}: overlap and conversion, two calls / one call = ${(m.ratio as number).toFixed(2)}`);
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (values.instructs === '2') {
      const many = compareMany(s, dir, Number(values.reps));
      appendFileSync(RESULTS, `${JSON.stringify({ bench: 'propagate-many', date: new Date().toISOString(), scale: s, method: 'conversion', machine, ...many })}\n`);
      console.log(`${s.name}: two instruct models, two calls / one call = ${(many.ratio as number).toFixed(2)}`);
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
      continue;
    }
    if (values.baseline || values.gram) {
      const variants: [string, NodeJS.ProcessEnv][] = values.baseline
        ? [['baseline', { LEP_NATIVE: values.baseline }], ['current', {}]]
        : [...values.gram!.split(','), 'syrk'].map((g) => [`gram-${g}`, { LEP_PROPAGATE_GRAM: g }]);
      const comparison = compareVariants(s, dir, variants, Number(values.reps));
      appendFileSync(RESULTS, `${JSON.stringify({ bench: 'propagate-scale-compare', date: new Date().toISOString(), scale: s, method: 'conversion', machine, ...comparison })}\n`);
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const out = join(dir, 'out-lep');
    const lep = run(process.execPath, [CLI, 'propagate', '--base', join(dir, 'base'), '--donor', join(dir, 'donor'), '--instruct', join(dir, 'instruct'), '--out', out, '--method', 'conversion']);
    const report = JSON.parse(readFileSync(join(out, 'propagate_report.json'), 'utf8'));
    console.log(`${s.name}: lep ${lep.seconds.toFixed(1)} s, peak RSS ${(lep.maxRssKiB / 2 ** 20).toFixed(2)} GiB; residuals ${report.sides.map((x: { residual: number }) => x.residual.toFixed(6)).join(' / ')}`);
    const predicted = naivePredictedBytes(s);
    let naive: Record<string, unknown> = { predictedBytes: predicted, ran: false };
    if (!values['no-naive'] && predicted < 0.8 * totalmem()) {
      const tpath = await writeT(dir);
      const nout = join(dir, 'out-naive.safetensors');
      const n = run(PYTHON, [HELPER, 'naive', dir, tpath, nout]);
      const nrep = JSON.parse(n.stdout);
      // Correctness before timing: same residuals, same rows (lep's are bf16, so bf16 rounding is the floor).
      const mine = new Map(getNative().readSafetensors(join(out, 'model.safetensors')).map((t) => [t.name, t]));
      const ref = new Map(getNative().readSafetensors(nout).map((t) => [t.name, t]));
      const agreement = [...ref.keys()].map((k) => {
        const a = bf16ToF64(mine.get(k)!);
        const b = new Float64Array(ref.get(k)!.data.slice().buffer);
        let diff = 0;
        let scale = 0;
        // The donor's specials (its last SPECIALS ids, tokenizers() above) are copied from the instruct
        // model by lep and propagated like any row by the naive script: not compared.
        const specials = s.new - SPECIALS;
        for (let i = 0; i < b.length; i++) {
          if (Math.floor(i / s.d) >= specials) continue;
          diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
          scale = Math.max(scale, Math.abs(b[i]!));
        }
        return { tensor: k, maxRelDiff: diff / scale };
      });
      naive = { predictedBytes: predicted, ran: true, seconds: n.seconds, maxRssBytes: n.maxRssKiB * 1024, ...nrep, agreement };
      console.log(`${s.name}: naive ${n.seconds.toFixed(1)} s, peak RSS ${(n.maxRssKiB / 2 ** 20).toFixed(2)} GiB (predicted ${(predicted / 2 ** 30).toFixed(2)}); residuals ${nrep.sides.map((x: { residual: number }) => x.residual.toFixed(6)).join(' / ')}; rows agree to ${agreement.map((a) => a.maxRelDiff.toExponential(1)).join(' / ')}`);
      rmSync(nout, { force: true });
    } else {
      console.log(`${s.name}: naive not run: predicted ${(predicted / 2 ** 30).toFixed(1)} GiB > 80% of this machine's ${(totalmem() / 2 ** 30).toFixed(1)} GiB`);
    }
    const record = {
      bench: 'propagate-scale', date: new Date().toISOString(), scale: s, method: 'conversion', solver: report.options.solver,
      machine,
      lep: { seconds: lep.seconds, maxRssBytes: lep.maxRssKiB * 1024, sides: report.sides, timings: report.timings, vocabulary: report.vocabulary },
      naive,
    };
    appendFileSync(RESULTS, `${JSON.stringify(record)}\n`);
    rmSync(out, { recursive: true, force: true });
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
