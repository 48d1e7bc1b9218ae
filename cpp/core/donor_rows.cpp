#include "core/donor_rows.h"

#include <algorithm>
#include <unordered_set>

#include "core/error.h"
#include "core/sparse_code.h"

namespace lep {

namespace {

// Targets per batch: keeps the (B, N) score matrix and omp's (B, D, k) basis near 2^25 elements each.
int64_t batch_size(int64_t atoms, int64_t dim, int64_t k) {
  const int64_t budget = int64_t{1} << 25;
  return std::max<int64_t>(1, std::min(budget / std::max<int64_t>(atoms, 1), budget / std::max<int64_t>(dim * k, 1)));
}

}  // namespace

torch::Tensor donor_rows(const torch::Tensor& old, const torch::Tensor& donor, const std::vector<uint8_t>& old_zero,
                         const DonorPlan& plan, DonorSideReport& report, const ProgressFn& progress, const std::string& phase) {
  if (donor.dim() != 2) throw Error("LEP_BAD_CHECKPOINT", "the donor's " + phase + " embedding matrix is not 2-D");
  const int64_t donor_vocab = donor.size(0);
  const auto work = torch::TensorOptions().dtype(plan.dtype).device(plan.device);
  // Donor rows that are all zero were never trained: neither an atom nor a target.
  auto donor_zero_t = (donor.ne(0).sum(1) == 0).to(torch::kCPU).contiguous();
  const bool* donor_zero = donor_zero_t.data_ptr<bool>();

  std::vector<int64_t> atom_old, atom_donor;
  std::unordered_set<int64_t> seen_old, seen_donor;  // one atom per token on either side: duplicates are dependent
  for (size_t j = 0; j < plan.shared_old.size(); ++j) {
    const int64_t o = plan.shared_old[j], dn = plan.shared_donor[j];
    if (o < 0 || o >= static_cast<int64_t>(old_zero.size()) || dn < 0 || dn >= donor_vocab)
      throw Error("LEP_BAD_PLAN", "donor pair (" + std::to_string(o) + ", " + std::to_string(dn) +
                                      ") outside the matrices\nHINT: this is a bug in lep's plan builder; please report it.");
    if (old_zero[o] || donor_zero[dn] || !seen_old.insert(o).second || !seen_donor.insert(dn).second) continue;
    atom_old.push_back(o);
    atom_donor.push_back(dn);
  }
  report.atoms = static_cast<int64_t>(atom_old.size());

  std::vector<int64_t> target_donor;
  for (size_t i = 0; i < plan.row_donor.size(); ++i) {
    const int64_t dn = plan.row_donor[i];
    if (dn < 0) continue;
    if (dn >= donor_vocab)
      throw Error("LEP_VOCAB_MISMATCH", "donor id " + std::to_string(dn) + " but the donor's " + phase + " matrix has " +
                                            std::to_string(donor_vocab) + " rows\nHINT: the donor's tokenizer does not belong to its checkpoint.");
    if (donor_zero[dn]) {
      report.kept_mean.push_back(static_cast<int64_t>(i));
      continue;
    }
    report.rows.push_back(static_cast<int64_t>(i));
    target_donor.push_back(dn);
  }
  const int64_t T = static_cast<int64_t>(target_donor.size());
  const int64_t d = old.size(1);
  auto out = torch::empty({T, d}, torch::TensorOptions().dtype(plan.dtype));
  report.offsets.assign(1, 0);
  if (T == 0) return out;
  const int64_t k = std::min<int64_t>(plan.k, report.atoms);
  if (report.atoms == 0)
    throw Error("LEP_DONOR_NO_OVERLAP", "the donor and the model share no token with a usable " + phase +
                                            " row\nHINT: the donor must have tokens in common with the model (by string); pass a donor with a related vocabulary.");

  auto idx_old = torch::tensor(atom_old, torch::kLong);
  auto idx_donor = torch::tensor(atom_donor, torch::kLong);
  const auto atoms = donor.index_select(0, idx_donor).to(work);     // (N, d_donor)
  const auto old_atoms = old.index_select(0, idx_old).to(work);     // (N, d)
  const double rel_eps = plan.dtype == torch::kFloat64 ? 1e-12 : 1e-6;
  const int64_t step = batch_size(report.atoms, donor.size(1), plan.method == DonorMethod::kOmp ? k : 1);
  double residual_sum = 0;
  for (int64_t b0 = 0; b0 < T; b0 += step) {
    const int64_t b1 = std::min(T, b0 + step);
    std::vector<int64_t> ids(target_donor.begin() + b0, target_donor.begin() + b1);
    auto y = donor.index_select(0, torch::tensor(ids, torch::kLong)).to(work);  // (B, d_donor)
    SparseCode code = plan.method == DonorMethod::kOmp ? omp_code(y, atoms, k, rel_eps) : focus_code(y, atoms);
    // (B, m, d) rows of the chosen shared tokens, weighted: the same coefficients in the old model's space.
    auto rows = torch::bmm(code.coeffs.unsqueeze(1), old_atoms.index({code.indices})).squeeze(1);
    out.narrow(0, b0, b1 - b0).copy_(rows.to(torch::kCPU));
    if (plan.method == DonorMethod::kOmp) {
      auto approx = torch::bmm(code.coeffs.unsqueeze(1), atoms.index({code.indices})).squeeze(1);
      auto rel = ((y - approx).norm(2, 1) / y.norm(2, 1)).to(torch::kCPU, torch::kFloat64).contiguous();
      const double* r = rel.data_ptr<double>();
      for (int64_t i = 0; i < b1 - b0; ++i) {
        residual_sum += r[i];
        report.max_residual = std::max(report.max_residual, r[i]);
      }
    }
    auto ci = code.indices.to(torch::kCPU).contiguous();
    auto cw = code.coeffs.to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t m = ci.size(1);
    const int64_t* pi = ci.data_ptr<int64_t>();
    const double* pw = cw.data_ptr<double>();
    for (int64_t i = 0; i < b1 - b0; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        if (pw[i * m + j] == 0) continue;  // focus: outside the support; omp: a dependent atom
        report.old_ids.push_back(atom_old[pi[i * m + j]]);
        report.weights.push_back(pw[i * m + j]);
      }
      report.offsets.push_back(static_cast<int64_t>(report.old_ids.size()));
    }
    if (progress && !progress(ProgressEvent{phase + " donor", b1, T, {}})) throw Error("LEP_ABORTED", "embedding initialisation aborted");
  }
  report.mean_residual = plan.method == DonorMethod::kOmp ? residual_sum / T : 0;
  return out;
}

}  // namespace lep
