#include "core/model_tensors.h"

#include <set>

#include "core/error.h"

namespace lep {

void for_each_parameter(const ModelConfig& c, const std::function<void(const std::string&, const std::vector<Dim>&)>& fn) {
  // Products of config values from a hostile config.json may overflow: -1 then matches no tensor.
  auto times = [](int64_t a, int64_t b) {
    int64_t r = 0;
    return __builtin_mul_overflow(a, b, &r) ? int64_t{-1} : r;
  };
  const Dim hidden{c.hidden_size, "hidden_size"}, inter{c.intermediate_size, "intermediate_size"},
      vocab{c.vocab_size, "vocab_size"}, q{times(c.num_attention_heads, c.head_dim), "num_attention_heads x head_dim"},
      kv{times(c.num_key_value_heads, c.head_dim), "num_key_value_heads x head_dim"};
  fn("model.embed_tokens.weight", {vocab, hidden});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    fn(p + "input_layernorm.weight", {hidden});
    fn(p + "self_attn.q_proj.weight", {q, hidden});
    fn(p + "self_attn.k_proj.weight", {kv, hidden});
    fn(p + "self_attn.v_proj.weight", {kv, hidden});
    if (c.attention_bias) {
      fn(p + "self_attn.q_proj.bias", {q});
      fn(p + "self_attn.k_proj.bias", {kv});
      fn(p + "self_attn.v_proj.bias", {kv});
    }
    fn(p + "self_attn.o_proj.weight", {hidden, q});
    fn(p + "post_attention_layernorm.weight", {hidden});
    fn(p + "mlp.gate_proj.weight", {inter, hidden});
    fn(p + "mlp.up_proj.weight", {inter, hidden});
    fn(p + "mlp.down_proj.weight", {hidden, inter});
  }
  fn("model.norm.weight", {hidden});
  if (!c.tie_word_embeddings) fn("lm_head.weight", {vocab, hidden});
}

namespace {
std::string shape_text(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

void check_weights_match_config(const ModelConfig& c, const std::map<std::string, TensorShape>& tensors, const std::string& where) {
  const std::string hint = "\nHINT: config.json and the weights belong to different models, or one of them was edited; "
                           "restore the model's own config.json.";
  std::set<std::string> used;
  for_each_parameter(c, [&](const std::string& name, const std::vector<Dim>& dims) {
    auto it = tensors.find(name);
    if (it == tensors.end() && name == "lm_head.weight")
      throw Error("LEP_MISSING_TENSOR", where + ": the checkpoint has no tensor 'lm_head.weight' but config.json says the embeddings are not tied" +
                                            "\nHINT: set tie_word_embeddings to true in config.json if the model shares one matrix; otherwise the checkpoint is incomplete.");
    if (it == tensors.end())
      throw Error("LEP_MISSING_TENSOR", where + ": the checkpoint lacks tensor '" + name + "', which config.json implies (" +
                                            std::to_string(c.num_hidden_layers) + " layers)" + hint);
    const auto& got = it->second;
    if (got.dtype != "F32" && got.dtype != "F16" && got.dtype != "BF16" && got.dtype != "F64")
      throw Error("LEP_BAD_DTYPE", where + ": tensor '" + name + "' has dtype " + got.dtype + "; model weights must be floating point" + hint);
    std::vector<int64_t> want;
    for (const auto& d : dims) want.push_back(d.size);
    if (got.shape.size() != dims.size())
      throw Error("LEP_SHAPE_MISMATCH", where + ": tensor '" + name + "' has shape " + shape_text(got.shape) +
                                            " but config.json implies " + shape_text(want) + hint);
    for (size_t d = 0; d < dims.size(); ++d) {
      if (got.shape[d] != dims[d].size && dims[d].field == std::string("vocab_size"))
        throw Error("LEP_VOCAB_MISMATCH", where + ": " + name + " has " + std::to_string(got.shape[d]) +
                                              " rows but config.json vocab_size is " + std::to_string(dims[d].size) + hint);
      if (got.shape[d] != dims[d].size)
        throw Error("LEP_SHAPE_MISMATCH", where + ": tensor '" + name + "' has shape " + shape_text(got.shape) +
                                              " but config.json implies " + shape_text(want) + ": dimension " + std::to_string(d) +
                                              " is " + std::to_string(got.shape[d]) + ", config.json " + dims[d].field + " gives " +
                                              std::to_string(dims[d].size) + hint);
    }
    used.insert(name);
  });
  for (const auto& [name, _] : tensors) {
    if (used.count(name) || name.find("rotary_emb.inv_freq") != std::string::npos) continue;
    if (c.tie_word_embeddings && name == "lm_head.weight") continue;  // some tied checkpoints store a copy
    throw Error("LEP_UNEXPECTED_TENSOR", where + ": the checkpoint has tensor '" + name + "', which a " + c.model_type +
                                             " model with this config.json (" + std::to_string(c.num_hidden_layers) +
                                             " layers) does not use" + hint);
  }
}

}  // namespace lep
