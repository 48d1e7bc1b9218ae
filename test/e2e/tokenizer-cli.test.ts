// `lep tokenizer extend | shrink | stats | compare` through the built CLI, on Mistral's real tokenizer and
// the byte-level LLaMa-3 fixture, with Russian text from Debian's fortunes-ru (fetched here, 0.7 MB, cached
// in .cache/test-corpora). Outputs are loaded in Hugging Face `tokenizers` directly and checked id by id.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

import test from 'ava';
import { Tokenizer as HfTokenizer } from 'tokenizers';

import { fetchCorpora } from '../../ts/corpus/fetchDebian.js';
import { mistralTokenizerDir } from '../../ts/index.js';
import { LEP_CLI as LEP, tempDir } from '../helpers.js';

const run = promisify(execFile);
const ROOT = process.cwd();
const MISTRAL = mistralTokenizerDir();
const LLAMA3 = join(ROOT, 'test/fixtures/llama3-8k');
const OUT = tempDir('lep-tok-cli-');

type Json = Record<string, unknown>;

async function lep(...args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [LEP, ...args], { maxBuffer: 1 << 26 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const x = e as { stdout: string; stderr: string; code: number };
    return { stdout: x.stdout, stderr: x.stderr, code: x.code };
  }
}

const readJson = (p: string): Json => JSON.parse(readFileSync(p, 'utf8')) as Json;
const hfVocab = (dir: string): Record<string, number> => HfTokenizer.fromFile(join(dir, 'tokenizer.json')).getVocab(true);

let corpus: { train: string; heldout: string };
test.before(async () => {
  const r = await fetchCorpora({ cacheDir: join(ROOT, '.cache/test-corpora/fortunes-ru'), sources: ['fortunes-ru'] });
  corpus = { train: r.files['ru.txt']!, heldout: r.files['heldout/ru.txt']! };
});

test.serial('extend: byte-level original + SentencePiece donor, and the reverse; ids kept, HF loads the output', async (t) => {
  const out = join(OUT, 'llama3-ext');
  let r = await lep('tokenizer', 'extend', LLAMA3, MISTRAL, '--out', out, '--pad-to-multiple-of', '64');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^wrote .*: \d+ tokens = 8005 original \+ \d+ new \+ \d+ reserved; /);
  const orig = hfVocab(LLAMA3);
  const ext = hfVocab(out);
  for (const [tok, id] of Object.entries(orig)) if (ext[tok] !== id) return t.fail(`${tok}: ${id} -> ${ext[tok]}`);
  const size = HfTokenizer.fromFile(join(out, 'tokenizer.json')).getVocabSize(true);
  t.is(size % 64, 0);
  t.true(size > 20000);
  t.is(readJson(join(out, 'tokenizer_config.json')).chat_template, readJson(join(LLAMA3, 'tokenizer_config.json')).chat_template);
  const runFile = readJson(join(out, 'lep_tokenizer_run.json'));
  t.is(runFile.operation, 'extend');
  t.is((runFile.options as Json).mergeOrder, 'keep-ascii');
  t.is((runFile.stats as Json).size, size);

  const back = join(OUT, 'mistral-ext');
  r = await lep('tokenizer', 'extend', MISTRAL, LLAMA3, '--out', back, '--merge-order', 'original-first');
  t.is(r.code, 0, r.stderr);
  const m = hfVocab(MISTRAL);
  const e = hfVocab(back);
  t.true(Object.entries(m).every(([tok, id]) => e[tok] === id), 'every Mistral id kept');
  t.true(Object.keys(e).length > 32000);
});

