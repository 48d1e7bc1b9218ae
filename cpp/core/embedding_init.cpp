#include "core/embedding_init.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/error.h"
#include "core/safetensors.h"

namespace lep {

namespace {

// Rows per progress/abort check; also the unit of parallel work.
constexpr int64_t kBlock = 4096;

// Old rows are read in place from the mmap'ed checkpoint, converted element by element: a float32 copy
// of LLaMa-3's 128256 x 4096 bf16 matrix would be 2 GiB more resident memory for nothing.
template <class T>
struct RowReader {
  const T* base;
  int64_t d;
  float at(int64_t row, int64_t k) const { return static_cast<float>(base[row * d + k]); }
};

template <class T>
void plan_rows(const torch::Tensor& old, const EmbeddingInitPlan& plan, bool first_only, const std::vector<uint8_t>& zero,
               const std::vector<float>& global, torch::Tensor& out, std::vector<uint8_t>& fallback,
               const ProgressFn& progress, const std::string& phase) {
  const int64_t d = old.size(1);
  RowReader<T> src{old.data_ptr<T>(), d};
  float* dst = out.data_ptr<float>();
  const int64_t n = plan.new_tokens;
  for (int64_t b0 = 0; b0 < n; b0 += kBlock) {
    const int64_t b1 = std::min(n, b0 + kBlock);
    at::parallel_for(b0, b1, 64, [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        float* row = dst + i * d;
        const auto kind = static_cast<InitKind>(plan.kinds[i]);
        const int64_t* ids = plan.ids.data() + plan.offsets[i];
        const int64_t count = plan.offsets[i + 1] - plan.offsets[i];
        if (kind == InitKind::kCopy) {
          for (int64_t k = 0; k < d; ++k) row[k] = src.at(ids[0], k);
          continue;
        }
        // global-mean and random rows are filled by the caller; donor rows start as the mean (their fallback)
        if (kind != InitKind::kMean && kind != InitKind::kDonor) continue;
        // Sum the usable sub-rows in order, then divide: (1/K) Σ row(o_j) in float32, as docs/method.md §2.
        std::fill(row, row + d, 0.0f);
        int64_t used = 0;
        for (int64_t j = 0; j < count; ++j) {
          if (zero[ids[j]]) continue;
          for (int64_t k = 0; k < d; ++k) row[k] += src.at(ids[j], k);
          ++used;
          if (first_only) break;
        }
        double norm2 = 0;
        if (used > 0) {
          const float inv = static_cast<float>(used);
          for (int64_t k = 0; k < d; ++k) {
            row[k] /= inv;
            norm2 += static_cast<double>(row[k]) * row[k];
          }
        }
        if (used == 0 || std::sqrt(norm2) < 1e-12) {
          std::copy(global.begin(), global.end(), row);
          fallback[i] = 1;
        }
      }
    });
    if (progress && !progress(ProgressEvent{phase, b1, n, {}})) throw Error("LEP_ABORTED", "embedding initialisation aborted");
  }
}

// All-zero rows of the old tokenizer's range, and the global mean and element std over the other rows
// (accumulated in float64: a sum over 128k rows in float32 would lose the low digits).
template <class T>
void scan_rows(const torch::Tensor& old, int64_t rows, std::vector<uint8_t>& zero, std::vector<float>& global, double& stddev) {
  const int64_t d = old.size(1);
  RowReader<T> src{old.data_ptr<T>(), d};
  zero.assign(rows, 0);
  std::vector<double> sum(d, 0.0);
  double sumsq = 0;
  int64_t usable = 0;
  for (int64_t r = 0; r < rows; ++r) {
    bool any = false;
    for (int64_t k = 0; k < d && !any; ++k) any = src.at(r, k) != 0.0f;
    if (!any) {
      zero[r] = 1;
      continue;
    }
    ++usable;
    for (int64_t k = 0; k < d; ++k) {
      const double v = src.at(r, k);
      sum[k] += v;
      sumsq += v * v;
    }
  }
  global.assign(d, 0.0f);
  if (usable == 0) {
    stddev = 0;
    return;
  }
  double mean_all = 0;
  for (int64_t k = 0; k < d; ++k) {
    global[k] = static_cast<float>(sum[k] / usable);
    mean_all += sum[k];
  }
  const double n = static_cast<double>(usable) * d;
  mean_all /= n;
  stddev = std::sqrt(std::max(0.0, sumsq / n - mean_all * mean_all));
}

template <class F>
void dispatch_float(const torch::Tensor& t, const std::string& what, F f) {
  switch (t.scalar_type()) {
    case torch::kFloat32: f(float{}); break;
    case torch::kFloat64: f(double{}); break;
    case torch::kBFloat16: f(c10::BFloat16{}); break;
    case torch::kFloat16: f(c10::Half{}); break;
    default:
      throw Error("LEP_BAD_DTYPE", what + " has dtype " + std::string(c10::toString(t.scalar_type())) +
                                       "; embedding initialisation reads F32, F64, BF16 or F16 matrices");
  }
}

void check_plan(const EmbeddingInitPlan& p, int64_t old_rows) {
  auto bad = [](const std::string& m) {
    return Error("LEP_BAD_PLAN", "embedding init plan: " + m + "\nHINT: this is a bug in lep's plan builder; please report it.");
  };
  if (p.old_tokens <= 0 || p.old_tokens > old_rows)
    throw Error("LEP_VOCAB_MISMATCH", "the old tokenizer has " + std::to_string(p.old_tokens) +
                                          " tokens but the model's embedding matrix has " + std::to_string(old_rows) +
                                          " rows\nHINT: the tokenizer does not belong to this model; pass the model's own tokenizer as the old one.");
  if (p.new_tokens <= 0 || p.new_rows < p.new_tokens) throw bad("new_rows must be >= new_tokens > 0");
  if (static_cast<int64_t>(p.offsets.size()) != p.new_tokens + 1 || static_cast<int64_t>(p.kinds.size()) != p.new_tokens)
    throw bad("offsets/kinds sizes do not match new_tokens");
  if (p.offsets.front() != 0 || p.offsets.back() != static_cast<int64_t>(p.ids.size())) throw bad("offsets do not span ids");
  for (int64_t i = 0; i < p.new_tokens; ++i) {
    const int64_t n = p.offsets[i + 1] - p.offsets[i];
    if (n < 0) throw bad("offsets decrease at row " + std::to_string(i));
    if (p.kinds[i] > static_cast<uint8_t>(InitKind::kDonor)) throw bad("unknown kind at row " + std::to_string(i));
    if (static_cast<InitKind>(p.kinds[i]) == InitKind::kDonor &&
        (!p.has_donor || static_cast<int64_t>(p.donor.row_donor.size()) != p.new_tokens || p.donor.row_donor[i] < 0))
      throw bad("donor row " + std::to_string(i) + " without a donor id");
    if (static_cast<InitKind>(p.kinds[i]) == InitKind::kCopy && n != 1)
      throw bad("copy row " + std::to_string(i) + " lists " + std::to_string(n) + " ids, not 1");
  }
  for (int64_t id : p.ids)
    if (id < 0 || id >= p.old_tokens) throw bad("old id " + std::to_string(id) + " outside [0, " + std::to_string(p.old_tokens) + ")");
}

}  // namespace

