/** The error for a command lep does not have, naming the nearest one (git's "did you mean"). */
import { distance } from 'fastest-levenshtein';

import { LepError } from '../errors.js';

interface Match {
  name: string;
  distance: number;
}

/** The closest of `names`, if it is at most a third of the typed name's edits away (at least 2), as git does. */
function nearest(typed: string, names: string[]): Match | undefined {
  let best: Match | undefined;
  for (const name of names) {
    const d = distance(typed, name);
    if (d <= Math.max(2, Math.floor(typed.length / 3)) && (!best || d < best.distance)) best = { name, distance: d };
  }
  return best;
}

/**
 * `args` did not start with any of `names` (which include two-word subcommands like `tokenizer train`).
 * The first word is judged alone and with the next word, so `exprot gguf` finds `export gguf`.
 */
export function unknownCommand(args: string[], names: string[]): LepError {
  const [first, second] = args as [string, string | undefined];
  if (first.startsWith('-')) return new LepError('LEP_UNKNOWN_COMMAND', `unknown option '${first}' before the command\nHINT: lep --help lists the options and commands.`);
  const groups = new Set(names.filter((n) => n.includes(' ')).map((n) => n.split(' ')[0]!));
  const twoWords = second !== undefined && !second.startsWith('-') ? `${first} ${second}` : undefined;
  const typed = groups.has(first) && twoWords ? twoWords : first;
  const subcommands = names.filter((n) => n.startsWith(`${typed} `));
  const matches = [nearest(first, names), twoWords ? nearest(twoWords, names) : undefined].filter((m) => m !== undefined);
  const match = matches.sort((a, b) => a.distance - b.distance)[0];
  const hint = subcommands.length > 0
    ? `'${typed}' takes a subcommand: ${subcommands.map((n) => `'${n}'`).join(', ')}.`
    : match ? `did you mean '${match.name}'?` : 'lep --help lists the commands.';
  return new LepError('LEP_UNKNOWN_COMMAND', `unknown command '${typed}'\nHINT: ${hint}`);
}
