// A LLaMA-family decoder (LLaMA 2/3/3.1, Mistral, Qwen2), written to be read top to bottom.
// Parameter names match Hugging Face checkpoints ("model.layers.0.self_attn.q_proj.weight"), so loading
// and saving are name-to-name copies. RoPE uses HF's rotate-half layout (llama.cpp's converter permutes
// q/k for the "llama" architecture; our GGUF exporter does the same).
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/lora.h"
#include "core/model_config.h"

namespace lep {

// Per-layer keys and values for incremental decoding. Preallocated for `capacity` positions.
struct KVCache {
  std::vector<torch::Tensor> k, v;  // per layer: (B, n_kv_heads, capacity, head_dim)
  int64_t length = 0;               // positions filled
  int64_t capacity = 0;
};

class LlamaModel {
 public:
  // Parameters get their shapes here and their storage from load_weights or init_random, one of which
  // must come next.
  LlamaModel(const ModelConfig& config, torch::Device device, torch::ScalarType dtype);

  const ModelConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }

  // Every parameter by its Hugging Face name; lm_head.weight is absent for tied models. LoRA adapter
  // tensors are not among them (see lora_tensors), but param() finds them by name.
  const std::map<std::string, torch::Tensor>& parameters() const { return params_; }
  torch::Tensor& param(const std::string& name);

  // LoRA adapters (lora.h) on the configured projections, initialised from `seed` on the CPU.
  void add_lora(const LoraConfig& c, uint64_t seed);
  bool has_lora() const { return !lora_.empty(); }
  const LoraConfig& lora_config() const { return lora_config_; }
  // Adapter tensors by name without PEFT's prefix ("model.layers.0.self_attn.q_proj.lora_A.weight"), sorted.
  std::vector<std::pair<std::string, torch::Tensor>> lora_tensors() const;
  // W += (alpha / r) · B A for every adapter, then the adapters are dropped: a plain model again.
  void merge_lora();
  // W += scale · B A into `module`'s weight, summed in float32 (float64 for a float64 model) and rounded
  // once to the weight's dtype; `a` and `b` may be of any dtype and device (an adapter file's tensors).
  void merge_into(const std::string& module, const torch::Tensor& a, const torch::Tensor& b, double scale);
  // Removes the adapters without merging them.
  void drop_lora();
  // Adapter dropout is active only in training mode; its masks come from a generator of our own, reseeded
  // by the trainer every step so that a resumed run draws the same masks as an uninterrupted one.
  void set_training(bool on, uint64_t dropout_seed = 0);

  // Copy weights in (converting dtype/device). Every parameter must be present; extra names are an error
  // except rotary inv_freq buffers some checkpoints carry.
  // `in_place`: CPU parameters stored in their compute dtype become the given views instead of copies;
  // the views must be writable copy-on-write mappings (read_checkpoint(files, true)).
  void load_weights(const std::map<std::string, torch::Tensor>& weights, bool in_place = false);
  // Normal(0, std) init for matrices and biases (embed_std for embeddings and head), ones for norms.
  void init_random(double std, double embed_std, uint64_t seed);

  KVCache new_cache(int64_t batch, int64_t capacity) const;

  // input_ids (B, T) int64; positions (B, T) int64; key_mask (B, S) bool over cache+new positions
  // (true = attend), S = cache.length + T, or undefined for "all valid". Appends to `cache` if given.
  // Returns final hidden states (B, T, C) after the last norm.
  torch::Tensor forward_hidden(const torch::Tensor& input_ids, const torch::Tensor& positions,
                               const torch::Tensor& key_mask, KVCache* cache);
  // One decoder layer (attention + MLP with residuals) on x (B, T, C). cos and sin_signed are the RoPE
  // tables (the sine's first half negated), blocked the (query, key) pairs attention skips (undefined:
  // none); forward_hidden builds all three once for every layer.
  torch::Tensor layer_forward(int64_t layer, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed,
                              const torch::Tensor& blocked, KVCache* cache);
  // Recompute each layer in backward instead of storing its activations (training only).
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  // Float32 products (projections, MLP, attention; the LM head in logits()) through oneDNN (onednn.h)
  // instead of the BLAS. Set for each kind of work by ComputeThreads (compute_threads.h).
  void set_onednn_products(bool on) { onednn_products_ = on; }
  bool onednn_products() const { return onednn_products_; }
  // lm_head projection in float32: (B, T, C) -> (B, T, V).
  torch::Tensor logits(const torch::Tensor& hidden);

 private:
  torch::Tensor rope_inv_freq() const;  // (head_dim/2,) float32, with llama3 scaling applied
  torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w) const;
  torch::Tensor linear(const torch::Tensor& x, const std::string& prefix, bool bias) ;
  torch::Tensor attention(int64_t layer, const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin_signed,
                          const torch::Tensor& blocked, KVCache* cache);

  ModelConfig config_;
  bool activation_checkpointing_ = false;
  bool onednn_products_ = false;
  // Whether a product of these operands goes through oneDNN now (set_onednn_products; float32 on the CPU).
  bool onednn_now(const torch::Tensor& x) const;
  std::map<std::string, LoraAdapter> lora_;  // by module ("model.layers.0.self_attn.q_proj")
  LoraConfig lora_config_;
  bool training_ = false;
  at::Generator dropout_gen_;
  torch::Device device_;
  torch::ScalarType dtype_;
  std::map<std::string, torch::Tensor> params_;
  torch::Tensor inv_freq_;
};

}  // namespace lep
