/** `lep/train`: step 3 of the method, training: packing text and chat into blocks, the training
 * driver, data-parallel launch, exporting a checkpoint. Re-exports only. */
export { trainModel, TRAIN_DEFAULTS, ADAPTER_DIR, type TrainOptions, type TrainResult } from './trainModel.js';
export { latestCheckpoint } from './checkpointDirs.js';
export { readDistributedEnv, DEFAULT_DIST_TIMEOUT_S, DEFAULT_GRAD_SYNC, GRAD_SYNC_MODES, type DistributedEnv, type GradSync } from './distributedEnv.js';
export { launchProcesses, freePort, type LaunchOptions, type LaunchResult } from './launchProcesses.js';
export { packDocuments, writeBlocks, type PackOptions, type PackResult } from './packBlocks.js';
export { packChat, renderChat, type ChatExample, type PackChatResult } from './packChat.js';
export { packCorpus, type PackCorpusOptions, type PackCorpusResult } from './packCorpus.js';
export { exportCheckpoint, type ExportCheckpointOptions } from './exportCheckpoint.js';
