#include "core/llama_model.h"

#include <cmath>

#include "core/error.h"
#include "core/fork_gate.h"
#include "core/model_tensors.h"
#include "core/onednn.h"
#include "core/runtime.h"

namespace lep {

void validate(const ModelConfig& c) {
  auto need = [](bool ok, const std::string& field, const std::string& what) {
    if (!ok) throw Error("LEP_BAD_CONFIG", "config." + field + " " + what);
  };
  need(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2", "model_type",
       "must be llama, mistral or qwen2, got '" + c.model_type + "'");
  need(c.vocab_size > 0, "vocab_size", "must be positive");
  need(c.hidden_size > 0, "hidden_size", "must be positive");
  need(c.intermediate_size > 0, "intermediate_size", "must be positive");
  need(c.num_hidden_layers > 0, "num_hidden_layers", "must be positive");
  need(c.num_attention_heads > 0, "num_attention_heads", "must be positive");
  need(c.num_key_value_heads > 0 && c.num_attention_heads % c.num_key_value_heads == 0, "num_key_value_heads",
       "must divide num_attention_heads");
  need(c.head_dim > 0 && c.head_dim % 2 == 0, "head_dim", "must be a positive even number");
  need(c.rope_scaling.type.empty() || c.rope_scaling.type == "llama3", "rope_scaling.rope_type",
       "must be absent or llama3, got '" + c.rope_scaling.type + "'");
}

namespace {
std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }
// Precision for norms, attention scores and logits: float32, or float64 for float64 models (gradient checks).
torch::ScalarType acc_type(torch::ScalarType t) { return t == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32; }
}  // namespace

LlamaModel::LlamaModel(const ModelConfig& config, torch::Device device, torch::ScalarType dtype)
    : config_(config), device_(device), dtype_(dtype) {
  validate(config_);
  const auto& c = config_;
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  for_each_parameter(c, [&](const std::string& name, const std::vector<Dim>& dims) {
    std::vector<int64_t> shape;
    for (const auto& d : dims) shape.push_back(d.size);
    // Shape and dtype only (the meta device holds no memory): load_weights or init_random gives each
    // parameter its storage. Allocated here, an 8B model's 15 GiB were charged against a strict commit
    // limit (vm.overcommit_memory=2) or a data/address-space ulimit on top of the mapped checkpoint that
    // replaces them at load: twice the model at the peak instead of once.
    params_[name] = torch::empty(shape, opts.device(torch::kMeta));
  });
  inv_freq_ = rope_inv_freq().to(device);
}

torch::Tensor& LlamaModel::param(const std::string& name) {
  auto it = params_.find(name);
  if (it != params_.end()) return it->second;
  for (const char* side : {".lora_A.weight", ".lora_B.weight"}) {
    const std::string suffix = side;
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    auto a = lora_.find(name.substr(0, name.size() - suffix.size()));
    if (a != lora_.end()) return suffix == ".lora_A.weight" ? a->second.a : a->second.b;
  }
  throw Error("LEP_MISSING_TENSOR", "model has no parameter '" + name + "'");
}

void LlamaModel::add_lora(const LoraConfig& c, uint64_t seed) {
  if (has_lora()) throw Error("LEP_BAD_ARGUMENT", "the model already has LoRA adapters; merge them first");
  const auto modules = lora_modules(c, config_);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  // PEFT's default: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)), B = 0.
  auto uniform = [&](int64_t rows, int64_t cols, double bound) {
    return (torch::rand({rows, cols}, gen, torch::kFloat32) * (2 * bound) - bound).to(device_, dtype_);
  };
  for (const auto& m : modules) {
    const auto& w = params_.at(m + ".weight");
    const int64_t out = w.size(0), in = w.size(1);
    LoraAdapter ad{uniform(c.rank, in, 1.0 / std::sqrt(static_cast<double>(in))), torch::Tensor(), c.scale()};
    ad.b = c.init == "random" ? uniform(out, c.rank, 1.0 / std::sqrt(static_cast<double>(c.rank)))
                              : torch::zeros({out, c.rank}, torch::TensorOptions().dtype(dtype_).device(device_));
    lora_[m] = ad;
  }
  lora_config_ = c;
}

std::vector<std::pair<std::string, torch::Tensor>> LlamaModel::lora_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [m, ad] : lora_) {
    out.emplace_back(m + ".lora_A.weight", ad.a);
    out.emplace_back(m + ".lora_B.weight", ad.b);
  }
  return out;
}

