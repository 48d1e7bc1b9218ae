/** `lep/init`: step 2 of the method, the initialisation plan, embedding initialisation, provenance
 * and embedding patches. Re-exports only. */
export { initEmbeddings, resolveInitOptions, INIT_DEFAULTS, type SolveDtype, type InitEmbeddingsOptions, type InitEmbeddingsResult, type InitSideSummary } from './initEmbeddings.js';
export { buildInitPlan, planArrays, INIT_RULES, DONOR_RULES, OUTPUT_RULES, ROW_KIND, type InitPlan, type PlanRow, type RowSource, type InitRule, type OutputRule, type BuildInitPlanOptions } from './buildInitPlan.js';
export { PROVENANCE_FILE, type ProvenanceEntry } from './provenance.js';
export { writeEmbeddingPatch, applyEmbeddingPatch, PATCH_FILE, PATCH_TENSORS_FILE } from './embeddingPatch.js';
