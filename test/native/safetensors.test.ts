import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import test from 'ava';

import { inspectSafetensors, readSafetensors, writeSafetensors, type TensorData } from '../../ts/checkpoint/index.js';
import { tempDir } from '../helpers.js';

const dir = tempDir();

function bytesOf(arr: ArrayBufferView): Uint8Array {
  return new Uint8Array(arr.buffer.slice(arr.byteOffset, arr.byteOffset + arr.byteLength));
}

/** Builds a safetensors file by hand: 8-byte length, header text, data. */
function rawFile(name: string, header: string | object, data: Uint8Array = new Uint8Array(0), lengthOverride?: bigint): string {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(h.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, h, data]));
  return path;
}

test('round trip: every dtype, shapes incl. scalar and empty', (t) => {
  const tensors: TensorData[] = [
    { name: 'f32', dtype: 'F32', shape: [2, 3], data: bytesOf(new Float32Array([1, -2, 3.5, 1e-30, 7, 8])) },
    { name: 'f16', dtype: 'F16', shape: [4], data: bytesOf(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001])) },
    { name: 'bf16', dtype: 'BF16', shape: [2, 2], data: bytesOf(new Uint16Array([0x3f80, 0xbf80, 0x4049, 0x0000])) },
    { name: 'i64', dtype: 'I64', shape: [3], data: bytesOf(new BigInt64Array([1n, -9007199254740993n, 42n])) },
    { name: 'i32', dtype: 'I32', shape: [1, 1, 2], data: bytesOf(new Int32Array([5, -6])) },
    { name: 'u8', dtype: 'U8', shape: [3], data: new Uint8Array([0, 128, 255]) },
    { name: 'scalar', dtype: 'F64', shape: [], data: bytesOf(new Float64Array([Math.PI])) },
    { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array(0) },
  ];
  const path = join(dir, 'all.safetensors');
  writeSafetensors(path, tensors, { format: 'pt', note: 'lep test' });
  const back = readSafetensors(path);
  t.deepEqual(
    back.map((x) => [x.name, x.dtype, x.shape, Buffer.from(x.data).toString('hex')]),
    tensors.map((x) => [x.name, x.dtype, x.shape, Buffer.from(x.data).toString('hex')]),
  );
  t.deepEqual(inspectSafetensors(path).metadata, { format: 'pt', note: 'lep test' });
});

test('writer rejects data whose size does not match dtype x shape', (t) => {
  const e = t.throws(() =>
    writeSafetensors(join(dir, 'bad.safetensors'), [{ name: 'x', dtype: 'F32', shape: [3], data: new Uint8Array(8) }]),
  );
  t.regex(e!.message, /'x' has 8 bytes but F32 x shape needs 12/);
  t.is((e as { code?: string }).code, 'LEP_SHAPE_MISMATCH');
});

test('writer rejects shapes whose byte count overflows or whose dimensions are not integers', (t) => {
  for (const shape of [[2 ** 52, 2 ** 12], [-1], [1.5]]) {
    const e = t.throws(() => writeSafetensors(join(dir, 'bad.safetensors'), [{ name: 'x', dtype: 'F32', shape, data: new Uint8Array(0) }]));
    t.is((e as { code?: string }).code, 'LEP_SHAPE_MISMATCH');
    t.regex(e!.message, /tensor 'x' has a shape whose dimensions are not non-negative integers or whose byte count overflows 64 bits/);
  }
});

