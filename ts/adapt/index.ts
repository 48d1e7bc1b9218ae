/** `lep/adapt`: every stage from one recipe (`lep adapt`). Re-exports only. */
export { adapt, STAGES, STAGE_NOTES_DIR, MANIFEST_FILE, type AdaptOptions, type AdaptProgress, type AdaptResult, type StageName } from './adapt.js';
export { readRecipe, validateRecipe, resolveRecipePaths, type AdaptRecipe, type TokenizerKind } from './recipe.js';
export type { StageProgress } from '../stage/stageProgress.js';