void LlamaModel::merge_lora() {
  for (auto& [m, ad] : lora_) merge_into(m, ad.a, ad.b, ad.scale);
  drop_lora();
}

void LlamaModel::merge_into(const std::string& module, const torch::Tensor& a, const torch::Tensor& b, double scale) {
  torch::NoGradGuard no_grad;
  const auto acc = acc_type(dtype_);
  auto& w = params_.at(module + ".weight");
  // Copies of A and B (copy=true): a file's tensors are views of its mapping, aligned to 8 bytes only, and
  // a BLAS may round a product differently by alignment; they are small.
  const auto a_acc = a.to(w.device(), acc, /*non_blocking=*/false, /*copy=*/true);
  const auto b_acc = b.to(w.device(), acc, /*non_blocking=*/false, /*copy=*/true);
  w.copy_((w.to(acc) + torch::matmul(b_acc, a_acc) * scale).to(w.scalar_type()));
}

void LlamaModel::drop_lora() {
  lora_.clear();
  lora_config_ = LoraConfig{};
}

void LlamaModel::set_training(bool on, uint64_t dropout_seed) {
  training_ = on;
  if (!on) return;
  if (device_.is_cpu()) {
    dropout_gen_ = at::detail::createCPUGenerator(dropout_seed);
  } else {
    // The device's own generator, seeded the same way: masks drawn on the CPU and copied cost more than
    // the GPU's whole step (one float per activation of every adapted projection).
    auto shared = at::globalContext().defaultGenerator(device_);  // a handle on the device's own generator
    {
      std::lock_guard<std::mutex> lock(shared.mutex());  // other threads draw from it meanwhile
      dropout_gen_ = shared.clone();
    }
    dropout_gen_.set_current_seed(dropout_seed);
  }
}

