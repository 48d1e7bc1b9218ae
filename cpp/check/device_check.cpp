// lep_device_check: lep's core on one device and dtype (a GPU) against the same core on the CPU in
// float32, on one random model: scoring, greedy generation, gradients, training with a checkpoint and a
// resume, LoRA training with dropout, propagation, and a device allocation failure's code and hint. One line
// per check (PASS/FAIL, the numbers, the tolerance), timings beside the CPU's, and `report.json` in --out;
// exit status 1 when a check failed.
//
//   lep_device_check --device cuda [--dtype f32|bf16] [--size toy|small] [--out DIR]
//
// Why a C++ program and not the test suite: a GPU machine here has PyTorch (its libtorch and CMake files)
// but no Node and no network, so the device check builds the core alone against that libtorch
// (scripts/device-check.sh, cmake -DLEP_DEVICE_CHECK=ON). On a machine without a GPU it runs CPU bf16
// against CPU f32 (test/native/device-check.test.ts), so it cannot rot unseen.
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/checkpoint.h"
#include "core/device.h"
#include "core/error.h"
#include "core/generate.h"
#include "core/llama_model.h"
#include "core/propagate.h"
#include "core/safetensors.h"
#include "core/score.h"
#include "core/torch_failure.h"
#include "core/trainer.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string device = "cuda", dtype = "f32", size = "toy", out = "device-check-out";
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) throw lep::Error("LEP_BAD_ARGUMENT", k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--device") a.device = v;
    else if (k == "--dtype") a.dtype = v;
    else if (k == "--size") a.size = v;
    else if (k == "--out") a.out = v;
    else throw lep::Error("LEP_BAD_ARGUMENT", "unknown flag " + k + "\nHINT: --device D --dtype f32|bf16 --size toy|small --out DIR");
  }
  if (a.dtype != "f32" && a.dtype != "bf16") throw lep::Error("LEP_BAD_ARGUMENT", "--dtype is f32 or bf16");
  if (a.size != "toy" && a.size != "small") throw lep::Error("LEP_BAD_ARGUMENT", "--size is toy or small");
  return a;
}

// toy: GQA, untied head, a 32000 vocabulary (the head dominates, as in real models); small: the bench's
// small shape scaled up, for timings worth reading on a GPU.
lep::ModelConfig model_config(const std::string& size) {
  lep::ModelConfig c;
  c.vocab_size = 32000;
  c.hidden_size = size == "toy" ? 128 : 1024;
  c.intermediate_size = size == "toy" ? 352 : 2816;
  c.num_hidden_layers = size == "toy" ? 3 : 8;
  c.num_attention_heads = size == "toy" ? 4 : 16;
  c.num_key_value_heads = size == "toy" ? 2 : 4;
  c.head_dim = c.hidden_size / c.num_attention_heads;
  c.max_position_embeddings = 512;
  c.rms_norm_eps = 1e-5;
  lep::validate(c);
  return c;
}

// Seconds since t0, once `device` has finished what was queued (a GPU's kernels run after the call that
// queued them returns).
double since(Clock::time_point t0, torch::Device device = torch::kCPU) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// The larger of two errors, a NaN counting as the largest (std::max drops it: a broken path would pass).
double worse(double worst, double e) { return std::isnan(e) ? INFINITY : std::max(worst, e); }

// The results, printed as they come and written as report.json.
struct Report {
  nlohmann::json checks = nlohmann::json::array(), timings = nlohmann::json::object();
  int failed = 0;

  void check(const std::string& name, bool pass, const std::string& detail) {
    std::printf("%s %s: %s\n", pass ? "PASS" : "FAIL", name.c_str(), detail.c_str());
    std::fflush(stdout);
    checks.push_back({{"name", name}, {"pass", pass}, {"detail", detail}});
    failed += pass ? 0 : 1;
  }
  // A check whose body threw: a failure with the code and message lep would report.
  void run(const std::string& name, const std::function<void()>& body) {
    try {
      body();
    } catch (...) {
      const lep::Failure f = lep::describe_torch_failure(std::current_exception());
      check(name, false, "threw " + f.code + ": " + f.message);
    }
  }
  void timing(const std::string& name, double device_s, double cpu_s) {
    std::printf("time %s: %.3f s on the device, %.3f s on the CPU (%.2fx)\n", name.c_str(), device_s, cpu_s, cpu_s / device_s);
    timings[name] = {{"device_s", device_s}, {"cpu_s", cpu_s}};
  }
};

std::string num(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.3g", x);
  return b;
}

