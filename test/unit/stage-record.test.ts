// The stage record (ts/stage/stageRecord.ts): written last and atomically, read back validated, with
// errors that name the file and say what to do; its JSON Schema is the committed
// docs/stage-record.schema.json, and an independent validator (Ajv) accepts what lep writes. lep tokenizer
// extend and shrink (no native addon needed) write theirs with every option of their specs resolved.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Ajv } from 'ajv';
import test from 'ava';

import { LepError, type ErrorCode } from '../../ts/errors.js';
import { STAGE_RECORD_SCHEMA_FILE, stageRecordSchemaText } from '../../ts/options/generated.js';
import { lepVersion } from '../../ts/runtime.js';
import { READ_TEXTS_SPEC } from '../../ts/corpus/readTextsOptions.js';
import { withDefaults } from '../../ts/options/optionSpec.js';
import { dirFingerprint, filesFingerprint } from '../../ts/stage/inputFingerprint.js';
import { EXTEND_SPEC } from '../../ts/tokenizer/extendOptions.js';
import { extendTokenizerDir } from '../../ts/tokenizer/extendTokenizerDir.js';
import { SHRINK_DIR_SPEC } from '../../ts/tokenizer/shrinkOptions.js';
import { shrinkTokenizerDir } from '../../ts/tokenizer/shrinkTokenizerDir.js';
import {
  beginStage,
  corpusInputs,
  inputUnchanged,
  readStageRecord,
  STAGE_RECORD_FILE,
  stageInput,
  tokenizerInput,
  writeStageRecord,
  type RecordedStage,
} from '../../ts/stage/stageRecord.js';
import { writeDirAtomicSync } from '../../ts/util/writeDirAtomic.js';
import { tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const LLAMA3_DIR = join(ROOT, 'test', 'fixtures', 'llama3-8k');

function inputDir(): string {
  const d = tempDir();
  writeFileSync(join(d, 'config.json'), '{"vocab_size": 8}\n');
  writeFileSync(join(d, 'model.safetensors'), Buffer.alloc(3 << 20, 7));
  return d;
}

test('a record is written with its fields, read back, and validates against the committed JSON Schema', (t) => {
  const model = inputDir();
  const out = tempDir();
  const start = beginStage('init');
  const signal = new AbortController().signal;
  const written = writeStageRecord(out, start, {
    inputs: [stageInput('model', model)],
    resolved: { rule: 'mean', seed: 0, rows: Int32Array.from([3, 4]), signal, onProgress: () => {}, unset: undefined },
    result: { newSize: 12 },
  });
  const read = readStageRecord(out, 'init');
  t.deepEqual(read, written);
  t.is(read.schema, 'lep.stage-record');
  t.is(read.version, 1);
  t.is(read.stage, 'init');
  t.is(read.lepVersion, lepVersion());
  t.is(read.startedAt, start.startedAt.toISOString());
  t.true(read.seconds >= 0);
  // What is not data (the signal, callbacks, undefined) is left out; typed arrays are arrays.
  t.deepEqual(read.resolved, { rule: 'mean', seed: 0, rows: [3, 4] });
  t.deepEqual(read.result, { newSize: 12 });
  t.deepEqual(read.inputs, [{ role: 'model', path: model, fingerprint: dirFingerprint(model) }]);
  t.regex(read.inputs[0]!.fingerprint, /^2 files, \d+ bytes, sha256 [0-9a-f]{16}$/);
  t.deepEqual(readdirSync(out), [STAGE_RECORD_FILE], 'no temporary file left');

  t.is(readFileSync(join(ROOT, STAGE_RECORD_SCHEMA_FILE), 'utf8'), stageRecordSchemaText(), 'docs/stage-record.schema.json is current (node dist/scripts/write-generated.js)');
  const ajv = new Ajv({ allErrors: true, strict: true });
  const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, STAGE_RECORD_SCHEMA_FILE), 'utf8')) as object);
  t.true(validate(JSON.parse(readFileSync(join(out, STAGE_RECORD_FILE), 'utf8'))), ajv.errorsText(validate.errors));
  t.false(validate({ ...read, stage: 'bake' }));
});

