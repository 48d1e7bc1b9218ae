#!/usr/bin/env node
/**
 * The `lep` command's entry point. The command itself (cli/dispatch.ts) is loaded by a dynamic import so
 * that a failure to load it is reported as lep reports errors: Node's module loader opens lep's and its
 * dependencies' files many at once, and under a low open-file limit (`ulimit -n` below about 175 here) it
 * died with EMFILE and a stack trace before any of lep ran.
 */
import { ioMessage, isIoError } from '../util/ioError.js';

import('./dispatch.js').catch((e: unknown) => {
  if (!isIoError(e)) throw e;
  console.error(`lep: cannot load lep's modules: ${ioMessage(e)}`);
  console.error(`(code LEP_IO_${e.code})`);
  process.exitCode = 1;
});
