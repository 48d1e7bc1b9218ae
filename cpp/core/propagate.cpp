#include "core/propagate.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>

#include "core/checkpoint.h"
#include "core/checkpoint_rewrite.h"
#include "core/device.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "core/torch_failure.h"

namespace lep {

PropagateMethod propagate_method_from_string(const std::string& s) {
  if (s == "swap") return PropagateMethod::kSwap;
  if (s == "overlap") return PropagateMethod::kOverlap;
  if (s == "conversion") return PropagateMethod::kConversion;
  throw Error("LEP_BAD_ARGUMENT", "propagation method must be swap, overlap or conversion, got '" + s + "'");
}

namespace {

const char* const kEmbed = "model.embed_tokens.weight";
const char* const kHead = "lm_head.weight";

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

using Weights = std::map<std::string, torch::Tensor>;

// Drops this process's page-table entries for a read-only mmap'd view (the kernel keeps the pages in
// its cache; a later read faults them back in cheaply). Without it every byte of the three models'
// embeddings read once stays in our resident set (7 GB at LLaMa-3 sizes), which is reclaimable but
// makes the peak RSS say nothing about what the job needs. Only for views of SafetensorsFile mappings
// (PROT_READ, MAP_PRIVATE): on heap memory MADV_DONTNEED would zero the data.
void release_mapped_pages(const torch::Tensor& mapped_view) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(mapped_view.data_ptr());
  const uintptr_t end = begin + mapped_view.numel() * mapped_view.element_size();
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

const torch::Tensor* find(const Weights& w, const char* name) {
  auto it = w.find(name);
  return it == w.end() ? nullptr : &it->second;
}

const torch::Tensor& need(const Weights& w, const char* name, const std::string& role, const std::vector<std::string>& files) {
  const torch::Tensor* t = find(w, name);
  if (!t)
    throw Error("LEP_MISSING_TENSOR", "the " + role + " model (" + (files.empty() ? std::string("no files") : files[0]) +
                                          (files.size() > 1 ? " and " + std::to_string(files.size() - 1) + " more" : "") +
                                          ") lacks tensor '" + name +
                                          "'\nHINT: propagation needs the embedding matrices of all three models in Hugging Face names.");
  if (t->dim() != 2 || !t->is_floating_point())
    throw Error("LEP_SHAPE_MISMATCH", "the " + role + " model's '" + name + "' is not a floating-point matrix");
  return *t;
}

void check_range(const std::vector<int64_t>& v, int64_t limit, const std::string& what) {
  for (int64_t x : v)
    if (x < 0 || x >= limit)
      throw Error("LEP_BAD_ARGUMENT", what + " holds id " + std::to_string(x) + ", outside [0, " + std::to_string(limit) + ")");
}

torch::Tensor ids(const std::vector<int64_t>& v, size_t from, size_t to) {
  return torch::tensor(std::vector<int64_t>(v.begin() + from, v.begin() + to), torch::kInt64);
}

// Reports a chunk of a phase; the caller's abort becomes LEP_ABORTED at this chunk boundary.
void step(const ProgressFn& progress, const std::string& phase, int64_t done, int64_t total, int side) {
  if (progress && !progress(ProgressEvent{phase, done, total, {{"side", static_cast<double>(side)}}}))
    throw Error("LEP_ABORTED", "propagation was aborted");
}

struct Side {
  std::string name, tensor;
  torch::Tensor base, donor;        // mmap'd views, (rows, d) in their file dtypes
  std::vector<torch::Tensor> inst;  // one per target, likewise
};

// Reports a chunk of a target's phase, with the target's index among the events' values.
ProgressFn for_target(const ProgressFn& progress, size_t target) {
  if (!progress) return progress;
  return [progress, target](const ProgressEvent& e) {
    ProgressEvent ev = e;
    ev.values["target"] = static_cast<double>(target);
    return progress(ev);
  };
}

// Reused per side: big fresh buffers cost a page fault per 4 KiB, which here is slower than the arithmetic
// done on them (docs/architecture.md, "Fresh memory is slow"), so every chunk-sized tensor lives in one of these.
class Buffers {
 public:
  Buffers(int64_t rows, int64_t d, torch::Device dev) : rows_(rows), d_(d), dev_(dev) {}
  // (n, d) scratch of `dtype` on `where`, n ≤ rows; slot tells apart buffers used at the same time.
  torch::Tensor get(int slot, int64_t n, torch::ScalarType dtype, torch::Device where) {
    auto& t = slots_[slot];
    if (!t.defined() || t.scalar_type() != dtype || t.device() != where)
      t = torch::empty({rows_, d_}, torch::TensorOptions().dtype(dtype).device(where));
    return t.narrow(0, 0, n);
  }
  torch::Tensor f64(int slot, int64_t n) { return get(slot, n, torch::kFloat64, dev_); }

