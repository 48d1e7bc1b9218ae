#include "core/sparse_code.h"

#include <limits>

namespace lep {

SparseCode omp_code(const torch::Tensor& y, const torch::Tensor& atoms, int64_t k, double rel_eps) {
  TORCH_CHECK(y.dim() == 2 && atoms.dim() == 2 && y.size(1) == atoms.size(1), "omp_code: shapes");
  TORCH_CHECK(k >= 1 && k <= atoms.size(0), "omp_code: k outside [1, N]");
  const int64_t B = y.size(0), D = y.size(1), N = atoms.size(0);
  const auto opts = y.options();
  auto q = torch::zeros({B, D, k}, opts);     // orthonormal basis of the chosen atoms, column per step
  auto r = torch::zeros({B, k, k}, opts);     // chosen atoms = q r (upper triangular r)
  auto chosen = torch::zeros({B, k}, opts.dtype(torch::kLong));
  auto taken = torch::zeros({B, N}, opts.dtype(torch::kBool));
  auto batch = torch::arange(B, opts.dtype(torch::kLong));
  auto residual = y.clone();
  const auto atoms_t = atoms.t();
  for (int64_t t = 0; t < k; ++t) {
    auto score = residual.matmul(atoms_t).abs_();  // (B, N)
    score.masked_fill_(taken, -std::numeric_limits<double>::infinity());
    auto idx = score.argmax(1);
    chosen.select(1, t).copy_(idx);
    taken.index_put_({batch, idx}, true);
    auto a = atoms.index_select(0, idx);  // (B, D)
    auto v = a.clone();
    if (t > 0) {
      // Classical Gram-Schmidt twice ("CGS2"): one pass loses orthogonality when atoms are nearly
      // parallel, which near-duplicate embedding rows are; the second pass restores it to rounding level.
      auto qt = q.narrow(2, 0, t);
      auto proj = torch::zeros({B, t}, opts);
      for (int pass = 0; pass < 2; ++pass) {
        auto p = torch::bmm(qt.transpose(1, 2), v.unsqueeze(-1)).squeeze(-1);  // (B, t)
        v = v - torch::bmm(qt, p.unsqueeze(-1)).squeeze(-1);
        proj += p;
      }
      r.select(2, t).narrow(1, 0, t).copy_(proj);
    }
    auto norm = v.norm(2, 1);                                          // (B)
    auto dependent = norm <= a.norm(2, 1) * rel_eps;                   // the atom is already in the span
    auto safe = torch::where(dependent, torch::ones_like(norm), norm);
    // A dependent atom keeps r_tt = 1 and a zero basis vector: its coefficient solves to 0.
    r.select(2, t).select(1, t).copy_(safe);
    q.select(2, t).copy_(torch::where(dependent.unsqueeze(1), torch::zeros_like(v), v / safe.unsqueeze(1)));
    auto qk = q.narrow(2, 0, t + 1);
    residual = y - torch::bmm(qk, torch::bmm(qk.transpose(1, 2), y.unsqueeze(-1))).squeeze(-1);
  }
  auto rhs = torch::bmm(q.transpose(1, 2), y.unsqueeze(-1));  // (B, k, 1)
  auto coeffs = at::linalg_solve_triangular(r, rhs, /*upper=*/true).squeeze(-1);
  return {chosen, coeffs};
}

torch::Tensor sparsemax(const torch::Tensor& z) {
  const int64_t N = z.size(1);
  auto sorted = std::get<0>(z.sort(1, /*descending=*/true));
  auto cum = sorted.cumsum(1);
  auto rank = torch::arange(1, N + 1, z.options());
  // The support is the prefix of the sorted row where 1 + j·z_(j) > Σ_{i<=j} z_(i).
  auto support = (rank * sorted + 1 > cum).sum(1, /*keepdim=*/true);  // (B, 1) int64, >= 1
  auto tau = (cum.gather(1, support - 1) - 1) / support.to(z.scalar_type());
  return (z - tau).clamp_min(0);
}

SparseCode focus_code(const torch::Tensor& y, const torch::Tensor& atoms) {
  auto yn = y / y.norm(2, 1, true).clamp_min(1e-30);
  auto an = atoms / atoms.norm(2, 1, true).clamp_min(1e-30);
  auto w = sparsemax(yn.matmul(an.t()));  // (B, N)
  const int64_t m = (w > 0).sum(1).max().item<int64_t>();
  auto top = w.topk(std::max<int64_t>(m, 1), 1);
  return {std::get<1>(top), std::get<0>(top)};
}

}  // namespace lep
