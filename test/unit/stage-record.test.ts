// The stage record (ts/stage/stageRecord.ts): written last and atomically, read back validated, with
// errors that name the file and say what to do; its JSON Schema is the committed
// docs/stage-record.schema.json, and an independent validator (Ajv) accepts what lep writes.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Ajv } from 'ajv';
import test from 'ava';

import { LepError, type ErrorCode } from '../../ts/errors.js';
import { STAGE_RECORD_SCHEMA_FILE, stageRecordSchemaText } from '../../ts/options/generated.js';
import { lepVersion } from '../../ts/runtime.js';
import { dirFingerprint } from '../../ts/stage/inputFingerprint.js';
import {
  beginStage,
  readStageRecord,
  STAGE_RECORD_FILE,
  stageInput,
  writeStageRecord,
  type RecordedStage,
} from '../../ts/stage/stageRecord.js';
import { writeDirAtomicSync } from '../../ts/util/writeDirAtomic.js';
import { tempDir } from '../helpers.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

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