 private:
  int64_t rows_, d_;
  torch::Device dev_;
  std::map<int, torch::Tensor> slots_;
};

// Rows [r0, r1) of a mapped matrix converted into a reused float64 buffer on the job's device.
torch::Tensor rows_f64(Buffers& buf, int slot, const torch::Tensor& m, int64_t r0, int64_t r1) {
  auto x = buf.f64(slot, r1 - r0);
  x.copy_(m.slice(0, r0, r1));
  return x;
}

// Rows `idx` of a mapped matrix, gathered in its file dtype, into `dst` (float64, (n, d)).
void gather_into(Buffers& buf, const torch::Tensor& m, const torch::Tensor& idx, const torch::Tensor& dst) {
  auto src = buf.get(10 + static_cast<int>(m.scalar_type()), idx.size(0), m.scalar_type(), torch::kCPU);
  torch::index_select_out(src, m, 0, idx);
  dst.copy_(src);
}

// Pearson correlation of E_base and E_inst over their first `rows` rows, all elements pooled. An instruct
// model fine-tuned from the base keeps its embeddings close (≥ 0.9 in practice); unrelated models give ≈ 0.
double correlation(const torch::Tensor& base, const torch::Tensor& inst, int64_t chunk, Buffers& buf, const ProgressFn& progress, int side) {
  const int64_t rows = std::min(base.size(0), inst.size(0));
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk);
    auto x = rows_f64(buf, 0, base, r0, r1).view(-1);
    auto y = rows_f64(buf, 1, inst, r0, r1).view(-1);
    auto sums = torch::stack({x.sum(), y.sum(), x.dot(x), y.dot(y), x.dot(y)}).cpu();  // dot: no temporaries
    auto a = sums.accessor<double, 1>();
    sx += a[0], sy += a[1], sxx += a[2], syy += a[3], sxy += a[4];
    release_mapped_pages(base.slice(0, r0, r1));
    release_mapped_pages(inst.slice(0, r0, r1));
    step(progress, "correlation", r1, rows, side);
  }
  const double n = static_cast<double>(rows) * base.size(1);
  const double den = std::sqrt(std::max(0.0, n * sxx - sx * sx)) * std::sqrt(std::max(0.0, n * syy - sy * sy));
  return den > 0 ? (n * sxy - sx * sy) / den : 0;
}

// Which rows each system is built from (the same on both sides). With both methods in one job the
// identity rows they share are listed once (propagate.h); otherwise shared_old is empty, overlap_old holds
// every pair and conversion_rows every row of T, in the order a one-method job adds them.
struct SystemPlan {
  bool overlap = false, conversion = false;   // which systems some target needs
  std::vector<int64_t> shared_old;             // old ids: identity rows of both systems
  std::vector<int64_t> overlap_old;            // old ids: overlap's other pairs
  std::vector<int64_t> conversion_rows;        // donor ids: conversion's other rows of T
  int64_t conversion_system_rows = 0;          // non-empty rows of T
};

