// Donor rules of embedding initialisation (`lep init --rule omp|focus --donor DIR`, docs/method.md §2):
// a new token's row is a weighted combination of the old model's rows of *shared* tokens (tokens the old
// model and the donor both have), the weights found in the donor's embedding space, where the new token
// has a row of its own:
//
//   omp:   the donor row of the new token ≈ Σ_j c_j · donor row of shared token s_j (k-sparse, least squares)
//   focus: c = sparsemax(cos(donor row of the new token, donor rows of all shared tokens))
//   then   new row = Σ_j c_j · old row of s_j
//
// Each side (input embeddings, lm_head) is solved in the donor's matching matrix, as mergekit-tokensurgeon
// does. TS pairs the tokens (by surface string); this file only sees ids and tensors.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/progress.h"

namespace lep {

enum class DonorMethod : uint8_t { kOmp = 0, kFocus = 1 };

struct DonorPlan {
  std::vector<std::string> files;             // the donor checkpoint's safetensors files
  bool tied = false;                          // the donor shares one matrix (its output side is embed_tokens)
  DonorMethod method = DonorMethod::kOmp;
  int64_t k = 64;                             // omp: atoms per new token
  torch::ScalarType dtype = torch::kFloat32;  // solve dtype: float32 or float64
  torch::Device device = torch::kCPU;
  std::vector<int64_t> shared_old, shared_donor;  // pairs: old id <-> donor id of the same token
  std::vector<int64_t> row_donor;  // per new token: its donor id (rows of kind kDonor), else -1
};

// What one side's donor solve did; the rows are listed in new-id order.
struct DonorSideReport {
  std::vector<int64_t> rows;           // new ids built from the donor
  std::vector<int64_t> offsets;        // rows.size() + 1: old_ids/weights[offsets[i], offsets[i+1]) of rows[i]
  std::vector<int64_t> old_ids;        // shared tokens' old ids (weight != 0 only)
  std::vector<double> weights;
  std::vector<int64_t> kept_mean;      // new ids of kDonor rows whose donor row is all zero: they keep the mean
  int64_t atoms = 0;                   // shared pairs usable on this side (neither row all zero)
  double mean_residual = 0, max_residual = 0;  // omp: |donor row - Σ c·donor atoms| / |donor row|
};

// `old` (V_old, d), `donor` (V_donor, d_donor) of any float dtype; `old_zero` marks the old rows that are
// all zero. Returns (report.rows.size(), d) rows in the solve dtype, on the CPU.
torch::Tensor donor_rows(const torch::Tensor& old, const torch::Tensor& donor, const std::vector<uint8_t>& old_zero,
                         const DonorPlan& plan, DonorSideReport& report, const ProgressFn& progress, const std::string& phase);

}  // namespace lep
