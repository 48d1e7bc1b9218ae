// Tokenizer training through SentencePiece (lep_spm.node) on real Russian text: the fortunes-ru package
// from Debian, fetched by the same code as `lep corpora fetch` into its own cache folder (the shared
// .cache/corpora holds the full corpus and must not be rebuilt with one source). The reference for every
// id comparison is SentencePiece itself — its library through the addon, and Debian's `spm_encode` CLI.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';

import { getSpmNative, packageRoot } from '../../ts/binding/loadNative.js';
import { fetchCorpora } from '../../ts/corpus/fetchDebian.js';
import { mistralTokenizerDir } from '../../ts/data/builtinTokenizers.js';
import { LepError } from '../../ts/errors.js';
import { Tokenizer } from '../../ts/tokenizer/Tokenizer.js';
import { resolveTrainOptions, trainTokenizer, type TrainTokenizerOptions } from '../../ts/tokenizer/train.js';
import { filesFingerprint } from '../../ts/stage/inputFingerprint.js';
import { readStageRecord } from '../../ts/stage/stageRecord.js';
import { LEP_CLI, tempDir } from '../helpers.js';

const run = promisify(execFile);
const LLAMA3_FIXTURE = join(packageRoot, 'test', 'fixtures', 'llama3-8k');
/** Training text cap: about 1 MB of Russian, a second of BPE training on 2 cores. */
const MAX_CHARS = 600_000;

let corpus: Promise<{ train: string; heldout: string[] }> | undefined;
/** fortunes-ru training file and held-out lines, fetched once per run (cached on disk across runs). */
function fortunes(): Promise<{ train: string; heldout: string[] }> {
  corpus ??= fetchCorpora({ cacheDir: join(packageRoot, '.cache', 'corpora-fortunes-ru'), sources: ['fortunes-ru'], outputs: ['ru'] }).then((r) => ({
    train: r.files['ru.txt']!,
    heldout: readFileSync(r.files['heldout/ru.txt']!, 'utf8').split('\n').filter((l) => l.trim() !== ''),
  }));
  return corpus;
}

async function train(name: string, options: TrainTokenizerOptions): Promise<{ dir: string; tok: Tokenizer; stats: Awaited<ReturnType<typeof trainTokenizer>>['stats'] }> {
  const { train: file } = await fortunes();
  const dir = join(tempDir('lep-spm-train-'), name);
  const { stats } = await trainTokenizer(file, dir, { corpus: { maxChars: MAX_CHARS }, ...options });
  return { dir, tok: Tokenizer.fromDir(dir), stats };
}

async function spmIds(dir: string, texts: string[]): Promise<number[][]> {
  const ids = await getSpmNative().encode(join(dir, 'tokenizer.model'), texts, null).promise;
  return ids.map((a) => Array.from(a));
}

/** Debian's spm_encode on the same model: an independent check that the addon's reference ids are SentencePiece's. */
async function spmEncodeCli(dir: string, texts: string[]): Promise<number[][]> {
  const input = join(dir, 'spm-input.txt');
  writeFileSync(input, texts.join('\n') + '\n');
  const { stdout } = await run('spm_encode', [`--model=${join(dir, 'tokenizer.model')}`, '--output_format=id', `--input=${input}`], { maxBuffer: 1 << 28 });
  return stdout.split('\n').slice(0, texts.length).map((l) => (l === '' ? [] : l.split(' ').map(Number)));
}

function differing(a: number[][], b: number[][]): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length; i++) if (a[i]!.join(' ') !== b[i]!.join(' ')) out.push(i);
  return out;
}

