// Embedding initialisation (docs/method.md §2), the tensor half: given a plan from TS (for every new token the
// old ids whose rows it averages, CSR-style), compute the new input and output embedding matrices in
// float32 and write the new checkpoint, every other tensor copied through from the old one.
//
// TS decides *which* old rows each new token takes (tokenizers live there); this file decides nothing
// about tokens. What it does decide, because only it sees the tensors:
//   - old rows that are exactly zero (never trained: LLaMa-3's reserved tokens) are left out of every
//     mean and of the global mean; they are still copied when a plan row names one id with kind kCopy;
//   - a mean row whose usable sub-rows are all gone, or whose norm is below 1e-12, becomes the global
//     mean (of the old tokenizer's usable rows, per side);
//   - the input and output sides are computed separately from the same plan (their zero rows can differ);
//   - kDonor rows (rules omp and focus) are first the mean like kMean rows, then replaced by the donor
//     solve (core/donor_rows.h) unless the donor's row of that token is all zero.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/donor_rows.h"
#include "core/progress.h"

namespace lep {

// How a plan row is filled.
enum class InitKind : uint8_t {
  kMean = 0,        // mean of the usable listed old rows (repeated ids count twice)
  kCopy = 1,        // the one listed old row, bit-exact, even when it is all zero
  kGlobalMean = 2,  // mean of all usable old rows
  kRandom = 3,      // seeded normal(0, std of the usable old rows)
  kDonor = 4,       // a combination of shared tokens' rows found in the donor's space (plan.donor)
};

struct EmbeddingInitPlan {
  int64_t old_tokens = 0;  // old tokenizer size: rows from here on are padding, never read into means
  int64_t new_tokens = 0;  // plan rows = new tokenizer size
  int64_t new_rows = 0;    // rows written (>= new_tokens; the rest are padding rows, set to the global mean)
  std::vector<int64_t> offsets;  // new_tokens + 1 entries; ids[offsets[i], offsets[i+1]) belong to row i
  std::vector<int64_t> ids;      // old ids
  std::vector<uint8_t> kinds;    // InitKind per row
  bool output_first = false;     // output side, kMean rows: the first usable sub-row instead of the mean
  uint64_t seed = 0;             // kRandom rows
  bool has_donor = false;        // kDonor rows need it
  DonorPlan donor;
};

struct EmbeddingInitJob {
  std::vector<std::string> files;      // old checkpoint's safetensors files
  std::vector<std::string> out_files;  // one output path per input file (same tensors, same order)
  std::string embed_name = "model.embed_tokens.weight";
  std::string head_name = "lm_head.weight";
  bool tied = false;  // one shared matrix: no lm_head is written (a stored copy is dropped)
  EmbeddingInitPlan plan;
};

// Per side: which old rows were all zero, and which new rows fell back to the global mean.
struct EmbeddingSideReport {
  std::vector<int64_t> zero_rows;     // old ids (< old_tokens) whose row is all zero
  std::vector<int64_t> fallback_rows; // new ids of kMean rows that became the global mean
  double old_std = 0;                 // std of the usable old rows' elements (kRandom's scale)
  DonorSideReport donor;              // kDonor rows (empty without a donor)
};

struct EmbeddingInitResult {
  EmbeddingSideReport input, output;  // output is empty for tied models
  bool has_output = false;
  std::string dtype;  // safetensors dtype of the written embedding matrices (the old one's)
  int64_t hidden_size = 0;
  uint64_t bytes_written = 0;
};

// Validates `plan` against the tensors (shapes, id ranges) and throws lep::Error with a HINT on misuse.
EmbeddingInitResult run_embedding_init(const EmbeddingInitJob& job, const ProgressFn& progress);

// The rows themselves, for one matrix (used by run_embedding_init; exposed for tests without files).
// `old` is (V_old_rows, d) of any float dtype; returns (new_rows, d) float32 (float64 when `old` is float64
// and there is a donor: its rows keep the solve's precision).
// `donor` is the donor's matching matrix (kDonor rows), or undefined without a donor.
torch::Tensor init_matrix(const torch::Tensor& old, const EmbeddingInitPlan& plan, bool first_only,
                          uint64_t seed, EmbeddingSideReport& report, const ProgressFn& progress, const std::string& phase,
                          const torch::Tensor& donor = {});

}  // namespace lep