test.serial('shrink + extend (Optimized): exact size, id map correct, loads in HF', async (t) => {
  const out = join(OUT, 'llama3-opt');
  const r = await lep('tokenizer', 'shrink', LLAMA3, '--corpus', corpus.train, '--max-lines', '3000', '--keep', '4000', '--donor', MISTRAL, '--max-new-tokens', '3000', '--out', out);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /kept 4000 of 8000 base tokens \(rule frequency, \d+ pulled in by closure\) \+ 5 added tokens = 4005; extended by 3000 new tokens to 7005/);
  const idMap = readJson(join(out, 'id_map.json')) as { new_to_old: number[]; old_to_new: Record<string, number>; new_size: number };
  t.is(idMap.new_size, 4005);
  const orig = HfTokenizer.fromFile(join(LLAMA3, 'tokenizer.json'));
  const opt = HfTokenizer.fromFile(join(out, 'tokenizer.json'));
  t.is(opt.getVocabSize(true), 7005);
  idMap.new_to_old.forEach((oldId, newId) => {
    if (opt.idToToken(newId) !== orig.idToToken(oldId)) t.fail(`new ${newId} is ${opt.idToToken(newId)}, old ${oldId} is ${orig.idToToken(oldId)}`);
  });
  t.is(opt.tokenToId('<|eot_id|>'), 4004);
  t.is(readJson(join(out, 'lep_tokenizer_run.json')).operation, 'shrink+extend');

  // first-ids needs no corpus; then the result is the 4000 lowest ids when those are closed (the fixture's are).
  const firstIds = join(OUT, 'llama3-first');
  const f = await lep('tokenizer', 'shrink', LLAMA3, '--rule', 'first-ids', '--keep', '4000', '--out', firstIds);
  t.is(f.code, 0, f.stderr);
  t.deepEqual((readJson(join(firstIds, 'id_map.json')).new_to_old as number[]).slice(0, 4000), [...Array(4000).keys()]);

  // The extend step's padding flags, as lep tokenizer extend has them.
  const padded = join(OUT, 'llama3-first-padded');
  const p = await lep('tokenizer', 'shrink', LLAMA3, '--rule', 'first-ids', '--keep', '4000', '--donor', MISTRAL, '--max-new-tokens', '100', '--pad-to-multiple-of', '64', '--reserved-token', '<|pad_{k}|>', '--out', padded);
  t.is(p.code, 0, p.stderr);
  const hf = HfTokenizer.fromFile(join(padded, 'tokenizer.json'));
  t.is(hf.getVocabSize(true) % 64, 0);
  t.is(typeof hf.tokenToId('<|pad_0|>'), 'number');
});

test.serial('stats: a table and --json; compare: overlap, changed share, symbols/token of each', async (t) => {
  const ext = join(OUT, 'llama3-ext');
  let r = await lep('tokenizer', 'stats', MISTRAL, LLAMA3, ext, '--corpus', corpus.heldout, '--max-lines', '400', '--json');
  t.is(r.code, 0, r.stderr);
  const stats = JSON.parse(r.stdout) as { tokenizers: { dir: string; kind: string; symbolsPerToken: number; texts: number; byteFallbackRate: number }[] };
  const [m, l, e] = stats.tokenizers;
  t.is(m!.kind, 'BPE sentencepiece');
  t.is(l!.kind, 'BPE byte-level');
  t.is(m!.texts, 400);
  t.true(m!.symbolsPerToken > 1.9 && m!.symbolsPerToken < 3, `Mistral ${m!.symbolsPerToken}`);
  t.true(e!.symbolsPerToken > 1.5 * l!.symbolsPerToken, `fixture ${l!.symbolsPerToken} -> extended ${e!.symbolsPerToken}`);
  t.true(e!.byteFallbackRate < l!.byteFallbackRate);
  t.log(`Russian fortunes, 400 lines: symbols/token Mistral ${m!.symbolsPerToken.toFixed(3)}, llama3-8k ${l!.symbolsPerToken.toFixed(3)}, llama3-8k + Mistral ${e!.symbolsPerToken.toFixed(3)}`);

  r = await lep('tokenizer', 'stats', MISTRAL, '--corpus', corpus.heldout, '--max-lines', '50');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^corpus: 50 texts, \d+ characters/);
  t.regex(r.stdout, /\| tokenizer \| kind \| size \| symbols\/token \|.*\n\|---/);
  t.regex(r.stdout, /\| BPE sentencepiece \| 32000 \| \d\.\d{3} \|/);

  r = await lep('tokenizer', 'compare', LLAMA3, ext, '--corpus', corpus.heldout, '--max-lines', '400', '--json');
  t.is(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout) as { overlap: { aInB: number; shared: number }; changedShare: number; texts: number; a: { symbolsPerToken: number }; b: { symbolsPerToken: number } };
  t.is(c.overlap.aInB, 1);
  t.is(c.overlap.shared, 8000);
  t.is(c.texts, 400);
  t.true(c.changedShare > 0.9, `changed share ${c.changedShare}`);
  t.is(c.a.symbolsPerToken, l!.symbolsPerToken);
  r = await lep('tokenizer', 'compare', MISTRAL, MISTRAL, '--corpus', corpus.heldout, '--max-lines', '50');
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /Jaccard 1\.0000/);
  t.regex(r.stdout, /segmentation changed 0 of 50 texts \(0\.00%\)/);
});

