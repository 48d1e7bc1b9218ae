#include "core/streaming_lstsq.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/gram_update.h"

namespace lep {

LstsqSolver lstsq_solver_from_string(const std::string& s) {
  if (s == "normal") return LstsqSolver::kNormal;
  if (s == "qr") return LstsqSolver::kQR;
  throw Error("LEP_BAD_ARGUMENT", "least-squares solver must be 'normal' or 'qr', got '" + s + "'");
}

StreamingLstsq::StreamingLstsq(int64_t d, int64_t k, LstsqSolver solver, torch::Device device, int64_t max_chunk, int64_t targets)
    : d_(d), k_(k), solver_(solver), device_(device) {
  TORCH_CHECK(targets >= 1, "StreamingLstsq: targets must be >= 1, got ", targets);
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64).device(device);
  const int64_t c = std::max<int64_t>(1, max_chunk);
  a_ = torch::empty({c, d}, f64);
  if (solver_ == LstsqSolver::kNormal) {
    g_ = torch::zeros({d, d}, f64);
    gram_path_ = choose_gram_path(device);
  }
  bb_.assign(targets, 0.0);
  for (int64_t t = 0; t < targets; ++t) {
    b_.push_back(torch::empty({c, k}, f64));
    if (solver_ == LstsqSolver::kNormal)
      h_.push_back(torch::zeros({d, k}, f64));
    else
      r_.push_back(torch::zeros({0, d + k}, f64));
  }
}

torch::Tensor StreamingLstsq::chunk_a(int64_t rows) {
  TORCH_CHECK(rows >= 0 && rows <= a_.size(0), "StreamingLstsq::chunk: ", rows, " rows exceed the buffer's ", a_.size(0));
  return a_.narrow(0, 0, rows);
}

torch::Tensor StreamingLstsq::chunk_b(int64_t target, int64_t rows) {
  TORCH_CHECK(rows >= 0 && rows <= a_.size(0), "StreamingLstsq::chunk: ", rows, " rows exceed the buffer's ", a_.size(0));
  return b_.at(target).narrow(0, 0, rows);
}

std::pair<torch::Tensor, torch::Tensor> StreamingLstsq::chunk(int64_t rows) { return {chunk_a(rows), chunk_b(0, rows)}; }

void StreamingLstsq::add(const torch::Tensor& a, const torch::Tensor& b) {
  TORCH_CHECK(targets() == 1, "StreamingLstsq::add: only for a single target");
  TORCH_CHECK(a.dim() == 2 && b.dim() == 2 && a.size(0) == b.size(0) && a.size(1) == d_ && b.size(1) == k_,
              "StreamingLstsq::add: shapes ", a.sizes(), " and ", b.sizes(), " do not fit d=", d_, " k=", k_);
  for (int64_t r0 = 0; r0 < a.size(0); r0 += a_.size(0)) {
    const int64_t c = std::min(a_.size(0), a.size(0) - r0);
    auto [ca, cb] = chunk(c);
    ca.copy_(a.narrow(0, r0, c));
    cb.copy_(b.narrow(0, r0, c));
    add_chunk(c);
  }
}

void StreamingLstsq::add_chunk(int64_t rows) {
  if (rows == 0) return;
  auto a = a_.narrow(0, 0, rows);  // (c, d)
  rows_ += rows;
  // G's upper triangle (solve_all() mirrors it), shared by every target.
  // A chunk dsyrk could not take ran blocked gemms: the accumulation then reports that path.
  if (solver_ == LstsqSolver::kNormal) gram_path_ = gram_update(gram_path_, g_, a);
  for (size_t t = 0; t < b_.size(); ++t) {
    auto b = b_[t].narrow(0, 0, rows);  // (c, k)
    const double b_norm = b.norm().item<double>();  // syncs a GPU once per chunk of thousands of rows
    bb_[t] += b_norm * b_norm;
    if (solver_ == LstsqSolver::kNormal) {
      h_[t].addmm_(a.t(), b);
    } else {
      auto m = torch::cat({r_[t], torch::cat({a, b}, 1)}, 0);  // (rows(R) + c, d + k)
      r_[t] = std::get<1>(torch::linalg_qr(m, "r"));          // (min(rows, d+k), d + k)
    }
  }
}

StreamingLstsq StreamingLstsq::fork() const {
  StreamingLstsq c(*this);  // shares every tensor, the chunk buffers included
  if (g_.defined()) c.g_ = g_.clone();
  for (auto& h : c.h_) h = h.clone();
  for (auto& r : c.r_) r = r.clone();
  return c;
}