SystemPlan plan_systems(const PropagateOptions& o, int64_t donor_rows) {
  SystemPlan p;
  for (const auto& t : o.targets) {
    p.overlap |= t.method == PropagateMethod::kOverlap;
    p.conversion |= t.method == PropagateMethod::kConversion;
  }
  const int64_t n = p.conversion ? static_cast<int64_t>(o.t_offsets.size()) - 1 : 0;
  // Sharing needs each donor id at most once among the overlap pairs (it is: one pair per decoded string).
  std::vector<int64_t> pair_of;
  bool share = p.overlap && p.conversion;
  if (share) {
    pair_of.assign(donor_rows, -1);
    for (size_t j = 0; j < o.overlap_new.size() && share; ++j) {
      share = pair_of[o.overlap_new[j]] < 0;
      pair_of[o.overlap_new[j]] = static_cast<int64_t>(j);
    }
  }
  std::vector<bool> shared_pair(o.overlap_new.size(), false);
  for (int64_t r = 0; r < n; ++r) {
    const int64_t b = o.t_offsets[r], e = o.t_offsets[r + 1];
    p.conversion_system_rows += e > b;
    const int64_t j = share ? pair_of[r] : -1;
    if (j >= 0 && e - b == 1 && o.t_indices[b] == o.overlap_old[j]) {
      p.shared_old.push_back(o.overlap_old[j]);
      shared_pair[j] = true;
    } else {
      p.conversion_rows.push_back(r);
    }
  }
  if (p.overlap)
    for (size_t j = 0; j < o.overlap_old.size(); ++j)
      if (!shared_pair[j]) p.overlap_old.push_back(o.overlap_old[j]);
  return p;
}

// The solve phase's progress: rows added to every system of the side so far, of all of them.
struct SolveProgress {
  const ProgressFn& progress;
  int side;
  int64_t total, done = 0;
  void add(int64_t rows) { step(progress, "solve", done += rows, total, side); }
};

// Identity rows E_base[c] and E_inst[c] for the old ids `old_ids` (overlap pairs), a chunk at a time;
// models[k] is the target whose instruct model is the accumulator's right-hand side k.
void add_identity_rows(const PropagateOptions& o, const Side& s, const std::vector<size_t>& models, const std::vector<int64_t>& old_ids,
                       StreamingLstsq& ls, Buffers& buf, SolveProgress& pr) {
  const int64_t n = static_cast<int64_t>(old_ids.size());
  for (int64_t j0 = 0; j0 < n; j0 += o.chunk_rows) {
    const int64_t j1 = std::min(n, j0 + o.chunk_rows);
    auto idx = ids(old_ids, j0, j1);
    gather_into(buf, s.base, idx, ls.chunk_a(j1 - j0));  // E_base[C] (c, d)
    for (size_t k = 0; k < models.size(); ++k) gather_into(buf, s.inst[models[k]], idx, ls.chunk_b(k, j1 - j0));  // E_inst[C]
    ls.add_chunk(j1 - j0);
    pr.add(j1 - j0);
  }
}

// Rows T[r]·E_base and T[r]·E_inst for the donor ids `rows` (ascending), a chunk of rows at a time.
void add_averaged_rows(const PropagateOptions& o, const Side& s, const std::vector<size_t>& models, const std::vector<int64_t>& rows,
                       torch::Device dev, StreamingLstsq& ls, Buffers& buf, SolveProgress& pr) {
  const int64_t n = static_cast<int64_t>(rows.size());
  std::vector<int64_t> row_of, old;  // T's entries of a chunk: row in the chunk, old id, weight
  std::vector<double> weight;
  for (int64_t i0 = 0, chunks = 0; i0 < n; i0 += o.chunk_rows, ++chunks) {
    const int64_t i1 = std::min(n, i0 + o.chunk_rows);
    // (matrix, its rows of the system): the base into A, each instruct model into its B_k.
    std::vector<std::pair<const torch::Tensor*, torch::Tensor>> dsts{{&s.base, ls.chunk_a(i1 - i0)}};
    for (size_t k = 0; k < models.size(); ++k) dsts.emplace_back(&s.inst[models[k]], ls.chunk_b(k, i1 - i0));
    for (auto& [src, dst] : dsts) dst.zero_();  // empty T rows stay zero rows of both sides: they change neither AᵀA nor AᵀB
    row_of.clear(), old.clear(), weight.clear();
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t b = o.t_offsets[rows[i]], e = o.t_offsets[rows[i] + 1];
      for (int64_t k = b; k < e; ++k) {
        row_of.push_back(i - i0);
        old.push_back(o.t_indices[k]);
        weight.push_back(1.0 / static_cast<double>(e - b));
      }
    }
    // At most chunk_rows entries at a time (a row of T averages several old rows).
    const int64_t nnz = static_cast<int64_t>(old.size());
    for (int64_t k0 = 0; k0 < nnz; k0 += o.chunk_rows) {
      const int64_t k1 = std::min(nnz, k0 + o.chunk_rows);
      auto idx = ids(old, k0, k1);
      auto at = ids(row_of, k0, k1).to(dev);
      auto w = torch::tensor(std::vector<double>(weight.begin() + k0, weight.begin() + k1), torch::kFloat64).to(dev).unsqueeze(1);  // (nnz, 1)
      for (auto& [src, dst] : dsts) {
        auto x = buf.f64(0, k1 - k0);
        gather_into(buf, *src, idx, x);
        dst.index_add_(0, at, x.mul_(w));  // (c, d) += T[rows, entries] · E[entries]
      }
    }
    ls.add_chunk(i1 - i0);
    if (chunks % 16 == 15)  // gathers jump around the old vocabulary: drop the pages now and then
      for (auto& [src, dst] : dsts) release_mapped_pages(*src);
    pr.add(i1 - i0);
  }
}