// Tolerances of the device against CPU float32: float32 differs by summation order only (TF32 stays off
// in libtorch's matmul by default); bf16 by its 8-bit mantissa through every layer.
// `resume`: a resumed run against the run that went through, on the same device (atomics' order only).
struct Tolerance {
  double logprob, grad, loss, resume;
};
Tolerance tolerance(torch::ScalarType dtype) {
  if (dtype == torch::kFloat32) return {2e-3, 1e-3, 1e-4, 1e-6};
  return {0.25, 0.08, 3e-2, 1e-3};
}

const lep::ProgressFn kQuiet = [](const lep::ProgressEvent&) { return true; };

std::vector<std::vector<int64_t>> random_sequences(const std::vector<int64_t>& lengths, int64_t vocab, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::vector<std::vector<int64_t>> out;
  for (int64_t n : lengths) {
    auto t = torch::randint(3, vocab, {n}, gen, torch::kInt64);
    out.emplace_back(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n);
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = a.size() == b.size() ? 0 : INFINITY;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = worse(m, std::abs(static_cast<double>(a[i]) - b[i]));
  return m;
}

struct Setup {
  lep::ModelConfig config;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;
  std::map<std::string, torch::Tensor> weights;  // the master copy, CPU float32
  fs::path out;

  std::unique_ptr<lep::LlamaModel> model(torch::Device d, torch::ScalarType t) const {
    auto m = std::make_unique<lep::LlamaModel>(config, d, t);
    m->load_weights(weights);
    return m;
  }
  std::unique_ptr<lep::LlamaModel> on_device() const { return model(device, dtype); }
  std::unique_ptr<lep::LlamaModel> reference() const { return model(torch::kCPU, torch::kFloat32); }
};

void check_scores(const Setup& s, Report& r) {
  const auto seqs = random_sequences({9, 33, 64, 130}, s.config.vocab_size, 1);
  auto dev = s.on_device();
  auto ref = s.reference();
  lep::ScoreOptions o;
  (void)lep::score(*dev, {seqs[0]}, o, kQuiet);  // untimed: a GPU's context, kernels and handles start here
  (void)lep::score(*ref, {seqs[0]}, o, kQuiet);
  auto t0 = Clock::now();
  const auto a = lep::score(*dev, seqs, o, kQuiet);
  const double dev_s = since(t0, s.device);
  t0 = Clock::now();
  const auto b = lep::score(*ref, seqs, o, kQuiet);
  r.timing("score", dev_s, since(t0));
  double worst = 0, lo = 0, hi = -INFINITY;
  for (size_t i = 0; i < seqs.size(); ++i) {
    worst = worse(worst, max_abs_diff(a[i].token_logprobs, b[i].token_logprobs));
    for (float x : b[i].token_logprobs) lo = std::min<double>(lo, x), hi = std::max<double>(hi, x);
  }
  const double tol = tolerance(s.dtype).logprob;
  r.check("score", worst <= tol, "max |Δ log p| " + num(worst) + " over 232 tokens (tolerance " + num(tol) + "; CPU log p from " + num(lo) + " to " + num(hi) + ")");
}

// Greedy tokens generated on the device, each checked on the CPU reference: its log-probability there is
// within the tolerance of the largest one (a near tie may go either way; a wrong token is far off).
void check_generate(const Setup& s, Report& r) {
  const auto prompts = random_sequences({5, 12, 31}, s.config.vocab_size, 2);
  auto dev = s.on_device();
  auto ref = s.reference();
  lep::GenerateOptions o;
  o.max_new_tokens = 24;
  auto t0 = Clock::now();
  const auto got = lep::generate(*dev, prompts, o, kQuiet);
  const double dev_s = since(t0, s.device);
  t0 = Clock::now();
  (void)lep::generate(*ref, prompts, o, kQuiet);
  r.timing("generate 3 x 24 tokens", dev_s, since(t0));
  double worst_gap = 0, margin = 0;
  int64_t tokens = 0;
  lep::ScoreOptions so;
  so.last_logprobs = true;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<int64_t> seq = prompts[i];
    for (int64_t tok : got[i].tokens) {
      const auto dist = lep::score(*ref, {seq}, so, kQuiet)[0].last_logprobs;
      const float best = *std::max_element(dist.begin(), dist.end());
      worst_gap = worse(worst_gap, best - dist.at(static_cast<size_t>(tok)));
      std::vector<float> sorted(dist);
      std::nth_element(sorted.begin(), sorted.begin() + 1, sorted.end(), std::greater<float>());
      margin += sorted[0] - sorted[1];
      seq.push_back(tok);
      ++tokens;
    }
  }
  const double tol = tolerance(s.dtype).logprob;
  r.check("generate", tokens == 72 && worst_gap <= tol,
          std::to_string(tokens) + " greedy tokens; the largest gap to the CPU's best log p " + num(worst_gap) + " (tolerance " + num(tol) +
              "; mean margin of the CPU's best over its second " + num(margin / std::max<int64_t>(1, tokens)) + ")");
}

