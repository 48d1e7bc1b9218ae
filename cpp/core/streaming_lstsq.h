// Least squares min_P ‖A·P − B‖_F for a tall A (n×d) and B (n×k) that arrive in row chunks, in float64,
// with memory proportional to (d+k)², never n·d. Used by propagation (docs/method.md §4), where n is a
// vocabulary (up to ~175k rows) and d the hidden size (up to 8192).
//
// Two solvers:
//  - kNormal (default): accumulates G = AᵀA and H = AᵀB and solves G·P = H by Cholesky. G is symmetric,
//    so only its upper triangle is accumulated (gram_update.h: the BLAS's dsyrk where libtorch's BLAS has
//    one, else one gemm per 256-row block of G), and H in one gemm per target: about n·d·(d/2 + k)
//    multiply-adds instead of n·d·(d + k) (bench/README.md has the measured speedups). Its error grows
//    with cond(A)². Measured against a direct gelsy solve
//    (torch.linalg.lstsq, float64, 20000 × 1024, B = A·M + noise, singular values log-spaced): max
//    relative error of F·P 5e-15 / 3e-13 / 2e-11 / 2e-9 / 1e-7 at cond(A) 1e1 / 1e2 / 1e3 / 1e4 / 1e5,
//    residuals equal to 6 digits throughout. The result is stored in bf16/f16/f32 (relative rounding
//    4e-3 / 5e-4 / 6e-8), so kNormal is accurate enough up to cond(A) ≈ 1e5 (Gaussian random matrices
//    sit near 1e0; real embedding matrices were not measured here: use kQR when in doubt). At LLaMa-3 scale the streamed normal equations matched the dense gelsy
//    rows to bf16 rounding (bench/propagate-scale.ts, small scale).
//  - kQR: a streaming (TSQR-style) QR of [A | B]: R ← qr_r([R; A_c | B_c]). Error grows with cond(A)
//    only (same runs: 2e-15 … 8e-12) and the residual is exact (‖R22‖_F), but each chunk is a QR of a
//    (d+k+c)×(d+k) matrix: several times the flops of kNormal at LLaMa-3 sizes. For ill-conditioned inputs.
//
// Several right-hand sides B_1 … B_m against one A (one donor propagated into m instruct models, where A
// is the base side): kNormal accumulates G = AᵀA and factors it once, and only H_t = AᵀB_t and the
// triangular solves are per target; kQR factors [A | B_t] per target (a joint QR of [A | B_1 | … | B_m]
// would cost more than m separate ones), sharing only the chunk of A. Each target's arithmetic has the
// same shapes and order whatever m is, so target t's solution is bit for bit the one a single-target
// accumulator gives (test/native/propagate.test.ts checks it end to end, on the CPU: on CUDA the
// scatter of mean-initialised rows, index_add_ with repeated rows, adds in no fixed order, so runs
// agree to float64 rounding, not to the bit).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "core/gram_update.h"

namespace lep {

enum class LstsqSolver { kNormal, kQR };

LstsqSolver lstsq_solver_from_string(const std::string& s);  // "normal" | "qr"; throws lep::Error

struct LstsqSolution {
  torch::Tensor p;        // (d, k) float64, on the accumulator's device
  double residual = 0;    // ‖A·P − B‖_F
  double b_norm = 0;      // ‖B‖_F
  int64_t rows = 0;       // rows added
  bool fell_back = false; // A rank-deficient to working precision: the minimum-norm solution by SVD instead
};

class StreamingLstsq {
 public:
  // max_chunk: the most rows one chunk holds (sizes the reused float64 chunk buffers); targets: how many
  // right-hand sides B_t (each (n, k)) share A.
  StreamingLstsq(int64_t d, int64_t k, LstsqSolver solver, torch::Device device, int64_t max_chunk = 4096, int64_t targets = 1);
  // a: (c, d), b: (c, k); any floating dtype and device (converted to float64 on the accumulator's device).
  // Single-target accumulators only.
  void add(const torch::Tensor& a, const torch::Tensor& b);
  // The chunk buffers, to be filled in place with `rows` ≤ max_chunk rows of A and of each B_t, then
  // add_chunk(rows): views (rows, d) and (rows, k) of float64 buffers reused for every chunk (fresh big
  // buffers cost a page fault per 4 KiB, slower here than the arithmetic on them). Contents are undefined
  // until filled. chunk() is {A, B_0}.
  std::pair<torch::Tensor, torch::Tensor> chunk(int64_t rows);
  torch::Tensor chunk_a(int64_t rows);
  torch::Tensor chunk_b(int64_t target, int64_t rows);
  void add_chunk(int64_t rows);
  // A second accumulator holding the rows added so far (G, H_t, ‖B_t‖² or R_t copied), to which other rows
  // are then added: two systems that share rows accumulate those once (propagate.h, overlap and conversion).
  // The chunk buffers are shared, so the two must be filled and added to one after the other.
  StreamingLstsq fork() const;
  // One solution per target; G is factored once.
  std::vector<LstsqSolution> solve_all() const;
  LstsqSolution solve() const { return solve_all()[0]; }
  int64_t rows() const { return rows_; }
  int64_t targets() const { return static_cast<int64_t>(b_.size()); }
  // How AᵀA is accumulated (kNormal only): the path chosen, or the fallback once a chunk needed it.
  GramPath gram_path() const { return gram_path_; }

 private:
  LstsqSolution solve_qr(int64_t t) const;

  int64_t d_, k_;
  LstsqSolver solver_;
  GramPath gram_path_ = GramPath::kBlocked;
  torch::Device device_;
  int64_t rows_ = 0;
  std::vector<double> bb_;        // ‖B_t‖², accumulated
  torch::Tensor g_;               // kNormal: AᵀA (d, d); only the upper triangle is accumulated
  std::vector<torch::Tensor> h_;  // kNormal: AᵀB_t (d, k)
  torch::Tensor a_;               // the chunk buffer of A (max_chunk, d), float64
  std::vector<torch::Tensor> b_;  // the chunk buffers of B_t (max_chunk, k), float64
  std::vector<torch::Tensor> r_;  // kQR: upper-triangular R of [A | B_t] so far, (≤ d+k, d+k)
};

}  // namespace lep