void LlamaModel::load_weights(const std::map<std::string, torch::Tensor>& weights, bool in_place) {
  torch::NoGradGuard no_grad;
  for (auto& [name, p] : params_) {
    fork_safe_point();  // between two tensors' copies (core/fork_gate.h): a converting 8B load takes minutes
    auto it = weights.find(name);
    if (it == weights.end())
      throw Error("LEP_MISSING_TENSOR", "checkpoint lacks tensor '" + name +
                                            "'\nHINT: is this a " + config_.model_type + " checkpoint matching its config.json?");
    if (it->second.sizes() != p.sizes())
      throw Error("LEP_SHAPE_MISMATCH", "tensor '" + name + "' has shape " + c10::str(it->second.sizes()) +
                                            " but config.json implies " + c10::str(p.sizes()));
    const auto& w = it->second;
    // A CPU parameter stored in its compute dtype becomes the checkpoint's mmap'ed bytes (mapped
    // copy-on-write by the caller; runtime.h, map_weights): no copy and no anonymous memory, the
    // kernel's page cache holds the weights and pages them in at first use, as llama.cpp does
    // (bench/README.md, "Cost ladder"). A write into it (an optimizer step, a LoRA merge) copies only
    // the pages written; the file never changes. Element-aligned data only (the safetensors header is
    // padded to 8 bytes, so every tensor of a well-formed file is; another file's tensors are copied).
    const bool aligned = reinterpret_cast<uintptr_t>(w.data_ptr()) % w.element_size() == 0;
    if (in_place && device_.is_cpu() && w.device().is_cpu() && w.scalar_type() == dtype_ && w.is_contiguous() && aligned) {
      p = w.detach();  // a tensor of its own over the mapping's storage
      continue;
    }
    p = torch::empty(p.sizes(), torch::TensorOptions().dtype(dtype_).device(device_));
    // F16 is upcast through float32: CPU half matmul is missing in libtorch 1.13. Other dtypes are copied
    // straight into the parameter (copy_ converts element-wise): going through a float32 copy of every
    // tensor added the largest one in f32 to the peak (2 GiB for LLaMa-3-8B's embeddings) and doubled
    // the bytes a bf16 load converts.
    p.copy_(w.scalar_type() == torch::kFloat16 && p.scalar_type() != torch::kFloat16 ? w.to(acc_type(p.scalar_type())) : w);
  }
  for (const auto& [name, t] : weights) {
    if (params_.count(name)) continue;
    if (name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    if (config_.tie_word_embeddings && name == "lm_head.weight") continue;  // some tied checkpoints store a copy
    throw Error("LEP_UNEXPECTED_TENSOR", "checkpoint has tensor '" + name + "' that a " + config_.model_type +
                                             " model with this config.json does not use");
  }
}

void LlamaModel::init_random(double std, double embed_std, uint64_t seed) {
  torch::NoGradGuard no_grad;
  // A generator of our own, not the global one: jobs run concurrently on their own threads and a shared
  // seed would race (same seed, different bytes). Drawn on the CPU so a seed means the same weights on
  // every device.
  auto gen = at::detail::createCPUGenerator(seed);
  // Biases are drawn like weights (HF zeroes them), so that tiny test models exercise them.
  for (auto& [name, p] : params_) {
    fork_safe_point();  // between two tensors' draws (core/fork_gate.h)
    p = torch::empty(p.sizes(), torch::TensorOptions().dtype(dtype_).device(device_));
    const bool is_norm = name.find("norm.weight") != std::string::npos;
    const bool is_embed = name == "model.embed_tokens.weight" || name == "lm_head.weight";
    if (is_norm)
      p.fill_(1.0);
    else
      p.copy_(torch::randn(p.sizes(), gen, torch::kFloat32).mul_(is_embed ? embed_std : std));
  }
}

KVCache LlamaModel::new_cache(int64_t batch, int64_t capacity) const {
  KVCache cache;
  cache.capacity = capacity;
  auto opts = torch::TensorOptions().dtype(dtype_).device(device_);
  for (int64_t i = 0; i < config_.num_hidden_layers; ++i) {
    cache.k.push_back(torch::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
    cache.v.push_back(torch::zeros({batch, config_.num_key_value_heads, capacity, config_.head_dim}, opts));
  }
  return cache;
}

torch::Tensor LlamaModel::rope_inv_freq() const {
  const auto& c = config_;
  // As Hugging Face computes it: 1 / theta^(arange(0, d, 2) / d), in float32.
  auto inv_freq = 1.0 / torch::pow(c.rope_theta, torch::arange(0, c.head_dim, 2, torch::kInt64).to(torch::kFloat32) /
                                                     static_cast<double>(c.head_dim));
  if (c.rope_scaling.type == "llama3") {
    // Llama 3.1 frequency scaling: long wavelengths slowed by `factor`, short kept, a smooth ramp between.
    const auto& s = c.rope_scaling;
    const double old_ctx = static_cast<double>(s.original_max_position_embeddings);
    const double low_wavelen = old_ctx / s.low_freq_factor, high_wavelen = old_ctx / s.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = torch::where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq);
    auto smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    auto medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv_freq = torch::where(medium, smoothed, scaled);
  }
  return inv_freq;
}

torch::Tensor LlamaModel::rms_norm(const torch::Tensor& x, const torch::Tensor& w) const {
  // In float32 as HF does, then back to the model dtype before the weight multiply. The in-place steps
  // only touch fresh intermediates none of whose values autograd keeps, so they are safe under training
  // too, and spare a decoded token three allocations per norm.
  auto xf = x.to(acc_type(x.scalar_type()));
  auto r = xf.square().mean(-1, true).add_(config_.rms_norm_eps).rsqrt_();
  return (xf * r).to(x.scalar_type()).mul_(w);
}

namespace {
// x (…, in) · wᵀ (+ b). One row (a decoded token of a batch of one) goes through the matrix–vector
// product: BLAS's gemm on a one-row operand still packs the whole weight matrix first, which costs
// about as much as the product itself, while gemv streams the weight once.
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (x.dim() == 0 || x.numel() != x.size(-1) || torch::GradMode::is_enabled()) return torch::linear(x, w, b);
  auto shape = x.sizes().vec();
  shape.back() = w.size(0);
  auto v = x.reshape({-1});
  return (b.defined() ? torch::addmv(b, w, v) : torch::mv(w, v)).view(shape);
}
}  // namespace

bool LlamaModel::onednn_now(const torch::Tensor& x) const {
  // With or without autograd alike: activation checkpointing runs a layer's forward without it and
  // recomputes it with it in backward, and both must compute the same numbers.
  return onednn_products_ && x.scalar_type() == torch::kFloat32 && x.device().is_cpu();
}

