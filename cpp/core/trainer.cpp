#include "core/trainer.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdlib>
#include <fstream>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/compute_threads.h"
#include "core/runtime.h"
#include "core/error.h"
#include "core/fork_gate.h"
#include "core/lm_loss.h"
#include "core/safetensors.h"

namespace lep {

namespace fs = std::filesystem;

namespace {

struct Blocks {
  std::unique_ptr<SafetensorsFile> file;
  torch::Tensor tokens;  // (N, T+1) int32, mmap view
  torch::Tensor mask;    // (N, T+1) uint8 or undefined
};

Blocks open_blocks(const std::string& path, const ModelConfig& cfg, const char* what) {
  Blocks b;
  b.file = std::make_unique<SafetensorsFile>(path);
  if (!b.file->has("tokens")) throw Error("LEP_BAD_DATA", std::string(what) + " " + path + " has no 'tokens' tensor");
  b.tokens = b.file->tensor("tokens");
  if (b.tokens.dim() != 2 || b.tokens.scalar_type() != torch::kInt32)
    throw Error("LEP_BAD_DATA", std::string(what) + " " + path + ": 'tokens' must be I32 of shape (blocks, seq_len + 1)");
  if (b.tokens.size(0) == 0)
    throw Error("LEP_BAD_DATA", std::string(what) + " " + path + " holds no blocks\nHINT: the corpus is shorter than one block; add text or lower the sequence length.");
  if (b.tokens.size(1) - 1 > cfg.max_position_embeddings)
    throw Error("LEP_BAD_DATA", std::string(what) + ": sequence length " + std::to_string(b.tokens.size(1) - 1) +
                                    " exceeds the model's max_position_embeddings " + std::to_string(cfg.max_position_embeddings));
  const int64_t hi = b.tokens.max().item<int64_t>(), lo = b.tokens.min().item<int64_t>();
  if (lo < 0 || hi >= cfg.vocab_size)
    throw Error("LEP_VOCAB_MISMATCH", std::string(what) + " " + path + " has token id " + std::to_string(hi >= cfg.vocab_size ? hi : lo) +
                                          " outside the model's vocabulary (" + std::to_string(cfg.vocab_size) +
                                          ")\nHINT: the data was packed with another tokenizer.");
  if (b.file->has("loss_mask")) {
    b.mask = b.file->tensor("loss_mask");
    if (b.mask.sizes() != b.tokens.sizes()) throw Error("LEP_BAD_DATA", std::string(what) + ": loss_mask shape differs from tokens");
  }
  return b;
}

std::vector<std::string> trainable_names(const LlamaModel& m, const std::string& params) {
  std::vector<std::string> out;
  if (params == "all") {
    for (const auto& [name, _] : m.parameters()) out.push_back(name);
  } else if (params == "embeddings") {
    out.push_back("model.embed_tokens.weight");
    if (!m.config().tie_word_embeddings) out.push_back("lm_head.weight");
  } else if (params == "lora") {
    if (!m.has_lora()) throw Error("LEP_BAD_ARGUMENT", "params 'lora' needs LoRA adapters on the model");
    for (const auto& [name, _] : m.lora_tensors()) out.push_back(name);
    for (const auto& module : m.lora_config().modules_to_save) {
      const auto name = module_to_save_param(module, m.config());
      if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);  // tied: one matrix
    }
  } else {
    throw Error("LEP_BAD_ARGUMENT", "params must be 'all', 'embeddings' or 'lora', got '" + params + "'");
  }
  return out;
}

// HF get_cosine_schedule_with_warmup (with an optional floor): multiplier for the update at `step` (0-based).
double lr_at(const TrainConfig& c, int64_t step) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step) / std::max<int64_t>(1, c.warmup_steps);
  const double progress = static_cast<double>(step - c.warmup_steps) / std::max<int64_t>(1, c.steps - c.warmup_steps);
  const double cosine = 0.5 * (1.0 + std::cos(M_PI * std::min(1.0, progress)));
  return c.lr * (c.min_lr_ratio + (1 - c.min_lr_ratio) * cosine);
}