test('an input fingerprint ignores where the input lies and the stage record in it, and changes with its content', (t) => {
  const a = inputDir();
  const b = join(tempDir(), 'moved');
  cpSync(a, b, { recursive: true });
  t.is(stageInput('model', a).fingerprint, stageInput('model', b).fingerprint);
  writeStageRecord(b, beginStage('train'), { inputs: [], resolved: {}, result: null });
  t.is(stageInput('model', b).fingerprint, stageInput('model', a).fingerprint, "the model's own record does not count");
  writeFileSync(join(b, 'config.json'), '{"vocab_size": 9}\n');
  t.not(stageInput('model', b).fingerprint, stageInput('model', a).fingerprint);
  t.regex(stageInput('data', join(a, 'config.json')).fingerprint, /^\d+ bytes, sha256 [0-9a-f]{16}$/);
});

test('tags travel into the record unchanged, and inputUnchanged tells a changed input from a copied or touched one', async (t) => {
  const model = inputDir();
  const corpus = tempDir();
  writeFileSync(join(corpus, 'a.txt'), 'один\n');
  writeFileSync(join(corpus, 'b.txt'), 'два\n');
  const tok = tempDir();
  writeFileSync(join(tok, 'tokenizer.json'), '{"model": {}}');
  writeFileSync(join(tok, 'weights.bin'), 'not read');
  const out = tempDir();
  const inputs = [stageInput('model', model), stageInput('config', join(model, 'config.json')), ...(await corpusInputs('corpus', [corpus, join(corpus, '*.txt')])), tokenizerInput('tokenizer', tok)];
  const tags = { adapt: { stage: 'init', options: { init: { rule: 'mean' } } }, job: 42 };
  writeStageRecord(out, beginStage('init'), { inputs, resolved: {}, result: null, tags });
  const read = readStageRecord(out, 'init');
  t.deepEqual(read.tags, tags);
  t.false('tags' in writeStageRecord(tempDir(), beginStage('init'), { inputs: [], resolved: {}, result: null }), 'no tags, no field');
  for (const input of read.inputs) t.true(await inputUnchanged(input), `${input.role} ${input.path}`);
  // Touched (same bytes, new time) or holding a new stage record: unchanged. A file outside a tokenizer's files: unchanged.
  writeFileSync(join(model, 'model.safetensors'), readFileSync(join(model, 'model.safetensors')));
  writeStageRecord(model, beginStage('train'), { inputs: [], resolved: {}, result: null });
  writeFileSync(join(tok, 'weights.bin'), 'changed, but not a tokenizer file');
  for (const input of read.inputs) t.true(await inputUnchanged(input), `${input.role} after touching`);
  // Changed content: changed; gone: changed.
  const changed = async () => (await Promise.all(read.inputs.map(async (i) => [i.role, await inputUnchanged(i)] as const))).filter(([, same]) => !same).map(([role]) => role);
  const big = readFileSync(join(model, 'model.safetensors'));
  big.writeUInt8(8, big.length - 1);
  writeFileSync(join(model, 'model.safetensors'), big);
  t.deepEqual(await changed(), ['model']);
  writeFileSync(join(corpus, 'c.txt'), 'три\n');
  t.deepEqual(await changed(), ['model', 'corpus', 'corpus'], 'a file more in the corpus folder and glob');
  writeFileSync(join(model, 'config.json'), '{"vocab_size": 9}\n');
  writeFileSync(join(tok, 'tokenizer.json'), '{"model": {"x": 1}}');
  t.deepEqual(await changed(), ['model', 'config', 'corpus', 'corpus', 'tokenizer']);
  t.false(await inputUnchanged({ role: 'gone', path: join(tempDir(), 'nothing'), fingerprint: read.inputs[0]!.fingerprint }));
});

test('an invalid record is refused before anything is written, and the previous record stays whole', (t) => {
  const out = tempDir();
  const first = writeStageRecord(out, beginStage('train'), { inputs: [], resolved: { lr: 1e-3 }, result: { stepsDone: 3 } });
  const e = t.throws(() => writeStageRecord(out, beginStage('nope' as RecordedStage), { inputs: [], resolved: {}, result: 1 }), { instanceOf: LepError });
  t.is(e.code, 'LEP_INTERNAL');
  t.regex(e.message, /\/stage/);
  t.deepEqual(readStageRecord(out), first);
  t.deepEqual(readdirSync(out), [STAGE_RECORD_FILE], 'no temporary file left');
});