torch::Tensor init_matrix(const torch::Tensor& old_in, const EmbeddingInitPlan& plan, bool first_only, uint64_t seed,
                          EmbeddingSideReport& report, const ProgressFn& progress, const std::string& phase,
                          const torch::Tensor& donor) {
  if (old_in.dim() != 2) throw Error("LEP_BAD_CHECKPOINT", "embedding matrix is not 2-D");
  check_plan(plan, old_in.size(0));
  const torch::Tensor old = old_in.contiguous();  // a no-op for safetensors views
  const int64_t d = old.size(1);
  std::vector<uint8_t> zero;
  std::vector<float> global;
  double stddev = 0;
  dispatch_float(old, phase + " matrix", [&](auto tag) { scan_rows<decltype(tag)>(old, plan.old_tokens, zero, global, stddev); });
  report.old_std = stddev;
  report.zero_rows.clear();
  for (int64_t r = 0; r < plan.old_tokens; ++r)
    if (zero[r]) report.zero_rows.push_back(r);
  if (static_cast<int64_t>(report.zero_rows.size()) == plan.old_tokens)
    throw Error("LEP_BAD_CHECKPOINT", "every row of the " + phase +
                                          " embedding matrix is zero\nHINT: the checkpoint was never trained or is damaged.");

  auto out = torch::empty({plan.new_rows, d}, torch::kFloat32);  // (V_new_rows, d)
  std::vector<uint8_t> fallback(plan.new_tokens, 0);
  dispatch_float(old, phase + " matrix", [&](auto tag) {
    plan_rows<decltype(tag)>(old, plan, first_only, zero, global, out, fallback, progress, phase);
  });
  auto global_t = torch::from_blob(global.data(), {d}, torch::kFloat32).clone();
  std::vector<int64_t> random_rows;
  for (int64_t i = 0; i < plan.new_tokens; ++i) {
    const auto kind = static_cast<InitKind>(plan.kinds[i]);
    if (kind == InitKind::kGlobalMean) out[i].copy_(global_t);
    if (kind == InitKind::kRandom) random_rows.push_back(i);
    if (fallback[i]) report.fallback_rows.push_back(i);
  }
  if (!random_rows.empty()) {
    // Our own generator: jobs run concurrently and must not share the global seed.
    auto gen = at::detail::createCPUGenerator(seed);
    auto noise = at::randn({static_cast<int64_t>(random_rows.size()), d}, gen, torch::kFloat32) * stddev;
    out.index_copy_(0, torch::tensor(random_rows, torch::kInt64), noise);
  }
  if (plan.has_donor) {
    if (!donor.defined()) throw Error("LEP_BAD_ARGUMENT", "embedding init: a donor plan without the donor's " + phase + " matrix");
    // A float64 checkpoint keeps float64 donor rows (its mean rows are still float32 sums, as the method's).
    if (old.scalar_type() == torch::kFloat64) out = out.to(torch::kFloat64);
    auto rows = donor_rows(old, donor, zero, plan.donor, report.donor, progress, phase);
    if (!report.donor.rows.empty()) out.index_copy_(0, torch::tensor(report.donor.rows, torch::kInt64), rows.to(out.scalar_type()));
    // Only a kDonor row that kept its mean (its donor row is all zero) can still be a global-mean fallback.
    std::vector<uint8_t> from_donor(plan.new_tokens, 0);
    for (int64_t i : report.donor.rows) from_donor[i] = 1;
    auto& fb = report.fallback_rows;
    fb.erase(std::remove_if(fb.begin(), fb.end(), [&](int64_t i) { return from_donor[i] != 0; }), fb.end());
  }
  if (plan.new_rows > plan.new_tokens) out.narrow(0, plan.new_tokens, plan.new_rows - plan.new_tokens).copy_(global_t.expand({plan.new_rows - plan.new_tokens, d}));
  return out;
}