// Block index for the i-th draw: a fresh seeded permutation per epoch.
class BlockOrder {
 public:
  BlockOrder(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t at(int64_t i) {
    const int64_t epoch = i / n_;
    if (epoch != epoch_) {
      auto gen = at::detail::createCPUGenerator(seed_ + static_cast<uint64_t>(epoch));
      perm_ = torch::randperm(n_, gen, torch::kInt64);
      epoch_ = epoch;
    }
    return perm_[i % n_].item<int64_t>();
  }

 private:
  int64_t n_;
  uint64_t seed_;
  int64_t epoch_ = -1;
  torch::Tensor perm_;
};

struct Batch {
  torch::Tensor ids, targets, mask;  // (B, T), (B, T), (B, T) bool or undefined
};

Batch make_batch(const Blocks& data, const std::vector<int64_t>& rows, torch::Device dev) {
  auto idx = torch::tensor(rows, torch::kInt64);
  auto blk = data.tokens.index_select(0, idx).to(torch::kInt64);
  const int64_t T = blk.size(1) - 1;
  Batch b{blk.narrow(1, 0, T).to(dev), blk.narrow(1, 1, T).to(dev), {}};
  if (data.mask.defined()) b.mask = data.mask.index_select(0, idx).narrow(1, 1, T).to(torch::kBool).to(dev);
  return b;
}

const torch::Tensor& head_of(LlamaModel& m) {
  return m.config().tie_word_embeddings ? m.param("model.embed_tokens.weight") : m.param("lm_head.weight");
}

// Forward + backward of one micro-batch; gradients accumulate into the model parameters' .grad. The
// head's gradient is accumulated before the body's backward and `head_done` called, so a data-parallel
// job can all-reduce it while the body's backward runs. With `rows` (rows-only training) the head's
// gradient is computed for those rows only and scattered into a (V, C) gradient that is zero elsewhere.
LmLossResult micro_step(LlamaModel& m, const Batch& b, double grad_scale, bool head_trainable,
                        const std::function<void()>& head_done = nullptr, const torch::Tensor& rows = {},
                        LmLossWorkspace* ws = nullptr) {
  const int64_t B = b.ids.size(0), T = b.ids.size(1);
  auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(b.ids.device())).unsqueeze(0).expand({B, T});
  auto hidden = m.forward_hidden(b.ids, pos, torch::Tensor(), nullptr);  // (B, T, C)
  const int64_t C = hidden.size(-1);
  auto flat_mask = b.mask.defined() ? b.mask.reshape({-1}) : torch::Tensor();
  auto r = lm_loss_chunked(hidden.reshape({-1, C}), head_of(m), b.targets.reshape({-1}), flat_mask,
                           head_trainable ? LmLossGrads::kHiddenAndHead : LmLossGrads::kHidden, grad_scale, 0, rows, ws,
                           m.onednn_products());
  if (head_trainable) {
    auto& head = const_cast<torch::Tensor&>(head_of(m));
    auto g = r.grad_head.to(head.scalar_type());
    if (rows.defined()) {
      if (!head.grad().defined()) head.mutable_grad() = torch::zeros_like(head);
      head.mutable_grad().index_add_(0, rows, g);
    } else if (head.grad().defined()) {
      head.mutable_grad().add_(g);
    } else {
      head.mutable_grad() = g;
    }
  }
  if (head_done) head_done();
  if (hidden.requires_grad()) {
    if (hidden.is_cpu()) {
      hidden.backward(r.grad_hidden.view({B, T, C}));  // its safe points are autograd hooks on this thread
    } else {
      // On a GPU this thread only waits while autograd's device thread runs the backward (no CPU BLAS
      // call, and the hooks' safe points do nothing there): a spawn need not wait for it.
      ForkSafeRegion waiting;
      hidden.backward(r.grad_hidden.view({B, T, C}));
    }
  }
  r.grad_hidden = torch::Tensor();
  r.grad_head = torch::Tensor();
  return r;
}

