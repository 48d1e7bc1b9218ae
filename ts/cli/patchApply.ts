import { applyEmbeddingPatch } from '../init/embeddingPatch.js';
import { parse, printJson, required } from './args.js';

export const usage = `lep patch apply PATCH_DIR BASE_DIR --out DIR
  Applies an embedding patch (lep train --embeddings-only --patch) to the model it was trained from:
  the full model with the trained embeddings and the new tokenizer. Refuses a different base.
  --json (print the result as one JSON document on stdout; progress stays on stderr)
Example: lep patch apply patch base --out restored`;

export async function run(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, { json: { type: 'boolean' }, out: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage);
  const patch = required(positionals[0], 'PATCH_DIR', usage);
  const base = required(positionals[1], 'BASE_DIR', usage);
  const out = required(values.out as string | undefined, '--out', usage);
  const r = applyEmbeddingPatch(patch, base, out);
  if (values.json) return printJson(r);
  console.log(`${r.outDir}: ${r.files.join(', ')}`);
}
