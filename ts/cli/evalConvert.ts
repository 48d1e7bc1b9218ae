/** `lep eval convert-darumeru`: the Darumeru datasets → lep task files (ts/eval/convertDarumeru.ts). */
import { convertDarumeru, DARUMERU_SETS } from '../eval/convertDarumeru.js';
import { LepError } from '../errors.js';
import { parse, required } from './args.js';

export const usage = `lep eval convert-darumeru IN --out DIR [--sets S1,S2]    Darumeru snapshot dir → task files
lep eval convert-darumeru FILE.jsonl --set S [--prompt P.jsonl] --out DIR    one set's file
  IN       directory with SET/test.jsonl or data/SET/test.jsonl (and prompt.jsonl for few-shot examples)
  sets     ${Object.keys(DARUMERU_SETS).join(', ')}
  then     lep eval MODEL --tasks DIR/rummlu.jsonl,DIR/parus.jsonl,...   (Micro-Avg over the 17 = the paper's)
Example: lep eval convert-darumeru darumeru-snapshot --out tasks`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { out: { type: 'string' }, sets: { type: 'string' }, set: { type: 'string' }, prompt: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage);
  const input = positionals[0];
  if (!input || positionals.length > 1) throw new LepError('LEP_BAD_OPTION', `lep eval convert-darumeru needs one input (directory or file)\n\n${usage}`);
  const out = required(values.out as string | undefined, '--out', usage);
  if (values.prompt !== undefined && values.set === undefined) throw new LepError('LEP_BAD_OPTION', `--prompt goes with --set\n\n${usage}`);
  const report = convertDarumeru(input, out, {
    sets: (values.sets as string | undefined)?.split(',').map((s) => s.trim()).filter(Boolean),
    set: values.set as string | undefined,
    promptFile: values.prompt as string | undefined,
  });
  for (const t of report.tasks) console.log(`${t.file}  ${t.group}  ${t.items} items, ${t.shots} shots  (from ${t.from.join(', ')})`);
  if (report.unknownSubjects.length > 0) console.log(`not MMLU subjects, each scored as its own category: ${report.unknownSubjects.join(', ')}`);
  console.log(`manifest: ${report.manifest}`);
}