// Loss sum and target-token count over the evaluation blocks: the first max_batches x batch x world
// (0 = all), of which this rank takes every world-th from its rank on.
std::pair<double, int64_t> eval_sums(LlamaModel& m, const Blocks& data, int64_t batch, int64_t max_batches, int64_t rank,
                                     int64_t world, LmLossWorkspace* ws) {
  torch::NoGradGuard no_grad;
  const int64_t N = max_batches > 0 ? std::min(data.tokens.size(0), max_batches * batch * world) : data.tokens.size(0);
  double sum = 0;
  int64_t count = 0;
  for (int64_t start = rank; start < N; start += batch * world) {
    std::vector<int64_t> rows;
    for (int64_t i = start; i < std::min(N, start + batch * world); i += world) rows.push_back(i);
    auto b = make_batch(data, rows, m.device());
    const int64_t B = b.ids.size(0), T = b.ids.size(1);
    auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(m.device())).unsqueeze(0).expand({B, T});
    auto hidden = m.forward_hidden(b.ids, pos, torch::Tensor(), nullptr);
    auto r = lm_loss_chunked(hidden.reshape({-1, hidden.size(-1)}), head_of(m), b.targets.reshape({-1}),
                             b.mask.defined() ? b.mask.reshape({-1}) : torch::Tensor(), LmLossGrads::kNone, 1.0, 0, {}, ws,
                             m.onednn_products());
    sum += r.loss_sum;
    count += r.tokens;
  }
  return {sum, count};
}

struct Trainable {
  std::string name;
  torch::Tensor param;   // the model's tensor (model dtype)
  // float32 (or float64) copy the optimizer updates; == param when dtypes agree. With a row set, always a
  // copy of those rows only (k x C): neither it, its gradient nor AdamW's moments span the whole matrix,
  // which at 8B shapes is what decides whether rows-only training fits in memory.
  torch::Tensor master;
  torch::Tensor rows;    // (k) int64, sorted: the rows that train, or undefined for all
};

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::string text = j.dump(2) + "\n";
  AtomicFile f(path);
  f.write(text.data(), text.size());
  f.commit();
}

std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
  return name;
}

// A row set's tensor from a checkpoint: the whole matrix from trainable.safetensors, its rows' master copy
// and moments from the optimizer state. Checkpoints from before row-set state hold the whole f32 master
// and whole-matrix moments (zero outside the rows): their rows are taken. Another row set is refused.
void resume_rows(Trainable& t, const torch::Tensor& saved, std::map<std::string, torch::Tensor>& state) {
  // Rows are gathered where the saved tensor is (the file's memory map), not after moving it whole.
  const auto take = [&](const torch::Tensor& whole) { return whole.index_select(0, t.rows.to(whole.device())); };
  const int64_t vocab = t.param.size(0), k = t.rows.size(0);
  if (auto r = state.find(t.name + ".rows"); r != state.end() && !torch::equal(r->second.to(torch::kCPU), t.rows.to(torch::kCPU)))
    throw Error("LEP_RESUME_MISMATCH", "the checkpoint's optimizer state of '" + t.name + "' is for another set of trained rows" +
                                           "\nHINT: resume with the rows it was trained with, or start afresh (--no-resume).");
  t.param.copy_(saved);
  auto m = state.find(t.name + ".master");
  t.master.copy_(m != state.end() ? m->second : take(saved));
  for (const char* key : {".exp_avg", ".exp_avg_sq"})
    if (auto s = state.find(t.name + key); s != state.end() && s->second.dim() == 2 && s->second.size(0) == vocab && vocab != k)
      s->second = take(s->second);
}

int64_t global_batch(const TrainConfig& c) { return c.batch_size * c.grad_accum * std::max<int64_t>(1, c.dist.world_size); }

// A checkpoint's files, all three present in every complete one (ts/train/checkpointDirs.ts lists the same).
constexpr const char* kCheckpointFiles[] = {"trainable.safetensors", "optimizer.safetensors", "state.json"};

// The first of a checkpoint's files that `dir` lacks; nullptr when it has them all.
const char* missing_checkpoint_file(const fs::path& dir) {
  for (const char* f : kCheckpointFiles)
    if (!fs::exists(dir / f)) return f;
  return nullptr;
}

