#include "core/propagate.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "core/checkpoint.h"
#include "core/checkpoint_rewrite.h"
#include "core/error.h"
#include "core/safetensors.h"

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
  torch::Tensor base, donor, inst;  // mmap'd views, (rows, d) in their file dtypes
};

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
double correlation(const Side& s, int64_t rows, int64_t chunk, Buffers& buf, const ProgressFn& progress, int side) {
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t r1 = std::min(rows, r0 + chunk);
    auto x = rows_f64(buf, 0, s.base, r0, r1).view(-1);
    auto y = rows_f64(buf, 1, s.inst, r0, r1).view(-1);
    auto sums = torch::stack({x.sum(), y.sum(), x.dot(x), y.dot(y), x.dot(y)}).cpu();  // dot: no temporaries
    auto a = sums.accessor<double, 1>();
    sx += a[0], sy += a[1], sxx += a[2], syy += a[3], sxy += a[4];
    release_mapped_pages(s.base.slice(0, r0, r1));
    release_mapped_pages(s.inst.slice(0, r0, r1));
    step(progress, "correlation", r1, rows, side);
  }
  const double n = static_cast<double>(rows) * s.base.size(1);
  const double den = std::sqrt(std::max(0.0, n * sxx - sx * sx)) * std::sqrt(std::max(0.0, n * syy - sy * sy));
  return den > 0 ? (n * sxy - sx * sy) / den : 0;
}