// Builds and solves the side's systems (plan_systems) over a shared base side, one right-hand side per
// distinct instruct model of the non-swap targets; returns P (d, d) per target (undefined for swap) and
// fills each target's report. model_of[t]: target t's instruct model, as the index of the first target
// that names the same files. A system that cannot be solved (fewer rows than d) fails its method's
// targets only (`failed`: code and message per target), not the other methods of the job.
std::vector<torch::Tensor> solve(const PropagateOptions& o, const SystemPlan& plan, const std::vector<size_t>& model_of, const Side& s,
                                 torch::Device dev, Buffers& buf, const ProgressFn& progress, int side, std::vector<PropagateSideReport>& reps,
                                 std::vector<std::pair<std::string, std::string>>& failed) {
  std::vector<torch::Tensor> ps(o.targets.size());
  if (!plan.overlap && !plan.conversion) return ps;
  const int64_t d = s.base.size(1);
  std::vector<size_t> models;  // right-hand side k -> the target whose model it is
  std::vector<int64_t> rhs(o.targets.size(), -1);
  for (size_t t = 0; t < o.targets.size(); ++t) {
    if (o.targets[t].method == PropagateMethod::kSwap) continue;
    auto it = std::find(models.begin(), models.end(), model_of[t]);
    rhs[t] = it - models.begin();
    if (it == models.end()) models.push_back(model_of[t]);
  }
  const auto count = [](const std::vector<int64_t>& v) { return static_cast<int64_t>(v.size()); };
  SolveProgress pr{progress, side, count(plan.shared_old) + count(plan.overlap_old) + count(plan.conversion_rows)};
  StreamingLstsq ls(d, d, o.solver, dev, o.chunk_rows, static_cast<int64_t>(models.size()));
  add_identity_rows(o, s, models, plan.shared_old, ls, buf, pr);
  // With both systems: `ls` goes on as overlap's, its fork as conversion's.
  std::optional<StreamingLstsq> fork;
  if (plan.overlap && plan.conversion) fork.emplace(ls.fork());
  if (plan.overlap) add_identity_rows(o, s, models, plan.overlap_old, ls, buf, pr);
  StreamingLstsq& conversion = fork ? *fork : ls;
  if (plan.conversion) add_averaged_rows(o, s, models, plan.conversion_rows, dev, conversion, buf, pr);
  release_mapped_pages(s.base);
  for (const auto& inst : s.inst) release_mapped_pages(inst);

  for (const PropagateMethod method : {PropagateMethod::kOverlap, PropagateMethod::kConversion}) {
    if (!(method == PropagateMethod::kOverlap ? plan.overlap : plan.conversion)) continue;
    const StreamingLstsq& sys = method == PropagateMethod::kOverlap ? ls : conversion;
    const int64_t system_rows = method == PropagateMethod::kOverlap ? sys.rows() : plan.conversion_system_rows;
    if (system_rows < d) {
      const std::string message = "the " + std::string(method == PropagateMethod::kOverlap ? "overlap" : "conversion") +
                                  " system has " + std::to_string(system_rows) + " rows, fewer than the hidden size " +
                                  std::to_string(d) + ": the map is not determined" +
                                  "\nHINT: the donor and base vocabularies share too few tokens; check that the donor tokenizer was made from the base tokenizer.";
      for (size_t t = 0; t < o.targets.size(); ++t)
        if (o.targets[t].method == method && failed[t].first.empty()) failed[t] = {"LEP_TOO_FEW_ROWS", message};
      continue;
    }
    auto sols = sys.solve_all();
    for (size_t t = 0; t < o.targets.size(); ++t) {
      if (o.targets[t].method != method) continue;
      const LstsqSolution& sol = sols[rhs[t]];
      reps[t].system_rows = system_rows;
      reps[t].residual = sol.b_norm > 0 ? sol.residual / sol.b_norm : 0;
      reps[t].solver_fell_back = sol.fell_back;
      if (o.solver == LstsqSolver::kNormal) reps[t].gram = gram_path_name(sys.gram_path());
      ps[t] = sol.p;
    }
  }
  return ps;
}

