/**
 * Probe child of blasCore.ts: loads the addon with the OPENBLAS_CORETYPE it was given (or none), runs
 * the BLAS self-check and prints one JSON line (a BlasProbe). A core that crashes kills only this child.
 */
import { getNative } from './loadNative.js';

const native = getNative();
const info = native.info();
const check = native.blasSelfCheck();
console.log(JSON.stringify({ core: info.blasCore, blasPath: info.blasPath, f32Error: check.f32Error, f64Error: check.f64Error }));