test('BPE: tokenizer.json in Mistral layout loads in HF tokenizers and encodes held-out text to SentencePiece\'s ids', async (t) => {
  const events: { phase: string; done: number; total: number }[] = [];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const { dir, tok, stats } = await train('bpe', { type: 'bpe', vocabSize: 4000, onProgress: (e) => events.push(e) });
  clearInterval(timer);
  const { heldout } = await fortunes();
  t.true(heldout.length > 1000, `${heldout.length} held-out lines`);

  // Same pipeline parts as Mistral's own tokenizer.json, so HF tools treat it the same way.
  const mistral = JSON.parse(readFileSync(join(mistralTokenizerDir(), 'tokenizer.json'), 'utf8')) as Record<string, unknown>;
  for (const key of ['normalizer', 'pre_tokenizer', 'post_processor', 'decoder']) t.deepEqual(tok.json[key], mistral[key], key);
  const model = tok.json.model as Record<string, unknown>;
  t.deepEqual(Object.keys(model).sort(), Object.keys(mistral.model as object).sort());
  t.is(model.byte_fallback, true);
  t.is(tok.size, 4000);
  t.deepEqual([0, 1, 2].map((i) => tok.idToToken(i)), ['<unk>', '<s>', '</s>']);
  t.is(tok.idToToken(3), '<0x00>');
  t.is(stats.merges, (model.merges as unknown[]).length);

  // Progress: corpus, load, merging steps in order, save; the event loop kept turning meanwhile.
  const phases = [...new Set(events.map((e) => e.phase))];
  t.deepEqual(phases, ['corpus', 'load', 'bpe', 'save']);
  const steps = events.filter((e) => e.phase === 'bpe').map((e) => e.done);
  t.true(steps.length > 10 && steps.every((s, i) => i === 0 || s > steps[i - 1]!), `bpe steps ${steps.slice(0, 5)}…`);
  t.true(ticks > 0, `timer ticks during training: ${ticks}`);

  // The stage record: the options as they ran (defaults and the thread count filled in), the corpus's fingerprint, the stats.
  const record = readStageRecord(dir, 'tokenizer');
  t.like(record.resolved, { ...resolveTrainOptions({ type: 'bpe', vocabSize: 4000 }), corpus: { maxChars: MAX_CHARS }, like: null });
  t.like(record.resolved, { sentencepiece: { model_type: 'bpe', vocab_size: '4000' } });
  const { train: file } = await fortunes();
  t.deepEqual(record.inputs, [{ role: 'corpus', path: file, fingerprint: filesFingerprint([file]) }]);
  t.deepEqual(record.result, { stats: JSON.parse(JSON.stringify(stats)) });

  // Parity on every held-out line: HF tokenizers == SentencePiece library == Debian's spm_encode.
  const hf = await tok.encodeBatch(heldout);
  const sp = await spmIds(dir, heldout);
  const cli = await spmEncodeCli(dir, heldout);
  t.deepEqual(differing(sp, cli), [], 'addon encode vs spm_encode');
  const diff = differing(hf, sp);
  const tokens = sp.reduce((n, ids) => n + ids.length, 0);
  t.log(`BPE parity: ${heldout.length - diff.length}/${heldout.length} held-out lines identical (${tokens} tokens)`);
  t.deepEqual(diff.map((i) => heldout[i]), []);

  // Byte fallback and decoding: a character the corpus never had goes to <0xNN> pieces on both sides.
  const rare = 'Попугай 🦜 говорит\tпо-русски';
  const [rareIds] = await spmIds(dir, [rare]);
  t.deepEqual(await tok.encode(rare), rareIds);
  t.true(rareIds!.some((id) => /^<0x[0-9A-F]{2}>$/.test(tok.idToToken(id)!)));
  t.is(await tok.decode(rareIds!), rare);
  t.deepEqual(await tok.encode(rare, { addSpecialTokens: true }), [1, ...rareIds!]);
});

test('Unigram: held-out ids identical to SentencePiece except Viterbi ties, each checked to score the same', async (t) => {
  const { dir, tok } = await train('unigram', { type: 'unigram', vocabSize: 4000 });
  const { heldout } = await fortunes();
  const model = tok.json.model as { type: string; unk_id: number; vocab: [string, number][] };
  t.is(model.type, 'Unigram');
  t.is(model.unk_id, 0);
  const hf = await tok.encodeBatch(heldout);
  const sp = await spmIds(dir, heldout);
  const diff = differing(hf, sp);
  // A difference is acceptable only when both segmentations have the same total log-probability: the two
  // Viterbi searches then face a tie and break it differently (seen: "...." as "." + "..." vs "..." + ".").
  // Anything else would be a conversion error.
  const score = (ids: number[]) => ids.reduce((s, id) => s + model.vocab[id]![1], 0);
  for (const i of diff) {
    t.true(Math.abs(score(hf[i]!) - score(sp[i]!)) < 1e-3, `line ${i}: ${JSON.stringify(heldout[i])} scores ${score(hf[i]!)} vs ${score(sp[i]!)}`);
    t.is(await tok.decode(hf[i]!), await tok.decode(sp[i]!));
  }
  t.log(`Unigram parity: ${heldout.length - diff.length}/${heldout.length} held-out lines identical; ${diff.length} ties`);
  // Stated bound: ties are rare (runs of one repeated character such as "...." or "!!!"), under 1% of lines.
  t.true(diff.length <= heldout.length / 100, `${diff.length} differing lines of ${heldout.length}`);
});

