#!/usr/bin/env node
/** The `lep` command: each subcommand is a thin wrapper over an exported TS function. */
import { LepError } from '../errors.js';
import { setThreads } from '../runtime.js';
import * as adapt from './adapt.js';
import * as build from './build.js';
import * as calibrate from './calibrate.js';
import * as dataPack from './dataPack.js';
import * as demo from './demo.js';
import * as evalCmd from './eval.js';
import * as exportCheckpoint from './exportCheckpoint.js';
import * as exportGguf from './exportGguf.js';
import * as generate from './generate.js';
import * as info from './info.js';
import * as init from './init.js';
import * as launch from './launch.js';
import * as loraMerge from './loraMerge.js';
import * as modelCreate from './modelCreate.js';
import * as patchApply from './patchApply.js';
import * as propagate from './propagate.js';
import * as tokenizerCompare from './tokenizerCompare.js';
import * as tokenizerExtend from './tokenizerExtend.js';
import * as tokenizerShrink from './tokenizerShrink.js';
import * as tokenizerStats from './tokenizerStats.js';
import * as tokenizerTrain from './tokenizerTrain.js';
import * as train from './train.js';

interface Command {
  usage: string;
  run(argv: string[]): Promise<void> | void;
}

const commands: Record<string, Command> = {
  info,
  demo,
  generate,
  'model create': modelCreate,
  'export gguf': exportGguf,
  'export checkpoint': exportCheckpoint,
  'patch apply': patchApply,
  'tokenizer train': tokenizerTrain,
  'tokenizer extend': tokenizerExtend,
  'tokenizer shrink': tokenizerShrink,
  'tokenizer stats': tokenizerStats,
  'tokenizer compare': tokenizerCompare,
  'data pack': dataPack,
  init,
  train,
  launch,
  'lora merge': loraMerge,
  calibrate,
  propagate,
  adapt,
  eval: evalCmd,
  build,
};

const usage = `lep — Learned Embedding Propagation

Usage: lep [--threads N] <command> [options]   (lep <command> --help for details)

${Object.values(commands).map((c) => c.usage.split('\n')[0]).join('\n')}`;

export async function main(argv: string[]): Promise<number> {
  const args = [...argv];
  const threadsAt = args.indexOf('--threads');
  const threads = threadsAt >= 0 ? args.splice(threadsAt, 2)[1] : process.env.LEP_THREADS;
  if (threads !== undefined) setThreads(Number(threads));
  const key = [args.slice(0, 2).join(' '), args[0] ?? ''].find((k) => k in commands);
  if (!key) {
    console.log(usage);
    return args.length === 0 || args[0] === '--help' || args[0] === '-h' ? 0 : 2;
  }
  await commands[key]!.run(args.slice(key.split(' ').length));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof LepError) {
      console.error(`lep: ${e.message}${process.env.LEP_DEBUG ? `\n${e.stack}` : ''}`);
      console.error(`(code ${e.code})`);
    } else {
      console.error(e);
    }
    process.exit(1);
  },
);