// The dtype F·P is computed in. P is solved in float64; applying it in float32 to a bf16/f16 output costs
// at most ~d·2⁻²⁴ relative (4096 · 6e-8 = 2.4e-4 in the worst case, ~1e-6 typically), far below the
// output's own rounding (2⁻⁹ = 2e-3 for bf16, 2⁻¹² for f16; test/native/propagate.test.ts checks it on
// bf16 rows against the float64 reference), and float32 gemm runs about twice as fast. A float32 or
// float64 output keeps the float64 product.
torch::ScalarType apply_dtype(torch::ScalarType out) {
  return out == torch::kBFloat16 || out == torch::kHalf ? torch::kFloat32 : torch::kFloat64;
}

// The side's new matrix (out_rows, d) in the instruct dtype: donor rows mapped by P (or copied for swap),
// then the copied rows from the target's instruct model `inst`.
torch::Tensor apply(const PropagateOptions& o, const PropagateTarget& tg, const Side& s, const torch::Tensor& inst, const torch::Tensor& p,
                    torch::Device dev, Buffers& buf, const ProgressFn& progress, int side) {
  const int64_t nd = s.donor.size(0), d = s.donor.size(1);
  auto out = torch::empty({tg.out_rows, d}, torch::TensorOptions().dtype(inst.scalar_type()));
  const auto dt = apply_dtype(out.scalar_type());
  auto pc = p.defined() ? p.to(dev, dt) : p;  // (d, d)
  for (int64_t r0 = 0; r0 < nd; r0 += o.chunk_rows) {
    const int64_t r1 = std::min(nd, r0 + o.chunk_rows);
    auto f = s.donor.slice(0, r0, r1);
    if (pc.defined()) {
      auto x = buf.get(0, r1 - r0, dt, dev);
      x.copy_(f);
      auto y = buf.get(1, r1 - r0, dt, dev);
      torch::mm_out(y, x, pc);            // (c, d)·(d, d)
      out.slice(0, r0, r1).copy_(y);      // rounds to the output dtype
    } else {
      out.slice(0, r0, r1).copy_(f);  // swap: exact when donor and instruct share a dtype
    }
    release_mapped_pages(f);
    step(progress, "apply", r1, nd, side);
  }
  if (!tg.copy_to.empty()) {
    auto to = ids(tg.copy_to, 0, tg.copy_to.size());
    out.index_copy_(0, to, inst.index_select(0, ids(tg.copy_from, 0, tg.copy_from.size())).to(out.scalar_type()));
  }
  return out;
}

