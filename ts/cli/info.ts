import { lepInfo } from '../runtime.js';
import { parse } from './args.js';

export const usage = `lep info [--json]   print lep, libtorch, the native addon in use, CPU features, BLAS (and its kernel choice), thread facts, the memory this process may use, whether weights are mapped, the CPU allocator, CUDA, and the training dtype this CPU favours
Example: lep info --json`;

export function run(argv: string[]): void {
  const { values } = parse(argv, { json: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const info = lepInfo();
  if (values.json) {
    console.log(JSON.stringify(info, null, 2));
    return;
  }
  console.log(`lep           ${info.lepVersion} (node ${info.nodeVersion})`);
  console.log(`libtorch      ${info.torchVersion}`);
  console.log(`addon         ${info.nativeAddon}`);
  console.log(`CPU           ${info.cpu.model}: ${info.cpu.features}`);
  console.log(`BLAS          ${info.blas} (${info.blasThreads} threads)${info.blasConfig ? `, ${info.blasConfig}` : ''}`);
  if (info.blasCore) console.log(`BLAS core     ${info.blasCore}: ${info.blasCoreReason}`);
  console.log(`torch threads intra-op ${info.intraOpThreads}, inter-op ${info.interOpThreads}`);
  console.log(`thread waits  ${info.threadWaits}`);
  console.log(`train dtype   ${info.trainingDtype.dtype} on this CPU: ${info.trainingDtype.reason}`);
  console.log(`f32 products  ${info.f32Products}`);
  console.log(`memory        ${info.memory.description}`);
  console.log(`weights       ${info.weights}`);
  console.log(`allocator     ${info.allocator}`);
  // A CUDA libtorch without a usable GPU (no driver, none granted) is told from a libtorch without CUDA.
  const cuda = info.cudaVersion ? `CUDA ${info.cudaVersion}` : '';
  console.log(`CUDA          ${info.cudaAvailable ? `${info.cudaDevices} device(s)${cuda ? `, ${cuda}` : ''}` : cuda ? `${cuda} in libtorch, no GPU visible to this process` : 'not in this libtorch'}`);
}