torch::Tensor LlamaModel::linear(const torch::Tensor& x, const std::string& name, bool bias) {
  const auto& w = params_.at(name + ".weight");
  torch::Tensor y;
  if (onednn_now(x) && w.scalar_type() == torch::kFloat32) {
    y = onednn_linear(x, w);
    if (bias) y = y + params_.at(name + ".bias");
  } else {
    y = project(x, w, bias ? params_.at(name + ".bias") : torch::Tensor());
  }
  auto ad = lora_.find(name);
  if (ad == lora_.end()) return y;
  auto in = x;
  const double p = lora_config_.dropout;
  if (training_ && p > 0) {
    // Masks drawn where the model is from our generator (seeded per step: reproducible, and a resumed run
    // draws what an uninterrupted one does); the CPU's and a GPU's draws differ.
    auto keep = torch::empty(x.sizes(), x.options().dtype(torch::kFloat32)).bernoulli_(1 - p, dropout_gen_).to(x.scalar_type());
    in = x * keep / (1 - p);
  }
  return y + torch::linear(torch::linear(in, ad->second.a), ad->second.b) * ad->second.scale;
}

namespace {
// HF's x·cos + rotate_half(x)·sin with rotate_half's negation folded into the table: `sin_signed` is
// [-sin, sin] over the two halves of head_dim, so rotate_half(x)·sin = [x₂, x₁]·sin_signed exactly
// (negation is exact). Four kernels instead of seven per projection, same products and sums.
torch::Tensor apply_rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed) {
  auto halves = x.chunk(2, -1);
  return (x * cos).add_(torch::cat({halves[1], halves[0]}, -1).mul_(sin_signed));
}

// The (query, key) pairs attention must not see, true = blocked, (B or 1, 1, T, S) with S = past + T:
// keys after their query (causal) and keys the key mask excludes (left padding). Undefined when nothing
// is blocked (one new token, no padding), so the layers skip masking. Built once per forward pass, not
// once per layer.
torch::Tensor blocked_pairs(const torch::Tensor& key_mask, int64_t B, int64_t T, int64_t past, torch::Device device) {
  const int64_t S = past + T;
  torch::Tensor allowed;
  if (T > 1) allowed = torch::ones({T, S}, torch::TensorOptions().dtype(torch::kBool).device(device)).tril(past).view({1, 1, T, S});
  if (key_mask.defined()) {
    if (!allowed.defined() && key_mask.all().item<bool>()) return {};
    auto keys = key_mask.view({B, 1, 1, S});
    allowed = allowed.defined() ? allowed.logical_and(keys) : keys;
  }
  return allowed.defined() ? allowed.logical_not() : torch::Tensor();
}
}  // namespace

torch::Tensor LlamaModel::attention(int64_t layer, const torch::Tensor& x, const torch::Tensor& cos,
                                    const torch::Tensor& sin_signed, const torch::Tensor& blocked, KVCache* cache) {
  const auto& c = config_;
  const std::string p = layer_prefix(layer) + "self_attn.";
  const int64_t B = x.size(0), T = x.size(1), H = c.num_attention_heads, Hkv = c.num_key_value_heads, D = c.head_dim;
  auto q = linear(x, p + "q_proj", c.attention_bias).view({B, T, H, D}).transpose(1, 2);    // (B, H, T, D)
  auto k = linear(x, p + "k_proj", c.attention_bias).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
  auto v = linear(x, p + "v_proj", c.attention_bias).view({B, T, Hkv, D}).transpose(1, 2);  // (B, Hkv, T, D)
  q = apply_rotary(q, cos, sin_signed);
  k = apply_rotary(k, cos, sin_signed);
  int64_t past = 0;
  if (cache) {
    past = cache->length;
    if (past + T > cache->capacity) throw Error("LEP_CACHE_FULL", "KV cache capacity exceeded");
    cache->k[layer].narrow(2, past, T).copy_(k);
    cache->v[layer].narrow(2, past, T).copy_(v);
    k = cache->k[layer].narrow(2, 0, past + T);
    v = cache->v[layer].narrow(2, 0, past + T);
  }
  const int64_t S = past + T, G = H / Hkv;
  // Grouped-query attention: query head h reads key/value head h / G. The G query heads of one key head
  // are stacked as G·T query rows against it, so keys and values are never copied G times (a decoded
  // token would otherwise copy the whole cache, twice, in every layer).
  const auto acc = acc_type(q.scalar_type());
  // The 1/√D scale goes on the queries, (B, H, T, D), rather than on the scores, (B, H, T, S): a pass over
  // a tensor S/D times smaller, forward and backward (HF scales the scores; the two differ by rounding).
  // In place where nothing is recorded for backward (the queries are fresh from the rotary step).
  const double inv_scale = 1.0 / std::sqrt(static_cast<double>(D));
  auto qg = q.reshape({B, Hkv, G * T, D}).to(acc);
  qg = torch::GradMode::is_enabled() ? qg.mul(inv_scale) : qg.mul_(inv_scale);
  const auto kt = k.to(acc).transpose(-2, -1);
  const auto product = onednn_now(qg) ? onednn_matmul(qg, kt) : torch::matmul(qg, kt);  // (B, Hkv, G·T, S)
  // Scores in float32. A large finite negative rather than -inf keeps fully masked rows (left padding,
  // in generation) free of NaN. The mask is not recorded for backward: under autograd only causal masks
  // occur (training passes no key mask), every row keeps its own position, so the softmax gives masked
  // pairs probability exactly 0 and their gradient is 0 without a masking pass over the gradient; and
  // nothing recorded reads the product (it saved its operands). The mask goes in before the scores view
  // is taken, so that view's history stays a plain view (one modified after it was taken gets a costlier one).
  if (blocked.defined()) {
    torch::NoGradGuard unrecorded;
    product.view({B, H, T, S}).masked_fill_(blocked, -1e30);
  }
  const auto scores = product.view({B, H, T, S});
  auto probs = torch::softmax(scores, -1).to(v.scalar_type()).view({B, Hkv, G * T, S});
  auto out = (onednn_now(probs) ? onednn_matmul(probs, v) : torch::matmul(probs, v))
                 .view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});  // (B, T, H*D)
  return linear(out, p + "o_proj", false);
}