torch::Tensor random_blocks(int64_t n, int64_t len, int64_t vocab, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return torch::randint(3, vocab, {n, len}, gen, torch::kInt64);
}

void check_gradients(const Setup& s, Report& r) {
  const auto blocks = random_blocks(4, 65, s.config.vocab_size, 3);
  const double tol = tolerance(s.dtype).grad;
  (void)lep::loss_and_grads(*s.on_device(), blocks, torch::Tensor(), "all");  // untimed: autograd's device thread starts here
  for (const std::string params : {"all", "embeddings"}) {
    auto dev = s.on_device();
    auto ref = s.reference();
    auto t0 = Clock::now();
    const auto a = lep::loss_and_grads(*dev, blocks, torch::Tensor(), params);
    const double dev_s = since(t0, s.device);
    t0 = Clock::now();
    const auto b = lep::loss_and_grads(*ref, blocks, torch::Tensor(), params);
    r.timing("loss and gradients (" + params + ")", dev_s, since(t0));
    double worst = 0;
    std::string worst_name;
    for (const auto& [name, g] : b.grads) {
      const auto it = a.grads.find(name);
      const double e = it == a.grads.end() ? INFINITY
                                           : (it->second.to(torch::kCPU, torch::kFloat64) - g.to(torch::kFloat64)).norm().item<double>() /
                                                 std::max(1e-30, g.to(torch::kFloat64).norm().item<double>());
      const double w = worse(worst, e);
      if (w != worst || worst_name.empty()) worst = w, worst_name = name;
    }
    const double loss_err = worse(0, std::abs(a.loss - b.loss) / std::abs(b.loss));
    r.check("gradients (" + params + ")", a.grads.size() == b.grads.size() && worst <= tol && loss_err <= tolerance(s.dtype).loss,
            std::to_string(b.grads.size()) + " tensors, worst relative error " + num(worst) + " (" + worst_name + "), loss " + num(a.loss) +
                " against " + num(b.loss) + " (tolerance " + num(tol) + ", loss " + num(tolerance(s.dtype).loss) + ")");
  }
}

std::vector<double> train_losses(lep::LlamaModel& m, lep::TrainConfig c) {
  std::vector<double> losses;
  lep::train(m, c, [&](const lep::ProgressEvent& e) {
    if (e.phase == "train") losses.push_back(e.values.at("loss"));
    return true;
  });
  return losses;
}

void check_training(const Setup& s, Report& r) {
  const fs::path data = s.out / "blocks.safetensors";
  lep::write_safetensors(data.string(), {{"tokens", random_blocks(16, 65, s.config.vocab_size, 4).to(torch::kInt32)}});
  lep::TrainConfig c;
  c.params = "embeddings";
  c.data = data.string();
  c.batch_size = 4;
  c.steps = 4;
  c.lr = c.embedding_lr = 1e-3;
  c.warmup_steps = 1;
  c.seed = 7;
  c.checkpoint_every = 2;  // both sides write the same checkpoints: the timings compare the same work
  c.checkpoint_dir = (s.out / "checkpoints-cpu").string();
  auto ref_model = s.reference();
  auto t0 = Clock::now();
  const auto ref = train_losses(*ref_model, c);
  const double cpu_s = since(t0);
  c.checkpoint_dir = (s.out / "checkpoints").string();
  auto dev_model = s.on_device();
  t0 = Clock::now();
  const auto dev = train_losses(*dev_model, c);
  r.timing("4 embedding training steps, 2 checkpoints", since(t0, s.device), cpu_s);
  double worst = dev.size() == ref.size() && !dev.empty() ? 0 : INFINITY;
  for (size_t i = 0; i < dev.size() && i < ref.size(); ++i) worst = worse(worst, std::abs(dev[i] - ref[i]) / ref[i]);
  const double tol = tolerance(s.dtype).loss;
  r.check("training (embeddings)", worst <= tol,
          "losses " + (dev.empty() ? std::string("-") : num(dev.front()) + " .. " + num(dev.back())) + ", worst relative difference from the CPU's " + num(worst) + " (tolerance " + num(tol) + ")");
  // Resumed from step 2 into a fresh model: the same last loss as the run that went through.
  c.resume_from = (s.out / "checkpoints" / "step-00000002").string();
  c.checkpoint_dir.clear();
  auto resumed_model = s.on_device();
  const auto resumed = train_losses(*resumed_model, c);
  const double d = resumed.empty() || dev.empty() ? INFINITY : worse(0, std::abs(resumed.back() - dev.back()) / dev.back());
  const double rtol = tolerance(s.dtype).resume;
  r.check("training resumed from a checkpoint", resumed.size() == 2 && d <= rtol,
          std::to_string(resumed.size()) + " steps after step 2, last loss " + (resumed.empty() ? "-" : num(resumed.back())) + " against " + (dev.empty() ? "-" : num(dev.back())) +
              " (relative difference " + num(d) + ", tolerance " + num(rtol) + ")");
}