test('user-defined symbols stay whole and match SentencePiece except at the very start of a text', async (t) => {
  const { dir, tok } = await train('uds', { vocabSize: 3000, userDefinedSymbols: ['<sep>', 'км'], corpus: { maxChars: 200_000 } });
  const { heldout } = await fortunes();
  t.is(tok.json.normalizer, null);
  t.deepEqual(tok.json.pre_tokenizer, { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false });
  t.false(tok.config.legacy);
  const sep = tok.tokenToId('<sep>')!;
  t.is(sep, 3);
  // Put the symbol inside the held-out lines (replacing every fifth space) and before/after words.
  const texts = heldout.slice(0, 800).map((l) => { let k = 0; return l.replace(/ /g, () => (++k % 5 === 0 ? '<sep>' : ' ')); });
  texts.push('Привет<sep>мир', 'мир <sep> мир', 'мир<sep>', '50 км в час');
  const hf = await tok.encodeBatch(texts);
  const sp = await spmIds(dir, texts);
  t.deepEqual(differing(hf, sp).map((i) => texts[i]), []);
  t.true(hf.at(-1)!.includes(tok.tokenToId('км')!));
  // Known difference: SentencePiece puts a lone "▁" before a symbol that opens the text; Hugging Face cuts
  // added tokens out before its pre-tokeniser runs, so it has no place to put one.
  const [spStart] = await spmIds(dir, ['<sep>мир']);
  const hfStart = await tok.encode('<sep>мир');
  t.deepEqual(spStart, [tok.tokenToId('▁')!, ...hfStart]);
});