test('bad input: each a clear error naming the cause', async (t) => {
  const dir = tempDir('lep-tok-bad-');
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, '\n   \n\n');
  let r = await lep('tokenizer', 'stats', MISTRAL, '--corpus', empty);
  t.is(r.code, 1);
  t.regex(r.stderr, /corpus ".*empty.txt" \(1 file\) yielded no text\nHINT: /);
  t.regex(r.stderr, /\(code LEP_CORPUS_EMPTY\)/);
  r = await lep('tokenizer', 'shrink', LLAMA3, '--corpus', empty, '--keep', '4000', '--out', join(dir, 'o'));
  t.regex(r.stderr, /\(code LEP_CORPUS_EMPTY\)/);

  const koi8 = join(dir, 'koi8.txt');
  writeFileSync(koi8, Buffer.from([0x70, 0x72, 0x69, 0x0a, 0xf0, 0xd2, 0xc9, 0xd7, 0xc5, 0xd4, 0x0a])); // "pri\nПривет" in KOI8-R
  r = await lep('tokenizer', 'compare', MISTRAL, LLAMA3, '--corpus', koi8);
  t.is(r.code, 1);
  t.regex(r.stderr, /koi8.txt:2: invalid UTF-8 .*\nHINT: convert the file to UTF-8/);

  const wp = join(dir, 'wordpiece');
  mkdirSync(wp);
  writeFileSync(
    join(wp, 'tokenizer.json'),
    JSON.stringify({
      version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
      pre_tokenizer: { type: 'Whitespace' }, post_processor: null, decoder: null,
      model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: { '[UNK]': 0, a: 1, '##b': 2 } },
    }),
  );
  r = await lep('tokenizer', 'stats', wp, '--corpus', corpus.heldout, '--max-lines', '5');
  t.is(r.code, 1);
  t.regex(r.stderr, /wordpiece\/tokenizer.json has model type WordPiece; lep reads only BPE and Unigram tokenizers\nHINT: /);
  r = await lep('tokenizer', 'extend', wp, MISTRAL, '--out', join(dir, 'o'));
  t.regex(r.stderr, /extend: the original tokenizer.json has model type WordPiece; lep can extend only BPE vocabularies/);

  r = await lep('tokenizer', 'extend', MISTRAL, LLAMA3, '--out', join(dir, 'o'), '--max-size', '32100');
  t.is(r.code, 1);
  t.regex(r.stderr, /extend: the extended vocabulary would have \d+ tokens \(32000 original \+ \d+ new\), more than maxSize \(--max-size\) 32100\nHINT: set maxNewTokens \(--max-new-tokens\) to at most 100/);
  t.regex(r.stderr, /\(code LEP_VOCAB_TOO_LARGE\)/);
  t.false(existsSync(join(dir, 'o')), 'nothing written on error');

  // A donor whose </s> is not special clashes with Mistral's special </s>.
  const clash = join(dir, 'clash');
  mkdirSync(clash);
  const donor = readJson(join(MISTRAL, 'tokenizer.json'));
  donor.added_tokens = (donor.added_tokens as Json[]).map((a) => (a.content === '</s>' ? { ...a, special: false } : a));
  writeFileSync(join(clash, 'tokenizer.json'), JSON.stringify(donor));
  r = await lep('tokenizer', 'extend', MISTRAL, clash, '--out', join(dir, 'o'));
  t.regex(r.stderr, /the donor's added token "<\/s>" is not special but the original's \(id 2\) is special\nHINT: /);
  t.regex(r.stderr, /\(code LEP_SPECIAL_TOKEN_CLASH\)/);

  r = await lep('tokenizer', 'shrink', LLAMA3, '--keep', '4000', '--out', join(dir, 'o'));
  t.regex(r.stderr, /Expected a target-language corpus when rule is "frequency" for corpus \(--corpus\)/);
  r = await lep('tokenizer', 'shrink', LLAMA3, '--rule', 'first-ids', '--keep', '4000', '--max-new-tokens', '5', '--out', join(dir, 'o'));
  t.regex(r.stderr, /for donor \(--donor\)/);
  r = await lep('tokenizer', 'shrink', LLAMA3, '--rule', 'first-ids', '--keep', '100', '--out', join(dir, 'o'));
  t.regex(r.stderr, /Expected an integer from 256 \(the base alphabet\) to 8000 .* for keep \(--keep\) but received 100/);
  r = await lep('tokenizer', 'stats', MISTRAL);
  t.regex(r.stderr, /missing --corpus/);
  r = await lep('tokenizer', 'extend', MISTRAL, LLAMA3, '--out', join(dir, 'o'), '--merge-order', 'paper');
  t.regex(r.stderr, /Expected "keep-ascii" or "new-first" or "original-first" for mergeOrder \(--merge-order\) but received "paper"/);
});
