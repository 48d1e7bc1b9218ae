/**
 * The `lep` command, loaded by cli/main.ts: dispatches argv to a subcommand (each a thin wrapper over an
 * exported TS function), reports its errors and exits.
 */
import { LepError } from '../errors.js';
import { lepVersion } from '../runtime.js';
import { checkThreadCount } from '../binding/threadCount.js';
import { exitCodeOf, exitProcess, handleInterrupts, interruptedBy, interruptedMessage, markFinished } from './interrupt.js';
import { commands } from './commands.js';
import { unknownCommand } from './unknownCommand.js';
import { ioMessage, isIoError } from '../util/ioError.js';

/** A command's forms: the leading lines of its usage that start with `lep ` (lep eval has three). */
function usageForms(text: string): string[] {
  const lines = text.split('\n');
  const end = lines.findIndex((l) => !l.startsWith('lep '));
  return lines.slice(0, end < 0 ? lines.length : Math.max(1, end));
}

const usage = `lep — Learned Embedding Propagation

Usage: lep [--threads N] <command> [options]   (lep <command> --help for details; lep --version)

${Object.values(commands).flatMap((c) => usageForms(c.usage)).join('\n')}`;

let running = '';

export async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const threadsAt = args.indexOf('--threads');
  // --threads N is LEP_THREADS=N for this process and the ones it starts: lep.node applies it when it
  // loads (binding/loadNative.ts), so a bad LEP_THREADS beside a good --threads is not an error.
  if (threadsAt >= 0) {
    const threads = args.splice(threadsAt, 2)[1];
    process.env.LEP_THREADS = String(checkThreadCount(threads !== undefined && /^\d+$/.test(threads) ? Number(threads) : threads, 'threads', '--threads'));
  }
  const key = [args.slice(0, 2).join(' '), args[0] ?? ''].find((k) => k in commands);
  if (args[0] === '--version' || args[0] === '-V') {
    console.log(`lep ${lepVersion()}`);
    return 0;
  }
  if (args.length === 0 || args[0] === '--help' || args[0] === '-h') {
    console.log(usage);
    return 0;
  }
  if (!key) {
    // A usage error: stderr only and exit 2 (as for a bad flag in git or npm), so stdout stays clean for pipes.
    const e = unknownCommand(args, Object.keys(commands));
    console.error(`lep: ${e.message}`);
    console.error(`(code ${e.code})`);
    return 2;
  }
  running = key;
  handleInterrupts(key, commands[key]!.stopsOnSignal ?? false);
  await commands[key]!.run(args.slice(key.split(' ').length));
  return 0;
}

// A reader that has gone (`lep eval --json | head -c 10`) closes the pipe: the rest of the output has
// nowhere to go, so EPIPE is not an error. The command still finishes its work (its files stay whole) and
// exits with its own code; without a listener Node threw the EPIPE with a stack trace, exit code 1.
const readerGone = (e: NodeJS.ErrnoException): boolean => e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED';
// Any other failure to write stdout (`lep info --json > file` on a full disk, /dev/full) lost the output:
// the command finishes its work and then exits 1 saying so (it exited 0 with an empty file; generate's
// streamed text threw a stack trace). A failing stderr loses only notes and progress: the work goes on (a
// training whose log went to a full disk died at once, silently).
let stdoutError: NodeJS.ErrnoException | undefined;
const noteStdoutError = (e: NodeJS.ErrnoException | null | undefined): void => {
  if (e && !readerGone(e)) stdoutError ??= e;
};
process.stdout.on('error', noteStdoutError);
process.stderr.on('error', () => {});

main(process.argv.slice(2)).then(
  (code) => {
    // The signal came when the job was past its last safe point, and it finished: its output is whole.
    const signal = interruptedBy();
    if (signal) console.error(`lep ${running}: ${signal} came as the work was finishing; it finished, and its output is complete`);
    exitWhenFlushed(code);
  },
  (e: unknown) => {
    const signal = interruptedBy();
    if (signal) {
      // Every aborted job rejects with LEP_ABORTED (binding/runJob.ts); a stage that knows how to resume
      // says so in a HINT (train: the checkpoint), the others get the generic message.
      const own = e instanceof LepError && e.code === 'LEP_ABORTED' && e.message.includes('\nHINT:');
      console.error(own ? `lep ${running}: ${e.message}` : interruptedMessage(running, signal));
      exitProcess(exitCodeOf(signal));
    }
    // A file-system error (an errno code; a write's carries no path, which a full disk often meets).
    if (isIoError(e)) {
      console.error(`lep: ${ioMessage(e)}${process.env.LEP_DEBUG ? `\n${e.stack}` : ''}`);
      console.error(`(code LEP_IO_${e.code})`);
    } else if (e instanceof LepError) {
      console.error(`lep: ${e.message}${process.env.LEP_DEBUG ? `\n${e.stack}` : ''}`);
      console.error(`(code ${e.code})`);
    } else {
      console.error(e);
    }
    exitWhenFlushed(1);
  },
);

/**
 * Exits once stdout and stderr have handed everything to the OS. On POSIX a pipe is written
 * asynchronously, so `process.exit` right after a large `--json` document dropped what the reader had not
 * taken yet (a 69 kB `lep eval --json` read by a slow consumer arrived cut at 64 KiB, the pipe's buffer).
 * The exit itself stays explicit, as before, so nothing left running keeps a finished command alive.
 */
function exitWhenFlushed(code: number): void {
  // No safe point is left to stop at: a signal while a slow reader drains the output quits at once.
  markFinished();
  let pending = 2;
  const done = (): void => {
    if (--pending > 0) return;
    if (stdoutError && code === 0) {
      console.error(
        `lep: cannot write the output to stdout: ${stdoutError.code ?? stdoutError.message}` +
          `\nHINT: files the command wrote are complete; only what it printed was lost (a full or failing disk, or /dev/full): send stdout elsewhere and run it again for the printed result.` +
          `\n(code LEP_IO_${stdoutError.code ?? 'EIO'})`,
      );
      code = 1;
    }
    exitProcess(code);
  };
  process.stdout.write('', (e) => {
    noteStdoutError(e);
    done();
  });
  process.stderr.write('', done);
}
