/** Safetensors files from TS: validated header inspection and raw tensor bytes (small files). */
import { getNative } from '../binding/loadNative.js';
import type { NativeTensorData, NativeTensorInfo } from '../binding/NativeTypes.js';
import { callNative } from '../errors.js';

/** A tensor's dtype, shape and raw bytes. */
export type TensorData = NativeTensorData;
/** A tensor's entry in a safetensors header: dtype, shape, byte offsets. */
export type TensorInfo = NativeTensorInfo;

/** Reads and validates the header of a safetensors file. */
export function inspectSafetensors(path: string): { tensors: NativeTensorInfo[]; metadata: Record<string, string> } {
  return callNative(() => getNative().inspectSafetensors(path));
}

/** Reads every tensor's raw bytes (copies; meant for small files). */
export function readSafetensors(path: string): NativeTensorData[] {
  return callNative(() => getNative().readSafetensors(path));
}

/** Writes tensors atomically (in the given order). */
export function writeSafetensors(path: string, tensors: NativeTensorData[], metadata?: Record<string, string>): void {
  callNative(() => getNative().writeSafetensors(path, tensors, metadata));
}
