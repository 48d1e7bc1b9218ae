#include "core/streaming_lstsq.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace lep {

LstsqSolver lstsq_solver_from_string(const std::string& s) {
  if (s == "normal") return LstsqSolver::kNormal;
  if (s == "qr") return LstsqSolver::kQR;
  throw Error("LEP_BAD_ARGUMENT", "least-squares solver must be 'normal' or 'qr', got '" + s + "'");
}

namespace {
// Row-block height of the upper-triangular update: 16 blocks at d = 4096 do 53% of the full product's
// work on G, and each gemm (256 × c × ≥ 256) is still large enough to run at the kernel's speed.
constexpr int64_t kGramBlock = 256;
}  // namespace

StreamingLstsq::StreamingLstsq(int64_t d, int64_t k, LstsqSolver solver, torch::Device device, int64_t max_chunk)
    : d_(d), k_(k), solver_(solver), device_(device) {
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  if (solver_ == LstsqSolver::kNormal)
    gh_ = torch::zeros({d, d + k}, f64);
  else
    r_ = torch::zeros({0, d + k}, f64);
  ab_ = torch::empty({std::max<int64_t>(1, max_chunk), d + k}, f64);
}

std::pair<torch::Tensor, torch::Tensor> StreamingLstsq::chunk(int64_t rows) {
  TORCH_CHECK(rows >= 0 && rows <= ab_.size(0), "StreamingLstsq::chunk: ", rows, " rows exceed the buffer's ", ab_.size(0));
  auto ab = ab_.narrow(0, 0, rows);
  return {ab.narrow(1, 0, d_), ab.narrow(1, d_, k_)};
}

void StreamingLstsq::add(const torch::Tensor& a, const torch::Tensor& b) {
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(0) && a.size(1) == d_ && b.size(1) == k_,
              "StreamingLstsq::add: shapes ", a.sizes(), " and ", b.sizes(), " do not fit d=", d_, " k=", k_);
  for (int64_t r0 = 0; r0 < a.size(0); r0 += ab_.size(0)) {
    const int64_t c = std::min(ab_.size(0), a.size(0) - r0);
    auto [ca, cb] = chunk(c);
    ca.copy_(a.narrow(0, r0, c));
    cb.copy_(b.narrow(0, r0, c));
    add_chunk(c);
  }
}

void StreamingLstsq::add_chunk(int64_t rows) {
  if (rows == 0) return;
  auto ab = ab_.narrow(0, 0, rows);  // (c, d + k) = [A_c | B_c]
  rows_ += rows;
  const double b_norm = ab.narrow(1, d_, k_).norm().item<double>();  // syncs a GPU once per chunk of thousands of rows
  bb_ += b_norm * b_norm;
  if (solver_ == LstsqSolver::kNormal) {
    // Row block [i0, i1) of [G | H] from column i0 on: A[:, i0:i1]ᵀ · [A[:, i0:] | B]. The blocks left of
    // the diagonal are G's lower triangle, never computed; solve() mirrors the upper one.
    for (int64_t i0 = 0; i0 < d_; i0 += kGramBlock) {
      const int64_t i1 = std::min(d_, i0 + kGramBlock);
      gh_.slice(0, i0, i1).slice(1, i0).addmm_(ab.slice(1, i0, i1).t(), ab.slice(1, i0));
    }
  } else {
    auto m = torch::cat({r_, ab}, 0);                    // (rows(R) + c, d + k)
    r_ = std::get<1>(torch::linalg_qr(m, "r"));          // (min(rows, d+k), d + k)
  }
}

LstsqSolution StreamingLstsq::solve() const {
  LstsqSolution s;
  s.rows = rows_;
  s.b_norm = std::sqrt(bb_);
  if (solver_ == LstsqSolver::kNormal) {
    auto upper = gh_.narrow(1, 0, d_).triu();
    auto g = upper + upper.triu(1).t();  // (d, d) AᵀA, symmetric
    auto h = gh_.narrow(1, d_, k_);      // (d, k) AᵀB
    auto [l, info] = torch::linalg_cholesky_ex(g);
    if (info.item<int64_t>() == 0) {
      s.p = torch::cholesky_solve(h, l);
    } else {
      // A is rank-deficient: G is only semi-definite. lstsq on G (gelsy on CPU) picks a solution of the
      // normal equations, which is a least-squares solution of the original system.
      s.p = std::get<0>(torch::linalg_lstsq(g, h));
      s.fell_back = true;
    }
    // ‖AP − B‖² = ‖B‖² − 2·tr(PᵀH) + tr(PᵀGP); cancellation limits this to about 1e-8·‖B‖ absolute,
    // far below the residuals that matter here (0.01–1 relative).
    const double r2 = bb_ - 2 * (s.p * h).sum().item<double>() + (s.p * g.mm(s.p)).sum().item<double>();
    s.residual = std::sqrt(std::max(0.0, r2));
    return s;
  }
  auto r = r_;
  if (r.size(0) < d_ + k_) r = torch::cat({r, torch::zeros({d_ + k_ - r.size(0), d_ + k_}, r.options())}, 0);
  auto r11 = r.slice(0, 0, d_).slice(1, 0, d_);
  auto r12 = r.slice(0, 0, d_).slice(1, d_);
  auto diag = r11.diagonal().abs();
  const double dmax = diag.max().item<double>();
  if (dmax > 0 && diag.min().item<double>() > 1e-13 * dmax) {
    s.p = torch::linalg_solve_triangular(r11, r12, /*upper=*/true);
  } else {
    s.p = std::get<0>(torch::linalg_lstsq(r11, r12));
    s.fell_back = true;
  }
  // With R = [R11 R12; 0 R22] from QR of [A | B]: min ‖AP − B‖ = ‖R22‖_F exactly.
  s.residual = r.slice(0, d_).slice(1, d_).norm().item<double>();
  return s;
}

}  // namespace lep