// Mean cosine between the final rows of overlap tokens and the instruct model's own rows for them. Its
// chunks live in reused buffers: at LLaMa-3 sizes the pass gathers 128000 rows, and fresh float64 chunks
// (five 134 MB tensors per chunk) cost more in page faults than the arithmetic.
double overlap_cosine(const PropagateOptions& o, const torch::Tensor& inst, const torch::Tensor& out, Buffers& buf, int64_t& pairs) {
  pairs = static_cast<int64_t>(o.overlap_new.size());
  if (pairs == 0) return 0;
  double sum = 0;
  for (int64_t j0 = 0; j0 < pairs; j0 += o.chunk_rows) {
    const int64_t j1 = std::min(pairs, j0 + o.chunk_rows);
    auto x = buf.get(0, j1 - j0, torch::kFloat64, torch::kCPU);
    auto y = buf.get(1, j1 - j0, torch::kFloat64, torch::kCPU);
    gather_into(buf, out, ids(o.overlap_new, j0, j1), x);
    gather_into(buf, inst, ids(o.overlap_old, j0, j1), y);
    auto den = (x.norm(2, 1) * y.norm(2, 1)).clamp_min(1e-300);
    auto xy = buf.get(2, j1 - j0, torch::kFloat64, torch::kCPU);
    torch::mul_out(xy, x, y);
    sum += (xy.sum(1) / den).sum().item<double>();
  }
  release_mapped_pages(inst);
  return sum / static_cast<double>(pairs);
}

// Which target's model a message is about, when there are several.
std::string target_name(const PropagateOptions& o, size_t t) {
  return o.targets.size() > 1 ? " (target " + std::to_string(t + 1) + " of " + std::to_string(o.targets.size()) + ", " + o.targets[t].out_dir + ")" : "";
}

void validate(const PropagateOptions& o, const std::vector<Side>& sides) {
  const Side& s0 = sides[0];
  const int64_t d = s0.base.size(1);
  for (const Side& s : sides)
    for (size_t t = 0; t < o.targets.size(); ++t) {
      if (s.inst[t].size(1) != d || s.donor.size(1) != d || s.base.size(1) != d)
        throw Error("LEP_SHAPE_MISMATCH", "hidden sizes differ in '" + s.tensor + "': base " + std::to_string(s.base.size(1)) +
                                              ", donor " + std::to_string(s.donor.size(1)) + ", instruct " +
                                              std::to_string(s.inst[t].size(1)) + target_name(o, t) +
                                              "\nHINT: the instruct model must be derived from the base, and the donor trained from that base.");
      if (s.base.size(0) != s0.base.size(0) || s.inst[t].size(0) != s0.inst[t].size(0) || s.donor.size(0) != s0.donor.size(0))
        throw Error("LEP_SHAPE_MISMATCH", "'" + s.tensor + "' and '" + s0.tensor + "' have different row counts in one model" + target_name(o, t));
    }
  const int64_t nd = s0.donor.size(0);
  int64_t old_rows = s0.base.size(0);
  for (const auto& inst : s0.inst) old_rows = std::min(old_rows, inst.size(0));
  if (std::any_of(o.targets.begin(), o.targets.end(), [](const PropagateTarget& t) { return t.method == PropagateMethod::kConversion; })) {
    if (o.t_offsets.empty() || static_cast<int64_t>(o.t_offsets.size()) > nd + 1 || o.t_offsets[0] != 0 ||
        o.t_offsets.back() != static_cast<int64_t>(o.t_indices.size()))
      throw Error("LEP_BAD_ARGUMENT", "the averaging map needs 1 to donor-rows + 1 offsets, from 0 to the index count");
    for (size_t i = 1; i < o.t_offsets.size(); ++i)
      if (o.t_offsets[i] < o.t_offsets[i - 1]) throw Error("LEP_BAD_ARGUMENT", "the averaging map's offsets decrease");
    check_range(o.t_indices, old_rows, "the averaging map");
  }
  if (o.overlap_new.size() != o.overlap_old.size()) throw Error("LEP_BAD_ARGUMENT", "overlap id lists differ in length");
  check_range(o.overlap_new, nd, "the overlap set (donor ids)");
  check_range(o.overlap_old, old_rows, "the overlap set (old ids)");
  for (size_t t = 0; t < o.targets.size(); ++t) {
    const PropagateTarget& tg = o.targets[t];
    if (tg.out_dir.empty()) throw Error("LEP_BAD_ARGUMENT", "propagate needs an output directory per target" + target_name(o, t));
    if (tg.out_rows < nd)
      throw Error("LEP_BAD_ARGUMENT", "out_rows " + std::to_string(tg.out_rows) + " is below the donor's " + std::to_string(nd) + " rows" + target_name(o, t));
    if (tg.copy_to.size() != tg.copy_from.size()) throw Error("LEP_BAD_ARGUMENT", "copied-row id lists differ in length" + target_name(o, t));
    check_range(tg.copy_to, tg.out_rows, "the copied rows (output ids)" + target_name(o, t));
    check_range(tg.copy_from, s0.inst[t].size(0), "the copied rows (instruct ids)" + target_name(o, t));
    std::vector<bool> covered(tg.out_rows - nd, false);
    for (int64_t r : tg.copy_to)
      if (r >= nd) covered[r - nd] = true;
    for (size_t i = 0; i < covered.size(); ++i)
      if (!covered[i])
        throw Error("LEP_BAD_ARGUMENT", "output row " + std::to_string(nd + i) + " is past the donor's rows but is not copied from the instruct model" + target_name(o, t));
  }
  if (o.chunk_rows <= 0) throw Error("LEP_BAD_ARGUMENT", "chunk_rows must be positive");
}