test('--like: Mistral keeps its specials at their ids; LLaMa-3 lends its specials and chat template', async (t) => {
  const mistral = await train('like-mistral', { vocabSize: 2000, like: mistralTokenizerDir(), corpus: { maxChars: 100_000 } });
  const mcfg = JSON.parse(readFileSync(join(mistralTokenizerDir(), 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
  for (const k of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'add_bos_token', 'add_eos_token', 'legacy', 'tokenizer_class'])
    t.deepEqual(mistral.tok.config[k], mcfg[k], k);
  t.deepEqual(mistral.tok.config.added_tokens_decoder, mcfg.added_tokens_decoder);

  // Through the CLI, as a user would.
  const { train: file } = await fortunes();
  const out = join(tempDir('lep-spm-like-'), 'llama3-like');
  const { stdout } = await run('node', [LEP_CLI, 'tokenizer', 'train', '--corpus', file, '--max-chars', '100000', '--out', out, '--vocab-size', '2000', '--type', 'unigram', '--like', LLAMA3_FIXTURE]);
  t.regex(stdout, /wrote .*unigram, 2000 pieces/);
  const tok = Tokenizer.fromDir(out);
  const like = Tokenizer.fromDir(LLAMA3_FIXTURE);
  const likeAdded = (like.json.added_tokens as { content: string; special: boolean }[]).map((a) => [a.content, a.special]);
  const added = (tok.json.added_tokens as { id: number; content: string; special: boolean }[]);
  // The model's added tokens first, in its order, then the <unk> SentencePiece requires (LLaMa-3 has none).
  t.deepEqual(added.map((a) => [a.content, a.special]), [...likeAdded, ['<unk>', true]]);
  t.deepEqual(added.map((a) => a.id), [0, 1, 2, 3, 4, 5]);
  t.is(tok.chatTemplate, like.chatTemplate);
  for (const k of ['bos', 'eos', 'pad'] as const) t.is(tok.specialToken(k), like.specialToken(k));
  t.is(tok.config.tokenizer_class, 'PreTrainedTokenizerFast');
  // The template renders with the new tokenizer and its special tokens encode to single new ids.
  const prompt = tok.applyChatTemplate([{ role: 'user', content: 'Привет!' }]);
  t.is(prompt, like.applyChatTemplate([{ role: 'user', content: 'Привет!' }]));
  const ids = await tok.encode(prompt);
  t.is(ids[0], tok.tokenToId('<|begin_of_text|>'));
  t.true(ids.includes(tok.tokenToId('<|eot_id|>')!));
});

test('same seed, same tokenizer; another seed samples other sentences', async (t) => {
  const opts: TrainTokenizerOptions = { vocabSize: 1500, inputSentenceSize: 1500, corpus: { maxChars: 300_000 } };
  const a = await train('seed-a', { ...opts, seed: 1 });
  const b = await train('seed-b', { ...opts, seed: 1 });
  const c = await train('seed-c', { ...opts, seed: 2 });
  t.is(a.stats.sentences, 1500);
  t.deepEqual(a.tok.json, b.tok.json);
  t.notDeepEqual(a.tok.json.model, c.tok.json.model);
});

test('bad input: each a LepError that names the problem and the fix', async (t) => {
  const dir = tempDir('lep-spm-bad-');
  const { train: file } = await fortunes();
  const out = join(dir, 'out');

  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '\n  \n\n');
  const e1 = await t.throwsAsync(trainTokenizer(empty, out, { vocabSize: 1000 }), { instanceOf: LepError });
  t.is(e1!.code, 'LEP_CORPUS_EMPTY');
  t.regex(e1!.message, /yielded no text[\s\S]*HINT/);

  const latin1 = join(dir, 'latin1.txt');
  writeFileSync(latin1, Buffer.concat([Buffer.from('строка в UTF-8\n'), Buffer.from([0xc7, 0xe4, 0xf0, 0xe0, 0xe2, 0x0a])]));
  const e2 = await t.throwsAsync(trainTokenizer(latin1, out, { vocabSize: 1000 }), { instanceOf: LepError });
  t.is(e2!.code, 'LEP_CORPUS_BAD_UTF8');
  t.regex(e2!.message, /latin1\.txt:2/);

  // SentencePiece's "Vocabulary size is smaller than required_chars. 300 vs N." turned into lep's message.
  const e3 = await t.throwsAsync(trainTokenizer(file, out, { vocabSize: 300, corpus: { maxChars: 50_000 } }), { instanceOf: LepError });
  t.is(e3!.code, 'LEP_VOCAB_TOO_SMALL');
  t.regex(e3!.message, /vocabSize \(--vocab-size\) 300 is below the alphabet of this corpus: \d+ characters[\s\S]*HINT: raise --vocab-size to at least \d+.*--character-coverage/);
  // Below the special and byte pieces alone: refused before reading anything.
  const e4 = await t.throwsAsync(trainTokenizer(file, out, { vocabSize: 200 }), { instanceOf: LepError });
  t.is(e4!.code, 'LEP_VOCAB_TOO_SMALL');
  t.regex(e4!.message, /259/);

  const e5 = await t.throwsAsync(trainTokenizer(file, out, { vocabSize: 50_000, corpus: { maxChars: 20_000 } }), { instanceOf: LepError });
  t.is(e5!.code, 'LEP_VOCAB_TOO_LARGE');
  t.regex(e5!.message, /at most \d+/);

  // Clashing special tokens.
  const clash = async (options: TrainTokenizerOptions, re: RegExp) => {
    const e = await t.throwsAsync(trainTokenizer(file, out, { vocabSize: 1000, ...options }), { instanceOf: LepError });
    t.is(e!.code, 'LEP_TOKEN_CLASH');
    t.regex(e!.message, re);
  };
  await clash({ userDefinedSymbols: ['</s>'] }, /"<\/s>" \(--user-defined-symbol\) is already a special token[\s\S]*HINT/);
  await clash({ userDefinedSymbols: ['<|eot_id|>'], like: LLAMA3_FIXTURE }, /already a special token of .*llama3-8k/);
  await clash({ userDefinedSymbols: ['<0x41>'] }, /byte-fallback piece[\s\S]*--no-byte-fallback/);
  await clash({ userDefinedSymbols: ['<a>', '<a>'] }, /given twice/);
  await clash({ userDefinedSymbols: ['a,b'] }, /comma/);

  const e6 = await t.throwsAsync(trainTokenizer(file, out, { type: 'wordpiece' as never }), { instanceOf: LepError });
  t.regex(e6!.message, /^Expected "bpe" or "unigram" for type \(--type\) but received "wordpiece"\nHINT: type \(--type\): SentencePiece model/);
  const noTokenizer = join(dir, 'no-tokenizer');
  mkdirSync(noTokenizer);
  const e7 = await t.throwsAsync(trainTokenizer(file, out, { like: noTokenizer }), { instanceOf: LepError });
  t.regex(e7!.message, /like \(--like\): .* has no tokenizer\.json/);
});
