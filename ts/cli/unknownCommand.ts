/** The error for a command lep does not have, naming the nearest one (git's "did you mean"). */
import { distance } from 'fastest-levenshtein';

import { LepError } from '../errors.js';

/** Suggest only a name this many edits away at most (a third of the typed name, at least 2), as git does. */
function nearest(typed: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(typed.length / 3)) + 1;
  for (const name of names) {
    const d = distance(typed, name);
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/**
 * `args` did not start with any of `names` (which include two-word subcommands like `tokenizer train`).
 * A first word that starts a subcommand is judged together with the next word.
 */
export function unknownCommand(args: string[], names: string[]): LepError {
  const groups = new Set(names.filter((n) => n.includes(' ')).map((n) => n.split(' ')[0]!));
  const typed = groups.has(args[0]!) && args[1] !== undefined && !args[1].startsWith('-') ? `${args[0]} ${args[1]}` : args[0]!;
  const subcommands = names.filter((n) => n.startsWith(`${typed} `));
  const match = nearest(typed, names);
  const hint = subcommands.length > 0
    ? `'${typed}' takes a subcommand: ${subcommands.map((n) => `'${n}'`).join(', ')}.`
    : match ? `did you mean '${match}'?` : 'lep --help lists the commands.';
  return new LepError('LEP_UNKNOWN_COMMAND', `unknown command '${typed}'\nHINT: ${hint}`);
}