// Builds and solves the side's least-squares system; returns P (d, d) and fills the report.
torch::Tensor solve(const PropagateOptions& o, const Side& s, torch::Device dev, Buffers& buf, const ProgressFn& progress,
                    int side, PropagateSideReport& rep) {
  const int64_t d = s.base.size(1);
  StreamingLstsq ls(d, d, o.solver, dev, o.chunk_rows);
  if (o.method == PropagateMethod::kOverlap) {
    const int64_t n = static_cast<int64_t>(o.overlap_old.size());
    for (int64_t j0 = 0; j0 < n; j0 += o.chunk_rows) {
      const int64_t j1 = std::min(n, j0 + o.chunk_rows);
      auto idx = ids(o.overlap_old, j0, j1);
      auto [a, b] = ls.chunk(j1 - j0);
      gather_into(buf, s.base, idx, a);  // E_base[C] (c, d)
      gather_into(buf, s.inst, idx, b);  // E_inst[C] (c, d)
      ls.add_chunk(j1 - j0);
      step(progress, "solve", j1, n, side);
    }
  } else {  // conversion: rows of T·E_base and T·E_inst, a chunk of new tokens at a time
    const int64_t n = static_cast<int64_t>(o.t_offsets.size()) - 1;
    for (int64_t r0 = 0, chunks = 0; r0 < n; r0 += o.chunk_rows, ++chunks) {
      const int64_t r1 = std::min(n, r0 + o.chunk_rows);
      auto [a, b] = ls.chunk(r1 - r0);
      a.zero_();  // empty T rows stay zero rows of both sides: they change neither AᵀA nor AᵀB
      b.zero_();
      // T's entries of these rows, at most chunk_rows at a time (a row of T averages several old rows).
      for (int64_t k0 = o.t_offsets[r0], kend = o.t_offsets[r1]; k0 < kend; k0 += o.chunk_rows) {
        const int64_t k1 = std::min(kend, k0 + o.chunk_rows);
        std::vector<int64_t> row_of(k1 - k0);
        std::vector<double> weight(k1 - k0);
        for (int64_t k = k0, r = std::upper_bound(o.t_offsets.begin(), o.t_offsets.end(), k0) - o.t_offsets.begin() - 1; k < k1; ++k) {
          while (o.t_offsets[r + 1] <= k) ++r;
          row_of[k - k0] = r - r0;
          weight[k - k0] = 1.0 / static_cast<double>(o.t_offsets[r + 1] - o.t_offsets[r]);
        }
        auto idx = ids(o.t_indices, k0, k1);
        auto rows = torch::tensor(row_of, torch::kInt64).to(dev);
        auto w = torch::tensor(weight, torch::kFloat64).to(dev).unsqueeze(1);  // (nnz, 1)
        for (auto [m, dst] : {std::pair{&s.base, &a}, std::pair{&s.inst, &b}}) {
          auto x = buf.f64(0, k1 - k0);
          gather_into(buf, *m, idx, x);
          dst->index_add_(0, rows, x.mul_(w));  // (c, d) += T[r0:r1, entries] · E[entries]
        }
      }
      ls.add_chunk(r1 - r0);
      if (chunks % 16 == 15) {  // gathers jump around the old vocabulary: drop the pages now and then
        release_mapped_pages(s.base);
        release_mapped_pages(s.inst);
      }
      step(progress, "solve", r1, n, side);
    }
    int64_t used = 0;
    for (int64_t r = 0; r < n; ++r) used += o.t_offsets[r + 1] > o.t_offsets[r];
    rep.system_rows = used;
  }
  release_mapped_pages(s.base);
  release_mapped_pages(s.inst);
  auto sol = ls.solve();
  if (o.method == PropagateMethod::kOverlap) rep.system_rows = sol.rows;
  if (rep.system_rows < d)
    throw Error("LEP_TOO_FEW_ROWS", "the " + std::string(o.method == PropagateMethod::kOverlap ? "overlap" : "conversion") +
                                        " system has " + std::to_string(rep.system_rows) + " rows, fewer than the hidden size " +
                                        std::to_string(d) + ": the map is not determined" +
                                        "\nHINT: the donor and base vocabularies share too few tokens; check that the donor tokenizer was made from the base tokenizer.");
  rep.residual = sol.b_norm > 0 ? sol.residual / sol.b_norm : 0;
  rep.solver_fell_back = sol.fell_back;
  return sol.p;
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
// then the copied rows from the instruct model.
torch::Tensor apply(const PropagateOptions& o, const Side& s, const torch::Tensor& p, torch::Device dev, Buffers& buf,
                    const ProgressFn& progress, int side) {
  const int64_t nd = s.donor.size(0), d = s.donor.size(1);
  auto out = torch::empty({o.out_rows, d}, torch::TensorOptions().dtype(s.inst.scalar_type()));
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
  if (!o.copy_to.empty()) {
    auto to = ids(o.copy_to, 0, o.copy_to.size());
    out.index_copy_(0, to, s.inst.index_select(0, ids(o.copy_from, 0, o.copy_from.size())).to(out.scalar_type()));
  }
  return out;
}

// Mean cosine between the final rows of overlap tokens and the instruct model's own rows for them.
double overlap_cosine(const PropagateOptions& o, const Side& s, const torch::Tensor& out, int64_t& pairs) {
  pairs = static_cast<int64_t>(o.overlap_new.size());
  if (pairs == 0) return 0;
  double sum = 0;
  for (int64_t j0 = 0; j0 < pairs; j0 += o.chunk_rows) {
    const int64_t j1 = std::min(pairs, j0 + o.chunk_rows);
    auto x = out.index_select(0, ids(o.overlap_new, j0, j1)).to(torch::kFloat64);
    auto y = s.inst.index_select(0, ids(o.overlap_old, j0, j1)).to(torch::kFloat64);
    auto den = (x.norm(2, 1) * y.norm(2, 1)).clamp_min(1e-300);
    sum += ((x * y).sum(1) / den).sum().item<double>();
  }
  release_mapped_pages(s.inst);
  return sum / static_cast<double>(pairs);
}

void validate(const PropagateOptions& o, const std::vector<Side>& sides) {
  const Side& s0 = sides[0];
  const int64_t d = s0.base.size(1);
  for (const Side& s : sides) {
    if (s.inst.size(1) != d || s.donor.size(1) != d || s.base.size(1) != d)
      throw Error("LEP_SHAPE_MISMATCH", "hidden sizes differ in '" + s.tensor + "': base " + std::to_string(s.base.size(1)) +
                                            ", donor " + std::to_string(s.donor.size(1)) + ", instruct " +
                                            std::to_string(s.inst.size(1)) +
                                            "\nHINT: the instruct model must be derived from the base, and the donor trained from that base.");
    if (s.base.size(0) != s0.base.size(0) || s.inst.size(0) != s0.inst.size(0) || s.donor.size(0) != s0.donor.size(0))
      throw Error("LEP_SHAPE_MISMATCH", "'" + s.tensor + "' and '" + s0.tensor + "' have different row counts in one model");
  }
  const int64_t old_rows = std::min(s0.base.size(0), s0.inst.size(0)), nd = s0.donor.size(0);
  if (o.out_rows < nd)
    throw Error("LEP_BAD_ARGUMENT", "out_rows " + std::to_string(o.out_rows) + " is below the donor's " + std::to_string(nd) + " rows");
  if (o.method == PropagateMethod::kConversion) {
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
  if (o.copy_to.size() != o.copy_from.size()) throw Error("LEP_BAD_ARGUMENT", "copied-row id lists differ in length");
  check_range(o.copy_to, o.out_rows, "the copied rows (output ids)");
  check_range(o.copy_from, s0.inst.size(0), "the copied rows (instruct ids)");
  std::vector<bool> covered(o.out_rows - nd, false);
  for (int64_t r : o.copy_to)
    if (r >= nd) covered[r - nd] = true;
  for (size_t i = 0; i < covered.size(); ++i)
    if (!covered[i])
      throw Error("LEP_BAD_ARGUMENT", "output row " + std::to_string(nd + i) + " is past the donor's rows but is not copied from the instruct model");
  if (o.chunk_rows <= 0) throw Error("LEP_BAD_ARGUMENT", "chunk_rows must be positive");
}

}  // namespace

PropagateReport propagate(const PropagateOptions& o, const ProgressFn& progress) {
  const auto t_start = Clock::now();
  torch::Device dev(o.device);
  if (dev.is_cuda() && !torch::cuda::is_available())
    throw Error("LEP_NO_CUDA", "device '" + o.device + "' requested but this libtorch has no CUDA device\nHINT: use --device cpu");
  const Weights base = read_checkpoint(o.base_files);  // zero-copy views; only embeddings are touched
  const Weights donor = read_checkpoint(o.donor_files);
  const Weights inst = read_checkpoint(o.instruct_files);

  std::vector<Side> sides;
  sides.push_back({"input", kEmbed, need(base, kEmbed, "base", o.base_files), need(donor, kEmbed, "donor", o.donor_files),
                   need(inst, kEmbed, "instruct", o.instruct_files)});
  const bool untied = find(inst, kHead) != nullptr;
  const auto tie_word = [](bool has) { return has ? "an lm_head.weight (untied)" : "no lm_head.weight (tied)"; };
  if ((find(base, kHead) != nullptr) != untied || (find(donor, kHead) != nullptr) != untied)
    throw Error("LEP_MODEL_MISMATCH", std::string("the instruct model has ") + tie_word(untied) + " but the " +
                                          ((find(base, kHead) != nullptr) != untied ? "base" : "donor") + " has " +
                                          tie_word(!untied) + "\nHINT: all three models must share one architecture; a tied model propagates its one matrix.");
  if (untied)
    sides.push_back({"output", kHead, need(base, kHead, "base", o.base_files), need(donor, kHead, "donor", o.donor_files),
                     need(inst, kHead, "instruct", o.instruct_files)});
  validate(o, sides);

  PropagateReport report;
  report.hidden_size = sides[0].base.size(1);
  report.old_rows = sides[0].base.size(0);
  report.donor_rows = sides[0].donor.size(0);
  report.out_rows = o.out_rows;
  report.dtype = dtype_to_safetensors(sides[0].inst.scalar_type());
  std::map<std::string, torch::Tensor> replace;
  for (size_t i = 0; i < sides.size(); ++i) {
    const Side& s = sides[i];
    const int si = static_cast<int>(i);
    PropagateSideReport rep;
    rep.side = s.name;
    rep.tensor = s.tensor;
    auto t0 = Clock::now();
    Buffers buf(o.chunk_rows, s.base.size(1), dev);
    rep.base_instruct_correlation = correlation(s, std::min(s.base.size(0), s.inst.size(0)), o.chunk_rows, buf, progress, si);
    torch::Tensor p;
    if (o.method != PropagateMethod::kSwap) p = solve(o, s, dev, buf, progress, si, rep);
    rep.solve_seconds = since(t0);
    t0 = Clock::now();
    auto out = apply(o, s, p, dev, buf, progress, si);
    rep.overlap_cosine = overlap_cosine(o, s, out, rep.overlap_rows);
    rep.apply_seconds = since(t0);
    replace[s.tensor] = out;
    report.sides.push_back(rep);
  }
  const auto t_write = Clock::now();
  report.files = rewrite_checkpoint(o.instruct_files, replace, o.out_dir, o.max_shard_bytes, progress);
  report.write_seconds = since(t_write);
  report.total_seconds = since(t_start);
  return report;
}

}  // namespace lep
