/**
 * Probe child of blasCore.ts: loads the addon with the OPENBLAS_CORETYPE it was given (or none), runs
 * the BLAS self-check and prints one JSON line (a BlasProbe). A core that crashes kills only this child; one
 * that hangs is ended by the watchdog, also when the parent is gone.
 */
import { exitWithParent } from '../util/exitWithParent.js';
import { PROBE_TIMEOUT_MS } from './blasCore.js';
import { getNative } from './loadNative.js';

exitWithParent(process.ppid, PROBE_TIMEOUT_MS);

const native = getNative();
const info = native.info();
const check = native.blasSelfCheck();
console.log(JSON.stringify({ core: info.blasCore, blasPath: info.blasPath, f32Error: check.f32Error, f64Error: check.f64Error }));
