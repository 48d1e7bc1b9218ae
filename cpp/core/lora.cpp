#include "core/lora.h"

#include <algorithm>

#include "core/error.h"

namespace lep {

namespace {
struct Projection {
  const char* name;
  const char* block;  // self_attn | mlp
};
const Projection kProjections[] = {{"q_proj", "self_attn"}, {"k_proj", "self_attn"}, {"v_proj", "self_attn"},
                                   {"o_proj", "self_attn"}, {"gate_proj", "mlp"},    {"up_proj", "mlp"},
                                   {"down_proj", "mlp"}};

// (out, in) of a projection, as LlamaModel lays it out.
std::pair<int64_t, int64_t> projection_shape(const std::string& target, const ModelConfig& m) {
  const int64_t q = m.num_attention_heads * m.head_dim, kv = m.num_key_value_heads * m.head_dim;
  if (target == "q_proj") return {q, m.hidden_size};
  if (target == "k_proj" || target == "v_proj") return {kv, m.hidden_size};
  if (target == "o_proj") return {m.hidden_size, q};
  if (target == "down_proj") return {m.hidden_size, m.intermediate_size};
  return {m.intermediate_size, m.hidden_size};  // gate_proj, up_proj
}
}  // namespace

std::vector<std::string> lora_modules(const LoraConfig& c, const ModelConfig& m) {
  if (c.rank < 1) throw Error("LEP_BAD_ARGUMENT", "LoRA rank must be a positive integer, got " + std::to_string(c.rank));
  if (!(c.alpha > 0)) throw Error("LEP_BAD_ARGUMENT", "LoRA alpha must be positive");
  if (!(c.dropout >= 0 && c.dropout < 1)) throw Error("LEP_BAD_ARGUMENT", "LoRA dropout must be in [0, 1)");
  if (c.init != "peft" && c.init != "random") throw Error("LEP_BAD_ARGUMENT", "LoRA init must be 'peft' or 'random', got '" + c.init + "'");
  if (c.targets.empty() && c.modules_to_save.empty())
    throw Error("LEP_BAD_ARGUMENT", "LoRA has nothing to train: no target projections and no modules to save");
  std::vector<std::string> blocks;
  for (const auto& t : c.targets) {
    auto it = std::find_if(std::begin(kProjections), std::end(kProjections), [&](const Projection& p) { return t == p.name; });
    if (it == std::end(kProjections))
      throw Error("LEP_BAD_ARGUMENT", "LoRA target '" + t + "' is not a projection of a " + m.model_type +
                                          " model\nHINT: targets are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj.");
    const auto [out, in] = projection_shape(t, m);
    if (c.rank > std::min(out, in))
      throw Error("LEP_BAD_ARGUMENT", "LoRA rank " + std::to_string(c.rank) + " is larger than " + t + "'s smaller dimension " +
                                          std::to_string(std::min(out, in)) + " (" + std::to_string(out) + " x " +
                                          std::to_string(in) + "): a low-rank update needs rank < min(out, in)");
    blocks.push_back(it->block);
  }
  std::vector<int64_t> layers = c.layers;
  if (layers.empty())
    for (int64_t i = 0; i < m.num_hidden_layers; ++i) layers.push_back(i);
  std::vector<std::string> out;
  for (int64_t layer : layers) {
    if (layer < 0 || layer >= m.num_hidden_layers)
      throw Error("LEP_BAD_ARGUMENT", "LoRA layer " + std::to_string(layer) + " does not exist: the model has layers 0.." +
                                          std::to_string(m.num_hidden_layers - 1));
    for (size_t i = 0; i < c.targets.size(); ++i)
      out.push_back("model.layers." + std::to_string(layer) + "." + blocks[i] + "." + c.targets[i]);
  }
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    throw Error("LEP_BAD_ARGUMENT", "LoRA targets or layers are listed twice");
  for (const auto& s : c.modules_to_save) module_to_save_param(s, m);
  return out;
}

std::string module_to_save_param(const std::string& module, const ModelConfig& m) {
  if (module == "embed_tokens") return "model.embed_tokens.weight";
  if (module == "lm_head") return m.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  throw Error("LEP_BAD_ARGUMENT", "module to train fully '" + module + "' is not supported\nHINT: use embed_tokens and/or lm_head.");
}

}  // namespace lep