void check_lora(const Setup& s, Report& r) {
  lep::TrainConfig c;
  c.params = "lora";
  c.lora.rank = 4;
  c.lora.dropout = 0.1;
  c.data = (s.out / "blocks.safetensors").string();
  c.batch_size = 4;
  c.steps = 3;
  c.lr = 1e-2;
  auto m = s.on_device();
  const auto losses = train_losses(*m, c);
  bool finite = losses.size() == 3;
  for (double x : losses) finite = finite && std::isfinite(x);
  double moved = 0;
  for (const auto& [name, t] : m->lora_tensors())
    if (name.find("lora_B") != std::string::npos) moved = worse(moved, t.abs().max().item<double>());
  finite = finite && std::isfinite(moved);
  r.check("training (LoRA, dropout 0.1)", finite && moved > 0,
          "losses " + (losses.empty() ? std::string("-") : num(losses.front()) + " .. " + num(losses.back())) + ", largest |B| after 3 steps " + num(moved));
}

// Conversion and overlap on embeddings of the model's size, float32 files: the device's float64 solve
// against the CPU's.
void check_propagation(const Setup& s, Report& r) {
  const int64_t V = s.config.vocab_size, C = s.config.hidden_size, Vn = V + 500;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto base = torch::randn({V, C}, gen);
  const auto mix = torch::eye(C) + 0.1 * torch::randn({C, C}, gen);
  const auto inst = torch::mm(base, mix) + 0.01 * torch::randn({V, C}, gen);
  const auto donor = torch::randn({Vn, C}, gen);
  const auto write = [&](const std::string& name, const torch::Tensor& e) {
    const auto p = (s.out / name).string();
    lep::write_safetensors(p, {{"model.embed_tokens.weight", e}, {"lm_head.weight", e * 0.5}});
    return p;
  };
  lep::PropagateOptions o;
  o.base_files = {write("base.safetensors", base)};
  o.donor_files = {write("donor.safetensors", donor)};
  const auto inst_file = write("instruct.safetensors", inst);
  // T: the first 20000 new tokens are old ones (the overlap pairs too); each later one is the mean of 1-3
  // old ones.
  const auto ids = torch::randint(0, V, {Vn, 3}, gen, torch::kInt64);
  o.t_offsets.push_back(0);
  for (int64_t i = 0; i < Vn; ++i) {
    if (i < 20000) o.t_indices.push_back(i);
    else
      for (int64_t k = 0; k <= i % 3; ++k) o.t_indices.push_back(ids[i][k].item<int64_t>());
    o.t_offsets.push_back(static_cast<int64_t>(o.t_indices.size()));
  }
  for (int64_t i = 0; i < 20000; ++i) o.overlap_new.push_back(i), o.overlap_old.push_back(i);
  for (const auto method : {lep::PropagateMethod::kConversion, lep::PropagateMethod::kOverlap}) {
    const std::string name = method == lep::PropagateMethod::kConversion ? "conversion" : "overlap";
    std::map<std::string, torch::Tensor> outs[2];
    double seconds[2] = {0, 0};
    for (int side = 0; side < 2; ++side) {
      lep::PropagateOptions p = o;
      p.device = side == 0 ? s.device.str() : "cpu";
      lep::PropagateTarget t;
      t.method = method;
      t.instruct_files = {inst_file};
      t.out_rows = Vn;
      t.out_dir = (s.out / ("propagated-" + name + (side == 0 ? "-device" : "-cpu"))).string();
      p.targets = {t};
      auto t0 = Clock::now();
      const auto rep = lep::propagate(p, kQuiet);
      seconds[side] = since(t0, side == 0 ? s.device : torch::Device(torch::kCPU));
      if (!rep.targets[0].error_code.empty()) throw lep::Error(rep.targets[0].error_code, rep.targets[0].error_message);
      std::vector<std::string> files;
      for (const auto& f : rep.targets[0].files)
        if (fs::path(f).extension() == ".safetensors") files.push_back((fs::path(t.out_dir) / f).string());
      for (const auto& [k, v] : lep::read_checkpoint(files)) outs[side][k] = v.clone();
    }
    r.timing("propagate (" + name + ")", seconds[0], seconds[1]);
    double worst = 0;
    for (const auto& [k, v] : outs[1])
      worst = worse(worst, (outs[0].at(k).to(torch::kFloat64) - v.to(torch::kFloat64)).abs().max().item<double>() /
                               v.to(torch::kFloat64).abs().max().item<double>());
    r.check("propagation (" + name + ")", worst <= 1e-6, "largest difference from the CPU's, relative to the largest entry: " + num(worst) + " (tolerance 1e-6)");
  }
}

