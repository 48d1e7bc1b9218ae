/** The `lep` subcommands by name: dispatch.ts dispatches on it, scripts/write-cli-docs.ts documents it. */
import * as adapt from './adapt.js';
import * as build from './build.js';
import * as calibrate from './calibrate.js';
import * as corporaFetch from './corporaFetch.js';
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

export interface Command {
  usage: string;
  run(argv: string[]): Promise<void> | void;
  /** The command passes `interruptSignal` to its job and stops by itself at a safe point. */
  stopsOnSignal?: boolean;
}

/** Every subcommand, in the order of the top-level help (and of docs/cli.md). */
export const commands: Record<string, Command> = {
  info,
  demo,
  generate,
  'model create': modelCreate,
  'export gguf': exportGguf,
  'export checkpoint': exportCheckpoint,
  'patch apply': patchApply,
  'corpora fetch': corporaFetch,
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