namespace {

// Relative cutoffs of the rank-deficient fallback. R11 (QR of A) holds A's singular values: directions
// below 1e-13 of the largest are dropped (the test that sends a system here). G = AᵀA holds their squares
// with rounding of about 1e-16 of its largest, so its cutoff sits well above that: 1e-12 drops A's
// directions below 1e-6 of the largest (ones the normal equations cannot resolve; solver qr keeps more).
constexpr double kTriangularRcond = 1e-13;
constexpr double kGramRcond = 1e-12;

// Least squares for a rank-deficient system: the minimum-norm solution over the singular directions above
// `rcond` of the largest, by SVD (gelsd) on the host. gelsy's rank estimate (QR with column pivoting and
// an incremental condition estimate) misjudged exactly rank-deficient systems: a repeated column of the
// base gave rank 9 of 11 in one process and 11 in another, and a head off by 50% (found by a test that
// forces this path). On CUDA, linalg_lstsq has only gels, which assumes full rank; the (d, d) systems
// are small enough to solve anywhere.
torch::Tensor lstsq_rank_deficient(const torch::Tensor& a, const torch::Tensor& b, double rcond) {
  return std::get<0>(torch::linalg_lstsq(a.cpu(), b.cpu(), rcond, "gelsd")).to(a.device());
}

}  // namespace

std::vector<LstsqSolution> StreamingLstsq::solve_all() const {
  std::vector<LstsqSolution> out;
  if (solver_ == LstsqSolver::kQR) {
    for (int64_t t = 0; t < targets(); ++t) out.push_back(solve_qr(t));
    return out;
  }
  auto upper = g_.triu();
  auto g = upper + upper.triu(1).t();  // (d, d) AᵀA, symmetric
  auto [l, info] = torch::linalg_cholesky_ex(g);  // once for every target
  // Singular to working precision also where the factorisation went through on rounding: a pivot (the
  // square of L's diagonal) below kGramRcond of the largest.
  bool fell_back = info.item<int64_t>() != 0;
  if (!fell_back) {
    const auto pivots = l.diagonal().square();
    fell_back = (pivots.min() < kGramRcond * pivots.max()).item<bool>();
  }
  for (int64_t t = 0; t < targets(); ++t) {
    LstsqSolution s;
    s.rows = rows_;
    s.b_norm = std::sqrt(bb_[t]);
    const auto& h = h_[t];  // (d, k) AᵀB_t
    if (!fell_back) {
      s.p = torch::cholesky_solve(h, l);
    } else {
      // A is rank-deficient: G is only semi-definite. The minimum-norm solution of the normal equations
      // is the minimum-norm least-squares solution of the original system (G and A share a null space).
      s.p = lstsq_rank_deficient(g, h, kGramRcond);
      s.fell_back = true;
    }
    // ‖AP − B‖² = ‖B‖² − 2·tr(PᵀH) + tr(PᵀGP); cancellation limits this to about 1e-8·‖B‖ absolute,
    // far below the residuals that matter here (0.01–1 relative).
    const double r2 = bb_[t] - 2 * (s.p * h).sum().item<double>() + (s.p * g.mm(s.p)).sum().item<double>();
    s.residual = std::sqrt(std::max(0.0, r2));
    out.push_back(std::move(s));
  }
  return out;
}

LstsqSolution StreamingLstsq::solve_qr(int64_t t) const {
  LstsqSolution s;
  s.rows = rows_;
  s.b_norm = std::sqrt(bb_[t]);
  auto r = r_[t];
  if (r.size(0) < d_ + k_) r = torch::cat({r, torch::zeros({d_ + k_ - r.size(0), d_ + k_}, r.options())}, 0);
  auto r11 = r.slice(0, 0, d_).slice(1, 0, d_);
  auto r12 = r.slice(0, 0, d_).slice(1, d_);
  auto diag = r11.diagonal().abs();
  const double dmax = diag.max().item<double>();
  if (dmax > 0 && diag.min().item<double>() > kTriangularRcond * dmax) {
    s.p = torch::linalg_solve_triangular(r11, r12, /*upper=*/true);
  } else {
    s.p = lstsq_rank_deficient(r11, r12, kTriangularRcond);
    s.fell_back = true;
  }
  // With R = [R11 R12; 0 R22] from QR of [A | B]: min ‖AP − B‖ = ‖R22‖_F exactly.
  s.residual = r.slice(0, d_).slice(1, d_).norm().item<double>();
  return s;
}

}  // namespace lep
