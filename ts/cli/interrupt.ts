/**
 * SIGINT (Ctrl-C) and SIGTERM for the `lep` command. Commands that pass `interruptSignal` to their job
 * (`stopsOnSignal`) stop at the job's next safe point — training at a step boundary, where it writes a
 * checkpoint — and exit through the normal error path. Any other command, and a second signal, exits at
 * once. Either way every temporary output this process was writing is removed first (a `process.on('exit')`
 * hook), and the exit code is 128 + the signal number: 130 for SIGINT, 143 for SIGTERM.
 */
import { loadedNative, markExitingNow } from '../binding/loadNative.js';
import { LepError } from '../errors.js';
import { removeTrackedTemps } from '../util/tempPaths.js';

/**
 * How the `lep` command ends: the 'exit' hooks first (temporary outputs, output locks), then, where lep.node
 * is loaded, out without C++ static destructors (addon.cpp, ExitNow): process.exit runs them, and under a
 * job thread still computing (a second Ctrl-C, or one during `lep eval`) libtorch's and oneDNN's segfaulted
 * (exit 139), while OpenBLAS's joined a worker stuck retrying an allocation under a memory limit, forever.
 * Nothing of lep's needs a destructor at exit; stdout and stderr are flushed by then (exitWhenFlushed) or
 * written synchronously.
 */
export function exitProcess(code: number): never {
  const native = loadedNative();
  if (!native) process.exit(code);
  markExitingNow();
  process.exitCode = code;
  process.emit('exit', code);
  return native.exitNow(code);
}

const controller = new AbortController();

/** Aborted by the first SIGINT/SIGTERM; pass it to the command's job. */
export const interruptSignal: AbortSignal = controller.signal;

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;
type HandledSignal = keyof typeof EXIT_CODES;
let received: HandledSignal | undefined;

/** The signal that interrupted this command, if one did. */
export function interruptedBy(): HandledSignal | undefined {
  return received;
}

export function exitCodeOf(signal: HandledSignal): number {
  return EXIT_CODES[signal];
}

/** What an interrupted command prints when it has nothing more specific to say. */
export function interruptedMessage(command: string, signal: HandledSignal): string {
  return `lep ${command}: interrupted by ${signal}; its temporary files were removed and no output was left half-written (outputs appear only when complete)\nHINT: run the same command again; train, calibrate and adapt continue from where they stopped.`;
}

let finished = false;

/** The command's work is done and only its output is being flushed: a signal now quits at once. */
export function markFinished(): void {
  finished = true;
}

/**
 * Installs the handlers; `stopsOnSignal`: the running command stops by itself on `interruptSignal`.
 * A rank of `lep launch` (LEP_LAUNCHER_PID names its launcher, which runs it in a process group of its
 * own) also stops, as on SIGTERM, when its launcher is gone: killed with SIGKILL, it forwards nothing.
 */
export function handleInterrupts(command: string, stopsOnSignal: boolean): void {
  process.on('exit', () => void removeTrackedTemps());
  const launcher = Number(process.env.LEP_LAUNCHER_PID);
  if (launcher > 0 && launcher === process.ppid)
    setInterval(() => {
      if (process.ppid !== launcher && received === undefined) {
        console.error(`lep ${command}: its launcher (pid ${launcher}) is gone`);
        process.kill(process.pid, 'SIGTERM');
      }
    }, 1000).unref();
  for (const sig of Object.keys(EXIT_CODES) as HandledSignal[])
    process.on(sig, () => {
      if (finished) {
        console.error(`lep ${command}: ${sig} came while its output was being printed; its work and files are complete, the printed output may be cut`);
        exitProcess(exitCodeOf(sig));
      }
      if (received !== undefined || !stopsOnSignal) {
        received ??= sig;
        console.error(interruptedMessage(command, sig));
        exitProcess(exitCodeOf(received));
      }
      received = sig;
      console.error(`lep ${command}: ${sig} received, stopping at the next safe point (send it again to quit at once)`);
      controller.abort(new LepError('LEP_INTERRUPTED', `lep ${command} was interrupted by ${sig}`));
    });
}