function writeRaw(text: string): string {
  const dir = tempDir();
  writeFileSync(join(dir, STAGE_RECORD_FILE), text);
  return dir;
}

test('readStageRecord: a missing, corrupt, foreign, invalid, newer or other-stage record is a LepError naming the file', (t) => {
  const good = tempDir();
  const record = writeStageRecord(good, beginStage('propagate'), { inputs: [], resolved: { method: 'conversion' }, result: {} });
  const file = (dir: string) => join(dir, STAGE_RECORD_FILE);
  const cases: { dir: string; code: ErrorCode; message: RegExp; expect?: RecordedStage }[] = [
    { dir: tempDir(), code: 'LEP_NO_STAGE_RECORD', message: /no stage record of the init stage\nHINT: the stage that writes this output did not finish/, expect: 'init' },
    { dir: writeRaw('{"schema": "lep.stage-rec'), code: 'LEP_BAD_STAGE_RECORD', message: /not valid JSON.*\nHINT: run the stage again/ },
    { dir: writeRaw('{"stage": "init", "options": {}}'), code: 'LEP_BAD_STAGE_RECORD', message: /not a lep stage record \(its "schema" is undefined/ },
    { dir: writeRaw('[1, 2]'), code: 'LEP_BAD_STAGE_RECORD', message: /not a lep stage record/ },
    { dir: writeRaw(JSON.stringify({ ...record, seconds: -1 })), code: 'LEP_BAD_STAGE_RECORD', message: /invalid at \/seconds/ },
    { dir: writeRaw(JSON.stringify({ ...record, inputs: [{ role: 'model' }] })), code: 'LEP_BAD_STAGE_RECORD', message: /invalid at \/inputs\/0/ },
    { dir: writeRaw(JSON.stringify({ ...record, version: 2, lepVersion: '9.0.0', newField: 1 })), code: 'LEP_STAGE_RECORD_VERSION', message: /version 2, written by a newer lep \(9\.0\.0\).*reads version 1\nHINT: upgrade lep/ },
    { dir: good, code: 'LEP_BAD_STAGE_RECORD', message: /record of the propagate stage, not of train\nHINT: give the output directory of the train stage/, expect: 'train' },
  ];
  for (const c of cases) {
    const e = t.throws(() => readStageRecord(c.dir, c.expect), { instanceOf: LepError }, c.code);
    t.is(e.code, c.code, e.message);
    t.true(e.message.startsWith(`${file(c.dir)}: `), e.message);
    t.regex(e.message, c.message);
    t.regex(e.message, /\nHINT: /);
  }
  // A record file can be named directly (lep eval writes FILE.lep-stage).
  t.deepEqual(readStageRecord(file(good), 'propagate'), record);
});

test('a folder holding only a stage record is lep output, which a stage may replace as a whole', (t) => {
  const out = join(tempDir(), 'out');
  mkdirSync(out);
  writeStageRecord(out, beginStage('eval'), { inputs: [], resolved: {}, result: {} });
  writeDirAtomicSync(out, '--out', (tmp) => writeFileSync(join(tmp, 'x.json'), '{}'));
  t.deepEqual(readdirSync(out), ['x.json']);
  t.false(existsSync(join(out, STAGE_RECORD_FILE)));
});

/** The fingerprint of a tokenizer directory's tokenizer files (what extend and shrink read of it). */
const tokenizerFingerprint = (dir: string) => filesFingerprint([join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json')]);

function validatesAgainstCommittedSchema(t: import('ava').ExecutionContext, dir: string): void {
  const ajv = new Ajv({ allErrors: true, strict: true });
  const validate = ajv.compile(JSON.parse(readFileSync(join(ROOT, STAGE_RECORD_SCHEMA_FILE), 'utf8')) as object);
  t.true(validate(JSON.parse(readFileSync(join(dir, STAGE_RECORD_FILE), 'utf8'))), ajv.errorsText(validate.errors));
}

test('lep tokenizer shrink and extend write their records: the stage, the tokenizers and corpus read with fingerprints, every option resolved', async (t) => {
  const work = tempDir();
  const corpus = join(work, 'en.txt');
  const line = 'The quick brown fox jumps over the lazy dog; the harbour was quiet except for the gulls above the boats.\n';
  writeFileSync(corpus, line.repeat(40) + 'Version 2.4.1 was released on March 15, 2024, with 37 bug fixes.\n');

  // Shrink by frequency on the corpus.
  const shrunk = join(work, 'shrunk');
  const s = await shrinkTokenizerDir(LLAMA3_DIR, shrunk, { keep: 2000, corpus, read: { maxChars: 100_000 } });
  const sr = readStageRecord(shrunk, 'shrink');
  t.deepEqual(sr.inputs, [
    { role: 'original', path: LLAMA3_DIR, fingerprint: tokenizerFingerprint(LLAMA3_DIR) },
    { role: 'corpus', path: corpus, fingerprint: filesFingerprint([corpus]) },
  ]);
  t.deepEqual(Object.keys(sr.resolved).sort(), [...Object.keys(SHRINK_DIR_SPEC), 'read', 'extend'].sort(), 'every option of SHRINK_DIR_SPEC, the reader\'s and the extend step\'s');
  t.like(sr.resolved, { keep: 2000, rule: 'frequency', batchSize: 256, corpus, donorDir: null, extend: null });
  t.deepEqual(sr.resolved.read, { ...withDefaults(READ_TEXTS_SPEC, {}), maxChars: 100_000 });
  t.deepEqual(sr.result, JSON.parse(JSON.stringify({ shrink: s.shrink, extend: null, size: s.size })));
  validatesAgainstCommittedSchema(t, shrunk);

  // Extend the shrunk tokenizer with the full one as donor: the original's fingerprint is the shrunk tokenizer's own files.
  const extended = join(work, 'extended');
  const e = extendTokenizerDir(shrunk, LLAMA3_DIR, extended, { padToMultipleOf: 64 });
  const er = readStageRecord(extended, 'extend');
  t.deepEqual(er.inputs, [
    { role: 'original', path: shrunk, fingerprint: tokenizerFingerprint(shrunk) },
    { role: 'donor', path: LLAMA3_DIR, fingerprint: tokenizerFingerprint(LLAMA3_DIR) },
  ]);
  t.not(er.inputs[0]!.fingerprint, er.inputs[1]!.fingerprint);
  t.deepEqual(er.resolved, { mergeOrder: 'keep-ascii', ignoreMerges: true, maxNewTokens: null, padToMultipleOf: 64, reservedToken: '<|reserved_{k}|>', maxSize: null });
  t.deepEqual(Object.keys(er.resolved).sort(), Object.keys(EXTEND_SPEC).sort(), 'every option of EXTEND_SPEC');
  t.deepEqual(er.result, JSON.parse(JSON.stringify({ stats: e.stats })));
  t.true(e.stats.newTokens > 0);
  validatesAgainstCommittedSchema(t, extended);

  // Optimized (shrink by first ids, then extend with a donor): the donor is an input, the extend step's options are resolved; no corpus read.
  const optimized = join(work, 'optimized');
  const o = await shrinkTokenizerDir(LLAMA3_DIR, optimized, { keep: 1000, rule: 'first-ids', donorDir: extended, extend: { mergeOrder: 'original-first', maxNewTokens: 500 } });
  const or = readStageRecord(optimized, 'shrink');
  t.deepEqual(or.inputs.map((i) => [i.role, i.path]), [['original', LLAMA3_DIR], ['donor', extended]]);
  t.is(or.inputs[1]!.fingerprint, tokenizerFingerprint(extended));
  t.like(or.resolved, { keep: 1000, rule: 'first-ids', corpus: null, donorDir: extended });
  // ignoreMerges under original-first is the original's own (the LLaMa-3 fixture's: true).
  t.deepEqual(or.resolved.extend, { mergeOrder: 'original-first', ignoreMerges: true, maxNewTokens: 500, padToMultipleOf: 1, reservedToken: '<|reserved_{k}|>', maxSize: null });
  t.deepEqual(or.result, JSON.parse(JSON.stringify({ shrink: o.shrink, extend: o.extend, size: o.size })));
  // Each output was built aside and renamed into place with its record: nothing temporary is left.
  t.deepEqual(readdirSync(work).sort(), ['en.txt', 'extended', 'optimized', 'shrunk']);
});