// Writes one target: F·P_t per side, overlap cosines, the rewritten checkpoint.
void write_target(const PropagateOptions& o, size_t t, const std::vector<Side>& sides, const std::vector<std::vector<torch::Tensor>>& ps,
                  torch::Device dev, const ProgressFn& progress, PropagateTargetReport& rep) {
  const PropagateTarget& tg = o.targets[t];
  std::map<std::string, torch::Tensor> replace;
  for (size_t i = 0; i < sides.size(); ++i) {
    const Side& s = sides[i];
    auto t0 = Clock::now();
    Buffers buf(o.chunk_rows, s.base.size(1), dev);
    auto out = apply(o, tg, s, s.inst[t], ps[i][t], dev, buf, progress, static_cast<int>(i));
    const auto t_cosine = Clock::now();
    Buffers cpu_buf(o.chunk_rows, s.base.size(1), torch::kCPU);  // `out` is on the CPU; allocated only when used
    rep.sides[i].overlap_cosine = overlap_cosine(o, s.inst[t], out, dev.is_cpu() ? buf : cpu_buf, rep.sides[i].overlap_rows);
    rep.sides[i].cosine_seconds = since(t_cosine);
    rep.sides[i].apply_seconds = since(t0);
    replace[s.tensor] = out;
  }
  const auto t_write = Clock::now();
  rep.files = rewrite_checkpoint(tg.instruct_files, replace, tg.out_dir, o.max_shard_bytes, progress);
  rep.write_seconds = since(t_write);
}

}  // namespace

