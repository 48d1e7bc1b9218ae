#include "core/lora_io.h"

#include <set>

#include "core/error.h"
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

void load_lora(LlamaModel& model, const LoraConfig& config, const std::string& path, bool skip_modules_to_save) {
  SafetensorsFile file(path);
  LoraConfig c = config;
  c.init = "peft";
  // Skipped modules to save: the file's tensors for them are accounted for (not "unexpected") but not
  // loaded, and the model does not train them.
  std::vector<std::string> skipped;
  if (skip_modules_to_save) skipped.swap(c.modules_to_save);
  model.add_lora(c, 0);
  // Everything is checked before anything is copied: a bad file leaves the model as it was.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (model tensor, file tensor)
  std::set<std::string> expected;
  auto plan = [&](const std::string& name) {
    const std::string key = kPeftPrefix + name;
    if (!expected.insert(key).second) return;
    if (!file.has(key)) throw Error("LEP_MISSING_TENSOR", path + " lacks '" + key + "' that its adapter_config.json implies");
    auto src = file.tensor(key);
    auto& dst = model.param(name);
    if (src.sizes() != dst.sizes())
      throw Error("LEP_SHAPE_MISMATCH", path + ": '" + key + "' has shape " + c10::str(src.sizes()) + " but the model needs " +
                                            c10::str(dst.sizes()) + "\nHINT: was the adapter trained on another model or vocabulary?");
    copies.emplace_back(dst, src);
  };
  try {
    for (const auto& [name, _] : model.lora_tensors()) plan(name);
    for (const auto& module : c.modules_to_save) plan(module_to_save_param(module, model.config()));
    for (const auto& module : skipped) expected.insert(kPeftPrefix + module_to_save_param(module, model.config()));
    for (const auto& info : file.tensors())
      if (!expected.count(info.name))
        throw Error("LEP_UNEXPECTED_TENSOR", path + " has tensor '" + info.name + "' that its adapter_config.json does not describe");
  } catch (...) {
    model.drop_lora();
    throw;
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src.to(dst.scalar_type()));
}

}  // namespace lep