std::string save_checkpoint(const TrainConfig& c, const std::vector<Trainable>& ts, const AdamW& opt, int64_t step,
                            double loss) {
  const std::string name = checkpoint_name(step);
  const fs::path final_dir = fs::path(c.checkpoint_dir) / name;
  const fs::path tmp = fs::path(c.checkpoint_dir) / (name + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    // trainable.safetensors holds whole tensors (lep export checkpoint lays it over the model): a row
    // set's in the model's dtype, its rows' master copy and ids in optimizer.safetensors.
    std::vector<std::pair<std::string, torch::Tensor>> weights;
    for (const auto& t : ts) weights.emplace_back(t.name, t.rows.defined() ? t.param : t.master);
    write_safetensors((tmp / "trainable.safetensors").string(), weights);
    std::vector<std::pair<std::string, torch::Tensor>> state;
    for (const auto& [k, v] : opt.state()) state.emplace_back(k, v);
    for (const auto& t : ts)
      if (t.rows.defined()) {
        state.emplace_back(t.name + ".rows", t.rows);
        state.emplace_back(t.name + ".master", t.master);
      }
    write_safetensors((tmp / "optimizer.safetensors").string(), state);
    write_json((tmp / "state.json").string(), {{"step", step}, {"loss", loss}, {"params", c.params}, {"seed", c.seed}, {"global_batch", global_batch(c)}, {"world_size", std::max<int64_t>(1, c.dist.world_size)}});
  } catch (...) {
    // A refused or failed write (non-finite weights, a full disk) leaves no half checkpoint behind.
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    throw;
  }
  // Fault injection for the crash test: die like a killed process with the new checkpoint fully written
  // but not yet renamed into place (the one moment a non-atomic scheme would lose the previous one).
  if (const char* f = std::getenv("LEP_FAULT_KILL_IN_CHECKPOINT"); f && std::to_string(step) == f) std::_Exit(137);
  // A checkpoint appears under its final name only when complete: killing the process mid-write
  // leaves a stray *.tmp-PID directory and every earlier checkpoint intact. The files are checked once
  // more first: a CLI quitting on a second signal removes its temporary paths from under a job still
  // writing (ts/util/tempPaths.ts), and renaming the half-removed folder made a checkpoint that every
  // later run resumed from and failed on (ts/train/checkpointDirs.ts now skips such a one as well).
  if (const char* f = missing_checkpoint_file(tmp))
    throw Error("LEP_INTERRUPTED", "the checkpoint of step " + std::to_string(step) + " lost its file " + f +
                                       " while it was written (its temporary folder was removed: the process is quitting)");
  // What goes away (a checkpoint of the same step from before, the oldest beyond --keep-checkpoints) is
  // renamed to a *-old.tmp-PID first and then removed, so a kill meanwhile leaves no half-removed
  // checkpoint under a checkpoint's name (the next run removes the stray, as any other). "-old": the same
  // step's plain *.tmp-PID is the new checkpoint itself.
  const auto discard = [&](const fs::path& dir) {
    const fs::path aside = dir.string() + "-old.tmp-" + std::to_string(::getpid());
    fs::remove_all(aside);
    fs::rename(dir, aside);
    fs::remove_all(aside);
  };
  if (fs::exists(final_dir)) discard(final_dir);
  fs::rename(tmp, final_dir);
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(c.checkpoint_dir)) {
    const std::string n = e.path().filename().string();
    // Complete ones only: a folder renamed into place half-removed (the check above races a quitting
    // CLI's removal by a moment) must not count toward --keep-checkpoints and push out a good one.
    if (n.rfind("step-", 0) == 0 && n.find(".tmp-") == std::string::npos && !missing_checkpoint_file(e.path()))
      all.push_back(e.path());
  }
  std::sort(all.begin(), all.end());
  for (size_t i = 0; c.keep_checkpoints > 0 && i + c.keep_checkpoints < all.size(); ++i) discard(all[i]);
  return final_dir.string();
}

}  // namespace

