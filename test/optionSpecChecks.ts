/** Checks of a command's help and flags against its option spec, shared by the option-spec tests. */
import type { ExecutionContext } from 'ava';

import { kebab, type OptionSpecs } from '../ts/options/optionSpec.js';

/** Every defaulted option with a flag has a help line ending in its default. */
export function helpShowsDefaults(t: ExecutionContext, usage: string, specs: OptionSpecs): void {
  for (const [k, s] of Object.entries(specs)) {
    if (s.default === undefined || typeof s.default === 'boolean' || s.flag === false) continue;
    const line = usage.split('\n').find((l) => l.startsWith(`  --${s.flag ?? kebab(k)} `));
    t.truthy(line, k);
    t.regex(line!, /\(default [^)]+\)$/, k);
  }
}

/**
 * The command accepts exactly these flags (strict parsing refuses any other) and documents each one:
 * `run(flags..., --help)` prints the help when every flag is known. Strings get a value, booleans none.
 */
export async function acceptsFlags(t: ExecutionContext, run: (argv: string[]) => Promise<void>, usage: string, flags: { string: string[]; boolean: string[] }): Promise<void> {
  for (const f of [...flags.string, ...flags.boolean]) t.true(usage.split('\n').some((l) => l.startsWith(`  --${f}`)), `help line for --${f}`);
  const argv = [...flags.string.flatMap((f) => [`--${f}`, 'x']), ...flags.boolean.map((f) => `--${f}`), '--help'];
  const log = console.log;
  let printed = '';
  console.log = (s: string) => void (printed += s);
  try {
    await run(argv);
  } finally {
    console.log = log;
  }
  t.is(printed, usage);
  const unknown = await t.throwsAsync(run(['--no-such-flag', '--help']));
  t.regex(unknown!.message, /Unknown option '--no-such-flag'/);
}
