/**
 * The one check every command runs on its output path before it writes anything: the output must not be
 * a dangling symbolic link, and must not be, lie inside, or contain any of the command's inputs (a
 * directory output is replaced as a whole, so an input inside it would be deleted; a file output inside
 * an input directory would be read back as input by the next run).
 */
import { lstatSync, realpathSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';

import { LepError, optionError } from '../errors.js';
import { globCouldReach, isGlob, splitGlob } from './globPattern.js';

/** Input paths of a command by the flag (or positional name) they came from; a corpus input may be a glob. */
export type CommandInputs = Record<string, string | readonly string[] | undefined>;

/** The real path of `p` (symbolic links resolved), for paths that do not exist yet too. */
function realPath(p: string): string {
  const abs = resolve(p);
  const rest: string[] = [];
  let at = abs;
  for (;;) {
    try {
      return join(realpathSync(at), ...rest.reverse());
    } catch {
      const up = dirname(at);
      if (up === at) return abs;
      rest.push(basename(at));
      at = up;
    }
  }
}

const inside = (child: string, parent: string): boolean => {
  const r = relative(parent, child);
  // `..x` is a name inside parent; only `..` itself or `../...` leaves it.
  return r !== '' && r !== '..' && !r.startsWith(`..${sep}`) && !isAbsolute(r);
};

/**
 * How `realOut` overlaps one input, if it does. A glob's files are what it matches: an output that is or
 * contains the glob's fixed root holds them, one below the root overlaps only where the pattern could
 * reach it or a file in it (`--corpus '*.txt' --out tok` is fine: `*.txt` never reads tok/).
 */
function overlap(realOut: string, input: string): string | undefined {
  if (!isGlob(input)) {
    const realIn = realPath(input);
    return realOut === realIn ? 'is' : inside(realOut, realIn) ? 'is inside' : inside(realIn, realOut) ? 'contains' : undefined;
  }
  const { root, rest } = splitGlob(input);
  const realRoot = realPath(root);
  if (realOut === realRoot || inside(realRoot, realOut)) return 'contains';
  if (inside(realOut, realRoot) && globCouldReach(rest, relative(realRoot, realOut).split(sep))) return 'falls under';
  return undefined;
}

/** Throws a LepError when `out` (given by `outFlag`) is a dangling link, or is, lies inside, or contains an input. */
export function checkOutputPath(out: string, outFlag: string, inputs: CommandInputs): void {
  // From plain JavaScript a path can be anything: a bare TypeError from path.resolve otherwise.
  if (typeof out !== 'string' || out === '') throw optionError(outFlag, 'a path', out);
  for (const [flag, value] of Object.entries(inputs))
    for (const input of value === undefined ? [] : typeof value === 'string' ? [value] : Array.isArray(value) ? value : [value])
      if (typeof input !== 'string') throw optionError(flag, 'a path', input);
  const link = lstatSync(out, { throwIfNoEntry: false });
  if (link?.isSymbolicLink()) {
    try {
      realpathSync(out);
    } catch {
      throw new LepError('LEP_BAD_OUTPUT', `${outFlag} ${out} is a symbolic link to a path that does not exist\nHINT: remove the link, or pass the directory it should point to.`);
    }
  }
  const realOut = realPath(out);
  for (const [flag, value] of Object.entries(inputs)) {
    for (const input of value === undefined ? [] : typeof value === 'string' ? [value] : value) {
      const how = overlap(realOut, input);
      if (how)
        throw new LepError(
          'LEP_OUTPUT_OVER_INPUT',
          `${outFlag} ${out} ${how} the input ${flag} ${input}: writing it would overwrite or mix with what the command reads\n` +
            `HINT: choose an ${outFlag} that is outside every input and contains none of them.`,
        );
    }
  }
}