PropagateReport propagate(const PropagateOptions& o, const ProgressFn& progress) {
  const auto t_start = Clock::now();
  const torch::Device dev = parse_device(o.device);
  if (o.targets.empty()) throw Error("LEP_BAD_ARGUMENT", "propagate needs at least one instruct model (target)");
  const Weights base = read_checkpoint(o.base_files);  // zero-copy views; only embeddings are touched
  const Weights donor = read_checkpoint(o.donor_files);
  // Each instruct model once: targets naming the same files (one model, several methods) share its mapping,
  // correlation and right-hand side. model_of[t]: the first target naming target t's files.
  std::vector<size_t> model_of(o.targets.size());
  std::vector<Weights> inst;
  for (size_t t = 0; t < o.targets.size(); ++t) {
    model_of[t] = t;
    for (size_t u = 0; u < t && model_of[t] == t; ++u)
      if (o.targets[u].instruct_files == o.targets[t].instruct_files) model_of[t] = u;
    inst.push_back(model_of[t] == t ? read_checkpoint(o.targets[t].instruct_files) : inst[model_of[t]]);
  }

  std::vector<Side> sides;
  sides.push_back({"input", kEmbed, need(base, kEmbed, "base", o.base_files), need(donor, kEmbed, "donor", o.donor_files), {}});
  for (size_t t = 0; t < inst.size(); ++t) sides[0].inst.push_back(need(inst[t], kEmbed, "instruct", o.targets[t].instruct_files));
  const bool untied = find(inst[0], kHead) != nullptr;
  const auto tie_word = [](bool has) { return has ? "an lm_head.weight (untied)" : "no lm_head.weight (tied)"; };
  for (size_t t = 1; t < inst.size(); ++t)
    if ((find(inst[t], kHead) != nullptr) != untied)
      throw Error("LEP_MODEL_MISMATCH", std::string("the first instruct model has ") + tie_word(untied) + " but" + target_name(o, t) +
                                            " has " + tie_word(!untied) + "\nHINT: all models must share one architecture.");
  if ((find(base, kHead) != nullptr) != untied || (find(donor, kHead) != nullptr) != untied)
    throw Error("LEP_MODEL_MISMATCH", std::string("the instruct model has ") + tie_word(untied) + " but the " +
                                          ((find(base, kHead) != nullptr) != untied ? "base" : "donor") + " has " +
                                          tie_word(!untied) + "\nHINT: all three models must share one architecture; a tied model propagates its one matrix.");
  if (untied) {
    sides.push_back({"output", kHead, need(base, kHead, "base", o.base_files), need(donor, kHead, "donor", o.donor_files), {}});
    for (size_t t = 0; t < inst.size(); ++t) sides[1].inst.push_back(need(inst[t], kHead, "instruct", o.targets[t].instruct_files));
  }
  validate(o, sides);
  const SystemPlan plan = plan_systems(o, sides[0].donor.size(0));

  PropagateReport report;
  report.hidden_size = sides[0].base.size(1);
  report.old_rows = sides[0].base.size(0);
  report.donor_rows = sides[0].donor.size(0);
  report.targets.resize(o.targets.size());
  for (size_t t = 0; t < o.targets.size(); ++t) {
    report.targets[t].out_rows = o.targets[t].out_rows;
    report.targets[t].dtype = dtype_to_safetensors(sides[0].inst[t].scalar_type());
  }
  // Shared: every target's system, solved over one base side per matrix.
  std::vector<std::vector<torch::Tensor>> ps(sides.size());  // [side][target]
  std::vector<std::pair<std::string, std::string>> failed(o.targets.size());  // a target whose system failed
  for (size_t i = 0; i < sides.size(); ++i) {
    const Side& s = sides[i];
    const int si = static_cast<int>(i);
    std::vector<PropagateSideReport> reps(o.targets.size());
    auto t0 = Clock::now();
    Buffers buf(o.chunk_rows, s.base.size(1), dev);
    for (size_t t = 0; t < o.targets.size(); ++t) {
      reps[t].side = s.name;
      reps[t].tensor = s.tensor;
      reps[t].base_instruct_correlation = model_of[t] == t ? correlation(s.base, s.inst[t], o.chunk_rows, buf, for_target(progress, t), si)
                                                           : reps[model_of[t]].base_instruct_correlation;
    }
    ps[i] = solve(o, plan, model_of, s, dev, buf, progress, si, reps, failed);
    const double seconds = since(t0);
    for (size_t t = 0; t < o.targets.size(); ++t) {
      reps[t].solve_seconds = seconds;
      report.targets[t].sides.push_back(reps[t]);
    }
  }
  report.shared_seconds = since(t_start);
  // Per target, one after another: a failure leaves the targets written before it complete; an abort
  // also stops the ones after it.
  bool aborted = false;
  for (size_t t = 0; t < o.targets.size(); ++t) {
    auto& rep = report.targets[t];
    if (!failed[t].first.empty()) {
      rep.error_code = failed[t].first;
      rep.error_message = failed[t].second;
      continue;
    }
    if (aborted) {
      rep.error_code = "LEP_NOT_RUN";
      rep.error_message = "not written: the job was aborted before this target";
      continue;
    }
    try {
      write_target(o, t, sides, ps, dev, for_target(progress, t), rep);
    } catch (...) {  // reported with the code a job's failure would have (core/torch_failure.h)
      const Failure f = describe_torch_failure(std::current_exception());
      rep.error_code = f.code;
      rep.error_message = f.message;
      aborted = f.code == "LEP_ABORTED";
    }
  }
  report.total_seconds = since(t_start);
  return report;
}

}  // namespace lep
