#!/usr/bin/env node
/**
 * The `lep` command's entry point. The command itself (cli/dispatch.ts) is loaded by a dynamic import so
 * that a failure to load it is reported as lep reports errors: Node's module loader opens lep's and its
 * dependencies' files many at once, and under a low open-file limit (`ulimit -n` below about 175 here) it
 * died with EMFILE and a stack trace before any of lep ran; an install missing a dependency or one of
 * lep's own files died with ERR_MODULE_NOT_FOUND and a stack trace. This file imports nothing statically,
 * so that a missing module is reported whichever it is.
 */
import('./dispatch.js').catch(async (e: unknown) => {
  process.exitCode = 1;
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ERR_MODULE_NOT_FOUND') {
    console.error(`lep: cannot load lep's modules: ${(e as Error).message.split('\n')[0]}`);
    console.error("HINT: lep's installation is incomplete: install it again (`npm install lep`; in a checkout, `npm ci && npm run build`).");
    console.error('(code LEP_MISSING_PACKAGE)');
    return;
  }
  const io = await import('../util/ioError.js').catch(() => undefined);
  if (!io) {
    // Still out of files (EMFILE), or the module itself is gone: say what failed without it.
    if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) throw e;
    console.error(`lep: cannot load lep's modules: ${(e as Error).message}`);
    console.error(`(code LEP_IO_${code})`);
    return;
  }
  if (!io.isIoError(e)) throw e;
  console.error(`lep: cannot load lep's modules: ${io.ioMessage(e)}`);
  console.error(`(code LEP_IO_${e.code})`);
});