const f32x2 = bytesOf(new Float32Array([1, 2]));
const malformed: [string, () => string, RegExp][] = [
  ['truncated below 8 bytes', () => { const p = join(dir, 'short.safetensors'); writeFileSync(p, Buffer.from([1, 2, 3])); return p; }, /shorter than the 8-byte header length/],
  ['header length beyond the file', () => rawFile('hlen.safetensors', '{}', new Uint8Array(0), 1000n), /header length 1000 runs past the end of the file/],
  ['header not JSON', () => rawFile('nojson.safetensors', '{"a": [1, 2'), /header is not JSON/],
  ['header not an object', () => rawFile('array.safetensors', '[1, 2]'), /header is JSON but not an object/],
  ['offsets out of range (truncated data)', () => rawFile('range.safetensors', { x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(4)), /outside the data section .* truncated/],
  ['overlapping tensors', () => rawFile('overlap.safetensors', { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(12)), /'a' and 'b' overlap/],
  ['byte count not matching dtype x shape', () => rawFile('count.safetensors', { x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32x2), /has 8 bytes but dtype F32 x shape \[3\] needs 12/],
  ['unknown dtype', () => rawFile('dtype.safetensors', { x: { dtype: 'F8_E9', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)), /unknown dtype 'F8_E9'/],
  ['duplicate tensor names', () => rawFile('dup.safetensors', '{"x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "x": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}', f32x2), /names the same tensor more than once/],
  ['negative dimension', () => rawFile('neg.safetensors', { x: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32x2), /negative or non-integer dimension/],
  // 2^62 x 4 elements x 4 bytes = 2^66 wraps modulo 2^64 onto 0 bytes: the safetensors library's ValidationOverflow.
  ['element count x dtype size wrapping to the real byte count', () => rawFile('wrap.safetensors', '{"x": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 0]}}'), /shape \[4611686018427387904, 4\] and dtype F32 needs 73786976294838206464 bytes, which overflows a 64-bit size/],
  ['element count overflowing on its own', () => rawFile('wrap2.safetensors', { x: { dtype: 'U8', shape: [4294967296, 4294967296, 2], data_offsets: [0, 0] } }), /needs 36893488147419103232 bytes, which overflows/],
  ['a dimension beyond int64', () => rawFile('dim.safetensors', '{"x": {"dtype": "U8", "shape": [0, 9223372036854775808], "data_offsets": [0, 0]}}'), /has dimension 9223372036854775808, beyond the largest a tensor can have/],
  ['a gap between tensors', () => rawFile('gap.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, new Uint8Array(12)), /gap in the data section: bytes \[4, 8\) before tensor 'b'/],
  ['bytes after the last tensor', () => rawFile('tail.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(12)), /the tensors cover 4 bytes of the 12-byte data section/],
  ['missing data_offsets', () => rawFile('nooff.safetensors', { x: { dtype: 'F32', shape: [2] } }, f32x2), /lacks dtype, shape or data_offsets/],
];

for (const [what, make, message] of malformed) {
  test(`malformed file is rejected with a clear message: ${what}`, (t) => {
    const path = make();
    for (const call of [() => inspectSafetensors(path), () => readSafetensors(path)]) {
      const e = t.throws(call);
      t.regex(e!.message, message);
      t.regex(e!.message, /not a valid safetensors file/);
      t.is((e as { code?: string }).code, 'LEP_BAD_SAFETENSORS');
    }
  });
}

test('missing file names the path', (t) => {
  const e = t.throws(() => inspectSafetensors(join(dir, 'nope.safetensors')));
  t.regex(e!.message, /cannot open .*nope\.safetensors/);
  t.is((e as { code?: string }).code, 'LEP_FILE_NOT_FOUND');
});

test('a rejected write leaves the previous file intact', (t) => {
  const path = join(dir, 'keep.safetensors');
  writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [2], data: f32x2 }]);
  t.throws(() => writeSafetensors(path, [{ name: 'a', dtype: 'F32', shape: [5], data: f32x2 }]));
  t.deepEqual(readSafetensors(path).map((x) => x.shape), [[2]]);
});

test('a header naming 40,000 tensors is checked in one pass (duplicate check by hash)', (t) => {
  // 37 s with the old per-key scan; the duplicate must still be found when it is the very last key.
  const n = 40_000;
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(`"t${i}": {"dtype": "U8", "shape": [1], "data_offsets": [${i}, ${i + 1}]}`);
  const ok = rawFile('many.safetensors', `{${parts.join(', ')}}`, new Uint8Array(n));
  t.is(inspectSafetensors(ok).tensors.length, n);
  const dup = rawFile('many-dup.safetensors', `{${parts.join(', ')}, "t0": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}`, new Uint8Array(n));
  t.regex(t.throws(() => inspectSafetensors(dup))!.message, /names the same tensor more than once \('t0'\)/);
});

test('the writer refuses NaN and infinite values, naming tensor and row', (t) => {
  const path = join(dir, 'nan.safetensors');
  const values = new Float32Array(12).fill(0.5);
  values[7] = Number.NaN;  // row 1 (4 per row), element 3
  values[9] = Number.POSITIVE_INFINITY;
  const e = t.throws(() => writeSafetensors(path, [{ name: 'w', dtype: 'F32', shape: [3, 4], data: bytesOf(values) }]));
  t.is((e as { code?: string }).code, 'LEP_NON_FINITE');
  t.regex(e!.message, /nan\.safetensors: tensor 'w' holds a NaN or infinite value at row 1 \(element 3; 2 non-finite values in all\)/);
  t.regex(e!.message, /HINT:/);
  // bf16 infinity (0x7f80) too; integers are never checked.
  const bf = t.throws(() => writeSafetensors(path, [{ name: 'b', dtype: 'BF16', shape: [2], data: bytesOf(new Uint16Array([0x3f80, 0x7f80])) }]));
  t.regex(bf!.message, /tensor 'b' holds a NaN or infinite value at row 1/);
  writeSafetensors(path, [{ name: 'i', dtype: 'I32', shape: [1], data: bytesOf(new Int32Array([0x7f800000])) }]);
  t.is(readSafetensors(path).length, 1);
});