// A device allocation larger than the device: LEP_OUT_OF_MEMORY with the GPU's hint, and the device
// still works afterwards.
void check_out_of_memory(const Setup& s, Report& r) {
  if (!s.device.is_cuda()) return;
  lep::Failure f;
  try {
    auto t = torch::empty({int64_t{1} << 40}, torch::TensorOptions().dtype(torch::kFloat32).device(s.device));  // 4 TiB
    f = {"none", "allocated " + std::to_string(t.numel()) + " floats"};
  } catch (...) {
    f = lep::describe_torch_failure(std::current_exception());
  }
  const bool hint = f.message.find("HINT: the GPU's memory is full") != std::string::npos;
  const auto after = torch::ones({1024}, torch::TensorOptions().device(s.device)).sum().item<double>();
  r.check("out of memory", f.code == "LEP_OUT_OF_MEMORY" && hint && after == 1024, f.code + ": " + f.message.substr(0, f.message.find('\n')) + (hint ? " (GPU hint)" : " (no GPU hint)"));
}

void check_devices(const Setup& s, Report& r) {
  if (!s.device.is_cuda()) return;
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  std::string code = "none";
  try {
    lep::parse_device("cuda:" + std::to_string(count));
  } catch (const lep::Error& e) {
    code = e.code();
  }
  r.check("a device index past the last GPU", code == "LEP_NO_CUDA", "cuda:" + std::to_string(count) + " with " + std::to_string(count) + " visible: " + code);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse_args(argc, argv);
    Setup s;
    s.config = model_config(a.size);
    s.device = lep::parse_device(a.device);
    s.dtype = a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
    s.out = a.out;
    fs::create_directories(s.out);
    {
      lep::LlamaModel master(s.config, torch::kCPU, torch::kFloat32);
      // A larger embedding and head scale than a trained model's init: peaked next-token distributions, so
      // that a wrong greedy token is far from the best one. Scaled by 1/sqrt(hidden) from the toy shape's
      // 0.5, so the logits, and bf16's rounding of them, are the same size at every shape.
      master.init_random(0.05, 0.5 * std::sqrt(128.0 / static_cast<double>(s.config.hidden_size)), 11);
      for (const auto& [k, v] : master.parameters()) s.weights[k] = v.clone();
    }
    std::printf("lep_device_check: %s %s, model hidden %lld, %lld layers, vocab %lld; libtorch %s\n", a.device.c_str(), a.dtype.c_str(),
                static_cast<long long>(s.config.hidden_size), static_cast<long long>(s.config.num_hidden_layers),
                static_cast<long long>(s.config.vocab_size), TORCH_VERSION);
    Report r;
    const std::pair<const char*, void (*)(const Setup&, Report&)> checks[] = {
        {"devices", check_devices},       {"score", check_scores},   {"generate", check_generate},
        {"gradients", check_gradients},   {"training", check_training}, {"lora", check_lora},
        {"propagation", check_propagation}, {"out of memory", check_out_of_memory}};
    for (const auto& [name, fn] : checks) r.run(name, [&, fn = fn] { fn(s, r); });
    const std::string json =
        nlohmann::json{{"device", a.device}, {"dtype", a.dtype}, {"size", a.size}, {"libtorch", TORCH_VERSION}, {"failed", r.failed}, {"checks", r.checks}, {"timings", r.timings}}.dump(2) + "\n";
    lep::AtomicFile report((s.out / "report.json").string());  // whole or absent, with lep's I/O errors
    report.write(json.data(), json.size());
    report.commit();
    std::printf("%d passed, %d failed\n", static_cast<int>(r.checks.size()) - r.failed, r.failed);
    return r.failed ? 1 : 0;
  } catch (...) {
    const lep::Failure f = lep::describe_torch_failure(std::current_exception());
    std::fprintf(stderr, "lep_device_check: %s\n(code %s)\n", f.message.c_str(), f.code.c_str());
    return 2;
  }
}
