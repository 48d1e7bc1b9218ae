// Learned Embedding Propagation (docs/method.md §4): carry embeddings trained on a base model (the donor,
// rows of a new vocabulary) into an instruct model derived from that base, with a float64 linear map.
//
//   swap        new = F
//   overlap     new = F · lstsq(E_base[C], E_inst[C])      C: old ids of tokens in both vocabularies
//   conversion  new = F · lstsq(T·E_base, T·E_inst)        T: the averaging map, |V_new| × |V_old|
//
// Row convention: one row per token. Input (model.embed_tokens.weight) and output (lm_head.weight) sides
// are solved separately; a tied model has only the input side. Only embedding tensors are read (zero-copy
// mmap views, converted to float64 a chunk of rows at a time), the least squares keep memory ∝ d²
// (streaming_lstsq.h), and the instruct model's other tensors are copied file to file
// (checkpoint_rewrite.h). TS builds T, C and the rows to copy from tokenizers and passes index lists.
//
// One job may write several instruct models derived from the same base (targets): the base and donor are
// mapped once, the base side of each system (T·E_base or E_base[C], its Gram AᵀA and Cholesky factor) is
// built once, and only what depends on an instruct model (AᵀB, the solve, F·P, the checkpoint) is per
// target. Targets are written one after another; a failure while writing one is recorded in its report
// and the job goes on with the next (an abort stops it), so finished targets are kept. A system that
// cannot be solved (LEP_TOO_FEW_ROWS) likewise fails only the targets of its method.
//
// Targets may differ in method (`lep adapt` runs overlap and conversion into the same instruct model in one
// job). Overlap's system is the conversion system's identity rows: a donor token r whose T row is the
// single old id c with (r, c) an overlap pair contributes E_base[c], E_inst[c] to both. Those shared rows are
// accumulated once; the accumulator is then forked, overlap adds its remaining pairs and conversion its
// remaining rows of T (about a quarter of them for an Extended LLaMa-3 vocabulary). Instruct models named by
// several targets are read, correlated and solved for once. The sums then run in another order than in a
// one-method job, so the maps agree with it to float64 rounding, not bit for bit.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/progress.h"
#include "core/streaming_lstsq.h"

namespace lep {

enum class PropagateMethod { kSwap, kOverlap, kConversion };
PropagateMethod propagate_method_from_string(const std::string& s);  // throws lep::Error

// One instruct model to propagate into, and where its checkpoint goes.
struct PropagateTarget {
  PropagateMethod method = PropagateMethod::kConversion;
  std::vector<std::string> instruct_files;  // its safetensors files
  // Rows copied unprojected from this instruct model: output row copy_to[j] = instruct row copy_from[j]
  // (special and added tokens, matched by string in TS).
  std::vector<int64_t> copy_to, copy_from;
  // Rows of the output matrices (≥ donor rows); rows past the donor's must all be copied rows.
  int64_t out_rows = 0;
  std::string out_dir;
};

struct PropagateOptions {
  std::vector<std::string> base_files, donor_files;  // safetensors files of each model
  std::vector<PropagateTarget> targets;              // at least one
  // Conversion (needed when a target uses it): T in CSR form over donor rows. Row i (t_offsets[i] .. t_offsets[i+1]) lists the old ids
  // whose mean is new token i's row (a repeated id counts twice); an empty row leaves token i out of the
  // system. t_offsets has donor-rows + 1 entries (or fewer: missing trailing rows are empty).
  std::vector<int64_t> t_offsets, t_indices;
  // Tokens of both vocabularies (matched by decoded string): donor id overlap_new[j] is old id overlap_old[j].
  // Overlap solves over them; every method reports the cosine of the propagated rows against E_inst there.
  std::vector<int64_t> overlap_new, overlap_old;
  uint64_t max_shard_bytes = 0;
  int64_t chunk_rows = 4096;  // rows converted to float64 at a time
  LstsqSolver solver = LstsqSolver::kNormal;
  std::string device = "cpu";  // where the float64 products run ("cuda" when libtorch has it)
};

struct PropagateSideReport {
  std::string side;                // "input" | "output"
  std::string tensor;              // tensor name
  int64_t system_rows = 0;         // rows of the least-squares system (0 for swap)
  double residual = -1;            // ‖AP − B‖_F / ‖B‖_F (-1 for swap: no system)
  bool solver_fell_back = false;   // rank-deficient system solved by lstsq
  std::string gram;                // how AᵀA was accumulated (gram_update.h): syrk | blocked | full; empty without one
  int64_t overlap_rows = 0;
  double overlap_cosine = 0;       // mean cosine(new row, instruct row) over the overlap pairs
  double base_instruct_correlation = 0;  // Pearson correlation of E_base and E_inst over their shared rows
  // solve: the correlation passes and the side's solves, shared by every target of the job (the same wall
  // time in each target's report); apply: F·P and the overlap cosines of this target, of which
  // cosine is the overlap cosines.
  double solve_seconds = 0, apply_seconds = 0, cosine_seconds = 0;
};

struct PropagateTargetReport {
  std::vector<PropagateSideReport> sides;
  std::vector<std::string> files;  // written into out_dir
  int64_t out_rows = 0;
  std::string dtype;               // dtype of the written embedding matrices (the instruct model's)
  double write_seconds = 0;
  // Empty when the target was written; otherwise why not (a lep::Error code, LEP_TORCH or LEP_NATIVE,
  // or LEP_NOT_RUN for targets after an abort).
  std::string error_code, error_message;
};

struct PropagateReport {
  std::vector<PropagateTargetReport> targets;
  int64_t hidden_size = 0, old_rows = 0, donor_rows = 0;
  double shared_seconds = 0;       // mapping the models and solving the systems of every target
  double total_seconds = 0;
};

PropagateReport propagate(const PropagateOptions& options, const ProgressFn& progress);

}  // namespace lep