TrainReport train(LlamaModel& model, const TrainConfig& c, const ProgressFn& progress) {
  const auto& cfg = model.config();
  ComputeThreads threads(model, Work::kTraining);  // the products and threads of training (compute_threads.h)
  Blocks data = open_blocks(c.data, cfg, "training data");
  Blocks eval_data;
  if (!c.eval_data.empty()) eval_data = open_blocks(c.eval_data, cfg, "evaluation data");
  if (eval_data.tokens.defined() && eval_data.tokens.size(1) != data.tokens.size(1))
    throw Error("LEP_BAD_DATA", "evaluation blocks and training blocks have different sequence lengths");
  if (c.batch_size < 1 || c.grad_accum < 1 || c.steps < 1)
    throw Error("LEP_BAD_ARGUMENT", "batch_size, grad_accum and steps must be positive");

  if (c.params == "lora" && !model.has_lora()) model.add_lora(c.lora, c.lora_seed);
  if (c.params == "lora" && model.lora_config().dropout > 0 && c.activation_checkpointing)
    throw Error("LEP_BAD_ARGUMENT", "LoRA dropout cannot be combined with activation checkpointing (the recomputed "
                                    "layer would draw other dropout masks)\nHINT: set LoRA dropout to 0 or turn checkpointing off.");
  const auto names = trainable_names(model, c.params);
  const bool head_trainable =
      std::find(names.begin(), names.end(), cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight") != names.end();
  // The trained rows, sorted and unique (a repeated id would be updated twice by index_add).
  torch::Tensor train_rows;
  if (!c.rows.empty()) {
    if (c.params != "embeddings") throw Error("LEP_BAD_ARGUMENT", "a row set needs params 'embeddings'");
    for (int64_t r : c.rows)
      if (r < 0 || r >= cfg.vocab_size) throw Error("LEP_BAD_ARGUMENT", "row " + std::to_string(r) + " is outside the vocabulary");
    train_rows = std::get<0>(torch::_unique(torch::tensor(c.rows, torch::kInt64), /*sorted=*/true)).to(model.device());
  }
  const auto master_dtype = model.dtype() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  std::vector<Trainable> ts;
  AdamW opt(c.adamw);
  const auto embeddings = trainable_names(model, "embeddings");  // they train at embedding_lr
  for (const auto& n : names) {
    auto& p = model.param(n);
    p.set_requires_grad(true);
    auto master = train_rows.defined()                ? p.detach().index_select(0, train_rows).to(master_dtype)
                  : p.scalar_type() == master_dtype ? p
                                                    : p.detach().to(master_dtype).clone();
    Trainable t{n, p, master, train_rows};
    ts.push_back(t);
    const bool embedding = std::find(embeddings.begin(), embeddings.end(), n) != embeddings.end();
    opt.add(n, t.master, embedding ? c.embedding_lr / c.lr : 1.0);
  }
  // Frozen parameters: no gradients, so backward skips their weight-gradient matmuls.
  struct RestoreGrad {
    LlamaModel& m;
    ~RestoreGrad() {
      for (auto& [_, p] : m.parameters()) const_cast<torch::Tensor&>(p).set_requires_grad(false);
      for (auto& [_, p] : m.lora_tensors()) const_cast<torch::Tensor&>(p).set_requires_grad(false);
      m.set_activation_checkpointing(false);
      m.set_training(false);
    }
  } restore{model};
  model.set_activation_checkpointing(c.activation_checkpointing);

  // Data-parallel (distributed.h): join the group; gradients of the trainable tensors get summed over
  // ranks by `sync` (the LM head's by hand, the rest from autograd's hooks).
  std::shared_ptr<DataParallel> dp;
  std::unique_ptr<GradSync> sync;
  if (c.dist.world_size > 1) {
    dp = DataParallel::join(c.dist, model.device());
    std::vector<GradSync::Entry> entries;
    for (const auto& t : ts)
      entries.push_back({t.name, t.param, train_rows,
                         t.name == "model.embed_tokens.weight" && !cfg.tie_word_embeddings, t.name == "lm_head.weight"});
    sync = std::make_unique<GradSync>(dp, std::move(entries));
  }
  const int64_t world = dp ? dp->world() : 1, rank = dp ? dp->rank() : 0;

  TrainReport report;
  report.blas_threads = blas_threads();
  report.intra_op_threads = at::get_num_threads();
  report.products = threads.products();
  int64_t step = 0;
  if (!c.resume_from.empty()) {
    torch::NoGradGuard no_grad;
    // The run's own record first: a refused resume leaves the model's weights as they were.
    std::ifstream sj((fs::path(c.resume_from) / "state.json").string());
    nlohmann::json j = nlohmann::json::parse(sj);
    step = j.at("step").get<int64_t>();
    report.steps_done = step;  // steps_done counts from the run's start: a resume with none left reported 0
    // A resume with no step left (a run whose final write failed) reports the checkpoint's loss.
    if (j.contains("loss") && j.at("loss").is_number()) report.last_loss = j.at("loss").get<double>();
    if (j.contains("global_batch") && j.at("global_batch").get<int64_t>() != global_batch(c))
      throw Error("LEP_RESUME_MISMATCH", "the checkpoint " + c.resume_from + " was trained with a global batch of " +
                                             std::to_string(j.at("global_batch").get<int64_t>()) + " blocks, this run has " +
                                             std::to_string(global_batch(c)) + " (batch size x grad accumulation x ranks)" +
                                             "\nHINT: keep batch size x grad accumulation x number of processes as it was, or start afresh (--no-resume).");
    SafetensorsFile w((fs::path(c.resume_from) / "trainable.safetensors").string());
    auto state = read_checkpoint({(fs::path(c.resume_from) / "optimizer.safetensors").string()});
    for (auto& t : ts) {
      if (t.rows.defined()) {
        resume_rows(t, w.tensor(t.name), state);
        continue;
      }
      t.master.copy_(w.tensor(t.name));
      if (!t.param.is_same(t.master)) t.param.copy_(t.master);
    }
    opt.load_state(state);
    opt.set_steps(step);
    report.last_checkpoint = c.resume_from;
  }
  if (!c.checkpoint_dir.empty()) fs::create_directories(c.checkpoint_dir);
  if (dp) {
    if (data.tokens.size(0) < world)
      throw Error("LEP_BAD_DATA", "the training data has " + std::to_string(data.tokens.size(0)) + " blocks, fewer than the " +
                                      std::to_string(world) + " ranks\nHINT: pack more text, or run fewer processes.");
    dp->check_same({{"the resumed step", static_cast<double>(step)},
                    {"the number of training blocks", static_cast<double>(data.tokens.size(0))},
                    {"the training data (sum of token ids)", data.tokens.sum(torch::kInt64).item<double>()},
                    {"the block length", static_cast<double>(data.tokens.size(1))},
                    {"the number of evaluation blocks", eval_data.tokens.defined() ? static_cast<double>(eval_data.tokens.size(0)) : 0.0},
                    {"the batch size", static_cast<double>(c.batch_size)},
                    {"gradient accumulation", static_cast<double>(c.grad_accum)},
                    {"the number of steps", static_cast<double>(c.steps)},
                    {"the learning rate", c.lr},
                    {"the seed", static_cast<double>(c.seed)},
                    {"the trainable parameters", static_cast<double>(ts.size())},
                    // Which rows, not only how many: ranks with different sets of one size would all-reduce
                    // gradients into different rows. The distinct rows' count, sum and sum of squares
                    // (exact in a double up to about 200k ids; beyond, rounded alike on every rank).
                    {"the trainable rows (distinct)", train_rows.defined() ? static_cast<double>(train_rows.size(0)) : 0.0},
                    {"the trainable rows (sum of ids)", train_rows.defined() ? train_rows.sum().item<double>() : 0.0},
                    {"the trainable rows (sum of squared ids)", train_rows.defined() ? train_rows.to(torch::kFloat64).square().sum().item<double>() : 0.0}});
  }

  BlockOrder order(data.tokens.size(0), c.seed);
  const int64_t T = data.tokens.size(1) - 1;
  LmLossWorkspace loss_buffers;  // the loss's chunk buffers, for every step and evaluation of the job
  auto send_eval = [&](int64_t at) {
    if (!eval_data.tokens.defined()) return true;
    auto [sum, count] = eval_sums(model, eval_data, c.batch_size, c.eval_batches, rank, world, &loss_buffers);
    if (dp) {
      const auto v = dp->sum({sum, static_cast<double>(count)}, "the evaluation at step " + std::to_string(at));
      sum = v[0];
      count = static_cast<int64_t>(v[1]);
    }
    report.last_eval_loss = count ? sum / count : 0.0;
    const bool go = !progress || progress(ProgressEvent{"eval", at, c.steps, {{"eval_loss", report.last_eval_loss}}});
    return dp ? dp->all(go, "the stop check after the evaluation at step " + std::to_string(at)) : go;
  };
  if (step == 0 && !send_eval(0)) {
    report.stopped_early = true;
    return report;
  }
  auto t0 = std::chrono::steady_clock::now();
  int64_t tokens_since = 0;
  while (step < c.steps) {
    // Micro-batches of this step, and the token count the loss is averaged over.
    std::vector<Batch> micro;
    int64_t step_tokens = 0;
    for (int64_t a = 0; a < c.grad_accum; ++a) {
      std::vector<int64_t> rows;
      // Draw k of step s is the global batch's k-th block; rank r takes its contiguous part.
      for (int64_t i = 0; i < c.batch_size; ++i) rows.push_back(order.at(((step * world + rank) * c.grad_accum + a) * c.batch_size + i));
      micro.push_back(make_batch(data, rows, model.device()));
      step_tokens += micro.back().mask.defined() ? micro.back().mask.sum().item<int64_t>() : micro.back().targets.numel();
    }
    const std::string at_step = " of step " + std::to_string(step + 1);
    if (dp) {  // the loss is a mean over the global batch's target tokens
      step_tokens = static_cast<int64_t>(dp->sum({static_cast<double>(step_tokens)}, "the token count" + at_step)[0]);
      std::vector<torch::Tensor> ids;
      for (const auto& b : micro) ids.push_back(b.ids);
      sync->begin_step(ids, step);
    }
    double loss_sum = 0;
    int64_t comm_bytes = 0;
    for (auto& t : ts) t.param.mutable_grad() = torch::Tensor();
    // Dropout masks (LoRA) from a generator seeded by (seed, step): the same on resume. Each rank draws its own.
    model.set_training(true, c.seed * 1000003ULL + static_cast<uint64_t>(step) + static_cast<uint64_t>(rank) * 0x9E3779B97F4A7C15ULL);
    for (size_t a = 0; a < micro.size(); ++a) {
      const bool last = a + 1 == micro.size();
      if (sync && last) sync->arm();
      const auto r = micro_step(model, micro[a], 1.0 / std::max<int64_t>(1, step_tokens), head_trainable,
                                sync && last ? std::function<void()>([&] { sync->mark_ready(head_of(model)); }) : nullptr,
                                train_rows, &loss_buffers);
      loss_sum += r.loss_sum;
      report.loss_chunk_rows = std::max(report.loss_chunk_rows, r.chunk_rows);
      report.head_grad_rows = r.head_grad_rows;
    }
    model.set_training(false);
    if (dp) {
      comm_bytes = sync->finish();
      loss_sum = dp->sum({loss_sum}, "the loss" + at_step)[0];
    }
    const double loss = loss_sum / std::max<int64_t>(1, step_tokens);
    if (!std::isfinite(loss))
      throw Error("LEP_NAN_LOSS", "the training loss became " + std::to_string(loss) + " at step " + std::to_string(step + 1) +
                                      "; parameters were not updated" +
                                      (report.last_checkpoint.empty() ? "" : "; the last good checkpoint is " + report.last_checkpoint) +
                                      "\nHINT: lower the learning rate, or use f32 instead of bf16.");
    // Gradients in master precision (only the selected rows' of a row set), global norm clipped.
    double sq = 0;
    std::vector<torch::Tensor> device_squares;  // on a GPU, summed there: one host sync a step, not one a tensor
    std::map<std::string, torch::Tensor> grads;
    for (auto& t : ts) {
      fork_safe_point();  // between two tensors (core/fork_gate.h); the update below has its own
      auto g = t.rows.defined() ? t.param.grad().index_select(0, t.rows) : t.param.grad();
      g = g.to(t.master.scalar_type());
      auto square = g.pow(2).sum();
      if (square.is_cpu()) sq += square.item<double>();
      else device_squares.push_back(square.to(torch::kFloat64));
      grads[t.name] = g;
    }
    if (!device_squares.empty()) sq += torch::stack(device_squares).sum().item<double>();
    const double grad_norm = std::sqrt(sq);
    if (c.clip > 0 && grad_norm > c.clip) {
      const double coef = c.clip / (grad_norm + 1e-6);
      for (auto& [_, g] : grads) g.mul_(coef);
    }
    const double lr = lr_at(c, step);
    opt.step(lr, grads);
    {
      torch::NoGradGuard no_grad;
      for (auto& t : ts)
        if (t.rows.defined()) t.param.index_copy_(0, t.rows, t.master.to(t.param.scalar_type()));
        else if (!t.master.is_same(t.param)) t.param.copy_(t.master);
    }
    ++step;
    tokens_since += step_tokens;
    report.steps_done = step;
    report.last_loss = loss;
    // A stop asked for between reports ends the run at this step too, not at the next reported one
    // (report_every 1000 kept a Ctrl-C waiting a minute).
    bool keep_going = true;
    if (progress && (step % std::max<int64_t>(1, c.report_every) == 0 || step == c.steps)) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      keep_going = progress(ProgressEvent{"train", step, c.steps,
                                          {{"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm},
                                           {"tokens", static_cast<double>(step_tokens)},
                                           {"tokens_per_s", secs > 0 ? tokens_since / secs : 0.0},
                                           {"allreduce_bytes", static_cast<double>(comm_bytes)},
                                           {"allreduce_wait_s", sync ? sync->last_wait_s() : 0.0},
                                           {"allreduce_early_buckets", sync ? static_cast<double>(sync->last_early_buckets()) : 0.0}}});
      t0 = std::chrono::steady_clock::now();
      tokens_since = 0;
    }
    keep_going = keep_going && !job_stop_requested();
    if (dp) keep_going = dp->all(keep_going, "the stop check" + at_step);  // a stop on one rank stops all here
    if (keep_going && ((c.eval_every > 0 && step % c.eval_every == 0) || step == c.steps)) keep_going = send_eval(step);
    const bool periodic = c.checkpoint_every > 0 && step % c.checkpoint_every == 0;
    if (!c.checkpoint_dir.empty() && (periodic || !keep_going || step == c.steps)) {
      try {
        report.last_checkpoint = rank == 0 ? save_checkpoint(c, ts, opt, step, loss)  // the ranks hold the same weights
                                           : (fs::path(c.checkpoint_dir) / checkpoint_name(step)).string();
      } catch (const Error& e) {
        // The writer refuses non-finite weights (finite_check.h). Here that means this step's update blew
        // the weights up before the loss showed it: say so as the loss check does, naming the last good
        // checkpoint to resume from, which stays the newest one.
        if (e.code() != "LEP_NON_FINITE") throw;
        const std::string what = e.what();
        throw Error("LEP_NAN_WEIGHTS", "the weights became non-finite in the update of step " + std::to_string(step) +
                                           " (" + what.substr(0, what.find("\nHINT")) + ")" +
                                           (report.last_checkpoint.empty() ? "" : "; the last good checkpoint is " + report.last_checkpoint) +
                                           "\nHINT: lower the learning rate, or use f32 instead of bf16.");
      }
    }
    if (!keep_going) {
      report.stopped_early = step < c.steps;
      break;
    }
  }
  (void)T;
  return report;
}

LossAndGrads loss_and_grads(LlamaModel& model, const torch::Tensor& blocks, const torch::Tensor& loss_mask,
                            const std::string& params) {
  const auto names = trainable_names(model, params);
  const auto& cfg = model.config();
  ComputeThreads threads(model, Work::kTraining);
  const bool head_trainable =
      std::find(names.begin(), names.end(), cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight") != names.end();
  for (const auto& n : names) {
    model.param(n).set_requires_grad(true);
    model.param(n).mutable_grad() = torch::Tensor();
  }
  const int64_t T = blocks.size(1) - 1;
  auto blk = blocks.to(torch::kInt64);
  Batch b{blk.narrow(1, 0, T).to(model.device()), blk.narrow(1, 1, T).to(model.device()), {}};
  if (loss_mask.defined()) b.mask = loss_mask.narrow(1, 1, T).to(torch::kBool).to(model.device());
  const int64_t count = b.mask.defined() ? b.mask.sum().item<int64_t>() : b.targets.numel();
  auto r = micro_step(model, b, 1.0 / std::max<int64_t>(1, count), head_trainable);
  std::map<std::string, torch::Tensor> grads;
  for (const auto& n : names) {
    grads[n] = model.param(n).grad().defined() ? model.param(n).grad().clone() : torch::zeros_like(model.param(n));
    model.param(n).mutable_grad() = torch::Tensor();
    model.param(n).set_requires_grad(false);
  }
  return {r.loss_sum / std::max<int64_t>(1, count), std::move(grads), threads.products(), r.chunk_rows, r.head_grad_rows};
}

}  // namespace lep