torch::Tensor LlamaModel::layer_forward(int64_t i, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed,
                                        const torch::Tensor& blocked, KVCache* cache) {
  fork_safe_point();  // between two layers no BLAS call is under way (core/fork_gate.h)
  const std::string p = layer_prefix(i);
  auto y = x + attention(i, rms_norm(x, params_.at(p + "input_layernorm.weight")), cos, sin_signed, blocked, cache);
  auto h = rms_norm(y, params_.at(p + "post_attention_layernorm.weight"));
  auto gate = linear(h, p + "mlp.gate_proj", false), up = linear(h, p + "mlp.up_proj", false);
  // In place when nothing is recorded for backward (SiLU's backward needs its input).
  auto act = torch::GradMode::is_enabled() ? torch::silu(gate) * up : torch::silu_(gate).mul_(up);
  return y + linear(act, p + "mlp.down_proj", false);
}

namespace {
// Activation checkpointing: a decoder layer keeps only its input for backward and is recomputed there,
// trading one extra layer forward for not storing its activations (attention scores are B·H·T² floats
// per layer, the dominant memory of long-sequence training). The layer's parameters are inputs of the
// node so their gradients reach them; frozen ones (embeddings-only training) get none.
struct CheckpointedLayer : torch::autograd::Function<CheckpointedLayer> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin, const c10::optional<torch::Tensor>& blocked,
                               at::TensorList params, LlamaModel* model, int64_t layer) {
    // Undefined tensors cannot be saved or be autograd inputs: the attention mask (blocked_pairs) goes in
    // as an optional and is saved only when present.
    const bool has_mask = blocked.has_value() && blocked->defined();
    std::vector<torch::Tensor> saved{x, cos, sin};
    if (has_mask) saved.push_back(*blocked);
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["model"] = reinterpret_cast<int64_t>(model);
    ctx->saved_data["layer"] = layer;
    ctx->saved_data["has_mask"] = has_mask;
    torch::NoGradGuard no_grad;
    return model->layer_forward(layer, x, cos, sin, has_mask ? *blocked : torch::Tensor(), nullptr);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto* model = reinterpret_cast<LlamaModel*>(ctx->saved_data["model"].toInt());
    const int64_t layer = ctx->saved_data["layer"].toInt();
    const bool has_mask = ctx->saved_data["has_mask"].toBool();
    const torch::Tensor blocked = has_mask ? saved[3] : torch::Tensor();
    auto x = saved[0].detach().requires_grad_(saved[0].requires_grad());
    std::vector<torch::Tensor> wrt, params(saved.begin() + (has_mask ? 4 : 3), saved.end());
    if (x.requires_grad()) wrt.push_back(x);
    for (const auto& p : params)
      if (p.requires_grad()) wrt.push_back(p);
    torch::Tensor y;
    {
      torch::AutoGradMode grad_on(true);
      y = model->layer_forward(layer, x, saved[1], saved[2], blocked, nullptr);
    }
    auto grads = wrt.empty() ? torch::autograd::variable_list{}
                             : torch::autograd::grad({y}, wrt, {grad_out[0]}, false, false, true);
    // One gradient per forward argument: x, cos, sin, blocked, each parameter, model, layer.
    torch::autograd::variable_list out{x.requires_grad() ? grads[0] : torch::Tensor(), {}, {}, {}};
    size_t k = x.requires_grad() ? 1 : 0;
    for (const auto& p : params) out.push_back(p.requires_grad() ? grads[k++] : torch::Tensor());
    out.emplace_back();
    out.emplace_back();
    return out;
  }
};
}  // namespace

