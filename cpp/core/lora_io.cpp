#include "core/lora_io.h"

#include <set>

#include "core/error.h"
#include "core/fork_gate.h"
#include "core/safetensors.h"

namespace lep {

void save_lora(LlamaModel& model, const std::string& path, torch::ScalarType dtype) {
  if (!model.has_lora()) throw Error("LEP_BAD_ARGUMENT", "the model has no LoRA adapters to save");
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : model.lora_tensors()) out.emplace_back(kPeftPrefix + name, t.detach().to(torch::kCPU, dtype));
  std::set<std::string> saved;
  for (const auto& module : model.lora_config().modules_to_save) {
    const auto name = module_to_save_param(module, model.config());
    if (saved.insert(name).second) out.emplace_back(kPeftPrefix + name, model.param(name).detach().to(torch::kCPU, dtype));
  }
  write_safetensors(path, out, {{"format", "pt"}});
}

namespace {

// An adapter file's tensors for `config`, each checked against the model before anything changes: A
// (rank, in) and B (out, rank) of every adapted projection, and every module to save with its
// parameter's shape (skip_modules_to_save: accounted for, not read). A tensor the config implies that
// the file lacks, or one the config does not describe, is an error: the config and the file disagree.
struct AdapterTensors {
  struct Pair {
    std::string module;
    torch::Tensor a, b;
  };
  std::vector<Pair> adapters;
  std::vector<std::pair<std::string, torch::Tensor>> saved;  // (model parameter, file tensor)
};

AdapterTensors read_adapter(LlamaModel& model, const LoraConfig& config, const SafetensorsFile& file, const std::string& path,
                            bool skip_modules_to_save) {
  std::set<std::string> expected;
  auto checked = [&](const std::string& name, c10::IntArrayRef shape) {
    const std::string key = kPeftPrefix + name;
    expected.insert(key);
    if (!file.has(key)) throw Error("LEP_MISSING_TENSOR", path + " lacks '" + key + "' that its adapter_config.json implies");
    auto src = file.tensor(key);
    if (src.sizes() != shape)
      throw Error("LEP_SHAPE_MISMATCH", path + ": '" + key + "' has shape " + c10::str(src.sizes()) + " but the model needs " +
                                            c10::str(shape) + "\nHINT: was the adapter trained on another model or vocabulary?");
    return src;
  };
  AdapterTensors t;
  for (const auto& m : lora_modules(config, model.config())) {
    const auto& w = model.param(m + ".weight");
    auto a = checked(m + ".lora_A.weight", {config.rank, w.size(1)});
    t.adapters.push_back({m, a, checked(m + ".lora_B.weight", {w.size(0), config.rank})});
  }
  for (const auto& module : config.modules_to_save) {
    const auto name = module_to_save_param(module, model.config());
    if (skip_modules_to_save) expected.insert(kPeftPrefix + name);
    else if (!expected.count(kPeftPrefix + name)) t.saved.emplace_back(name, checked(name, model.param(name).sizes()));
  }
  for (const auto& info : file.tensors())
    if (!expected.count(info.name))
      throw Error("LEP_UNEXPECTED_TENSOR", path + " has tensor '" + info.name + "' that its adapter_config.json does not describe");
  return t;
}

}  // namespace

void load_lora(LlamaModel& model, const LoraConfig& config, const std::string& path, bool skip_modules_to_save) {
  if (model.has_lora()) throw Error("LEP_BAD_ARGUMENT", "the model already has LoRA adapters; merge them first");
  SafetensorsFile file(path);
  const AdapterTensors t = read_adapter(model, config, file, path, skip_modules_to_save);  // a bad file changes nothing
  LoraConfig c = config;
  c.init = "peft";
  // Skipped modules to save are not trained either.
  if (skip_modules_to_save) c.modules_to_save.clear();
  model.add_lora(c, 0);
  torch::NoGradGuard no_grad;
  for (const auto& p : t.adapters) {
    model.param(p.module + ".lora_A.weight").copy_(p.a);
    model.param(p.module + ".lora_B.weight").copy_(p.b);
  }
  for (const auto& [name, src] : t.saved) model.param(name).copy_(src);
}

void merge_lora_file(LlamaModel& model, const LoraConfig& config, const std::string& path, bool skip_modules_to_save) {
  if (model.has_lora()) throw Error("LEP_BAD_ARGUMENT", "the model already has LoRA adapters; merge them first");
  SafetensorsFile file(path);
  const AdapterTensors t = read_adapter(model, config, file, path, skip_modules_to_save);  // a bad file changes nothing
  if (t.adapters.empty() && t.saved.empty())
    throw Error("LEP_BAD_ARGUMENT", path + ": the adapter has nothing to merge: no target projections, and its modules to save are skipped");
  torch::NoGradGuard no_grad;
  for (const auto& p : t.adapters) {
    fork_safe_point();  // between two projections' products (core/fork_gate.h)
    model.merge_into(p.module, p.a, p.b, config.scale());
  }
  for (const auto& [name, src] : t.saved) model.param(name).copy_(src);
}

}  // namespace lep
