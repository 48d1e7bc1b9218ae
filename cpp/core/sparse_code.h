// Sparse codes of target vectors over a dictionary of atoms (rows), batched, in the tensors' own dtype and
// on their device (CPU or CUDA): the two donor-space solves of `lep init --rule omp|focus`
// (docs/method.md §2, "Donor rules").
//
//   omp:   Orthogonal Matching Pursuit (Pati et al. 1993), the formulation mergekit-tokensurgeon uses:
//          k greedy steps, each picking the not yet chosen atom with the largest |<residual, atom>|, then
//          the least-squares coefficients of the target on all chosen atoms (kept as an incremental
//          Gram-Schmidt QR of the chosen atoms, so a step costs one (B,N) product and O(B·D·k)).
//   focus: FOCUS (Dobler & de Melo 2023): weights = sparsemax of the cosine similarities between the
//          target and every atom.
//
// Hand-written rather than taken from a library: libtorch has no OMP or sparsemax, and the batched form
// (many targets against one dictionary, one matrix product per step) is what makes it fast on a GPU.
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace lep {

struct SparseCode {
  torch::Tensor indices;  // (B, m) int64 atom indices; for focus, entries past a row's support have weight 0
  torch::Tensor coeffs;   // (B, m) in the solve dtype
};

// targets (B, D), atoms (N, D): same floating dtype and device; 1 <= k <= N. Atoms that add nothing to the
// span of those chosen before (relative norm below `rel_eps` after orthogonalisation) get coefficient 0.
SparseCode omp_code(const torch::Tensor& targets, const torch::Tensor& atoms, int64_t k, double rel_eps);

// Row-wise sparsemax (Martins & Astudillo 2016) of z (B, N): the Euclidean projection onto the simplex.
torch::Tensor sparsemax(const torch::Tensor& z);

// FOCUS weights: sparsemax over cosine similarities; m = the largest support in the batch.
SparseCode focus_code(const torch::Tensor& targets, const torch::Tensor& atoms);

}  // namespace lep