torch::Tensor LlamaModel::forward_hidden(const torch::Tensor& input_ids, const torch::Tensor& positions,
                                         const torch::Tensor& key_mask, KVCache* cache) {
  const auto& c = config_;
  // Here, not at construction: making, loading, exporting and propagating a bf16 model need no products.
  if (device_.is_cpu() && dtype_ == torch::kBFloat16) require_cpu_bf16_products();
  auto x = torch::embedding(params_.at("model.embed_tokens.weight"), input_ids);  // (B, T, C)
  // RoPE tables for these positions: (B, 1, T, D), float32 then model dtype, as HF does; the sine with
  // its first half negated (apply_rotary).
  auto freqs = positions.to(acc_type(dtype_)).unsqueeze(-1) * inv_freq_.to(acc_type(dtype_)).view({1, 1, -1});
  auto cos = torch::cat({freqs, freqs}, -1).unsqueeze(1).cos().to(dtype_);
  auto half_sin = freqs.sin();
  auto sin_signed = torch::cat({-half_sin, half_sin}, -1).unsqueeze(1).to(dtype_);
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  // attention() leaves its mask out of autograd's record, which is exact for causal masks only (every
  // row keeps its own position); key masks (left padding) are for generation, which records nothing.
  if (key_mask.defined() && torch::GradMode::is_enabled())
    throw Error("LEP_INTERNAL", "forward_hidden: a key mask under autograd (masks of padded batches are for inference only)");
  const auto blocked = blocked_pairs(key_mask, B, T, cache ? cache->length : 0, x.device());
  const bool checkpoint = activation_checkpointing_ && !cache && torch::GradMode::is_enabled();
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    if (!checkpoint) {
      x = layer_forward(i, x, cos, sin_signed, blocked, cache);
      // Backward runs a CPU graph on this thread; between two layers' backward no BLAS call is under way,
      // and the whole backward of a large model takes minutes, so each layer's gradient is a safe point
      // too (core/fork_gate.h). A checkpointed layer gets one from its recomputed forward.
      if (x.requires_grad()) x.register_hook([](const torch::Tensor&) { fork_safe_point(); });
      continue;
    }
    std::vector<torch::Tensor> layer_params;
    for (const auto& [name, t] : params_)
      if (name.rfind(layer_prefix(i), 0) == 0) layer_params.push_back(t);
    for (const auto& [name, t] : lora_tensors())
      if (name.rfind(layer_prefix(i), 0) == 0) layer_params.push_back(t);
    x = CheckpointedLayer::apply(x, cos, sin_signed, blocked.defined() ? c10::optional<torch::Tensor>(blocked) : c10::nullopt,
                                 at::TensorList(layer_params), this, i);
  }
  if (cache) cache->length += input_ids.size(1);
  return rms_norm(x, params_.at("model.norm.weight"));
}

torch::Tensor LlamaModel::logits(const torch::Tensor& hidden) {
  const auto& w = config_.tie_word_embeddings ? params_.at("model.embed_tokens.weight") : params_.at("lm_head.weight");
  // Several rows (scoring, a batch's decoding step) go through the linear layers' oneDNN path (in oneDNN
  // where that pays, onednn_product_pays); one row streams the matrix through project's matrix-vector
  // product instead.
  if (onednn_now(hidden) && w.scalar_type() == torch::kFloat32 && hidden.numel() != hidden.size(-1))
    return onednn_linear(hidden, w);
  return project(hidden, w, torch::Tensor()).to(acc_type(hidden.scalar_type()));
}

}  // namespace lep