EmbeddingInitResult run_embedding_init(const EmbeddingInitJob& job, const ProgressFn& progress) {
  if (job.files.empty() || job.files.size() != job.out_files.size())
    throw Error("LEP_BAD_ARGUMENT", "embedding init needs one output path per input checkpoint file");
  std::vector<std::unique_ptr<SafetensorsFile>> inputs;
  const SafetensorsFile* embed_file = nullptr;
  const SafetensorsFile* head_file = nullptr;
  for (const auto& f : job.files) {
    inputs.push_back(std::make_unique<SafetensorsFile>(f));
    if (inputs.back()->has(job.embed_name)) embed_file = inputs.back().get();
    if (inputs.back()->has(job.head_name)) head_file = inputs.back().get();
  }
  if (!embed_file)
    throw Error("LEP_MISSING_TENSOR", "the checkpoint has no tensor '" + job.embed_name +
                                          "'\nHINT: lep initialises LLaMA-family checkpoints in Hugging Face layout; is this the model's full checkpoint?");
  if (!job.tied && !head_file)
    throw Error("LEP_MISSING_TENSOR", "the checkpoint has no tensor '" + job.head_name +
                                          "' but config.json says the embeddings are not tied (tie_word_embeddings false)"
                                          "\nHINT: set tie_word_embeddings to true in config.json if the model shares one matrix.");

  // The donor (rules omp and focus): its embed_tokens for the input side, its lm_head (or embed_tokens
  // when tied) for the output side.
  std::vector<std::unique_ptr<SafetensorsFile>> donor_inputs;
  torch::Tensor donor_embed, donor_head;
  if (job.plan.has_donor) {
    for (const auto& f : job.plan.donor.files) {
      donor_inputs.push_back(std::make_unique<SafetensorsFile>(f));
      if (donor_inputs.back()->has(job.embed_name)) donor_embed = donor_inputs.back()->tensor(job.embed_name);
      if (donor_inputs.back()->has(job.head_name)) donor_head = donor_inputs.back()->tensor(job.head_name);
    }
    if (!donor_embed.defined())
      throw Error("LEP_MISSING_TENSOR", "the donor checkpoint has no tensor '" + job.embed_name +
                                            "'\nHINT: --donor takes a LLaMA-family model directory in Hugging Face layout.");
    if (job.plan.donor.tied || !donor_head.defined()) {
      if (!job.plan.donor.tied)
        throw Error("LEP_MISSING_TENSOR", "the donor checkpoint has no tensor '" + job.head_name +
                                              "' but its config.json says the embeddings are not tied\nHINT: set tie_word_embeddings in the donor's config.json.");
      donor_head = donor_embed;
    }
  }

  EmbeddingInitResult result;
  const torch::Tensor old_embed = embed_file->tensor(job.embed_name);
  result.dtype = embed_file->info(job.embed_name).dtype;
  result.hidden_size = old_embed.dim() == 2 ? old_embed.size(1) : 0;
  const torch::Tensor new_embed =
      init_matrix(old_embed, job.plan, false, job.plan.seed, result.input, progress, "input", donor_embed).to(old_embed.scalar_type());
  torch::Tensor new_head;
  if (!job.tied) {
    const torch::Tensor old_head = head_file->tensor(job.head_name);
    if (old_head.dim() != 2 || old_head.size(0) != old_embed.size(0) || old_head.size(1) != old_embed.size(1))
      throw Error("LEP_BAD_CHECKPOINT", "lm_head.weight has shape " + c10::str(old_head.sizes()) + " but model.embed_tokens.weight has " +
                                            c10::str(old_embed.sizes()) + "\nHINT: the checkpoint is damaged or not a LLaMA-family model.");
    new_head = init_matrix(old_head, job.plan, job.plan.output_first, job.plan.seed + 1, result.output, progress, "output", donor_head)
                   .to(old_head.scalar_type());
    result.has_output = true;
  }

  // Every file again with the same tensors in the same order; other tensors are mmap views written
  // straight from the page cache, so the old model is never held in memory as a whole.
  for (size_t f = 0; f < inputs.size(); ++f) {
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& info : inputs[f]->tensors()) {
      if (info.name == job.embed_name)
        tensors.emplace_back(info.name, new_embed);
      else if (info.name == job.head_name) {
        // A tied checkpoint that stores a copy of the shared matrix would keep a stale, wrongly sized one.
        if (!job.tied) tensors.emplace_back(info.name, new_head);
      } else
        tensors.emplace_back(info.name, inputs[f]->tensor(info.name));
    }
    write_safetensors(job.out_files[f], tensors, inputs[f]->metadata());
    for (const auto& [_, t] : tensors) result.bytes_written += t.numel() * t.element_size();
    if (progress && !progress(ProgressEvent{"write", static_cast<int64_t>(f + 1), static_cast<int64_t>(inputs.size()), {}}))
      throw Error("LEP_ABORTED", "embedding initialisation aborted");
  }
  return result;
}

}  // namespace lep
