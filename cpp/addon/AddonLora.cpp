// NativeModel.addLora / loadLora / saveLora / mergeLora / mergeLoraFile: LoRA adapters on a loaded model (core/lora*.h).
#include "addon/AddonJob.h"
#include "addon/AddonModel.h"
#include "addon/convert.h"
#include "core/lora_io.h"

namespace lep_addon {

lep::LoraConfig lora_from_js(const Napi::Object& o) {
  lep::LoraConfig c;
  c.rank = static_cast<int64_t>(get_number(o, "rank", static_cast<double>(c.rank)));
  c.alpha = get_number(o, "alpha", c.alpha);
  c.dropout = get_number(o, "dropout", c.dropout);
  if (o.Has("targets")) c.targets = get_strings(o, "targets");
  Napi::Value layers = o.Get("layers");
  if (layers.IsArray()) {
    auto a = layers.As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) {
      if (!a.Get(i).IsNumber()) throw make_error(o.Env(), "LEP_BAD_ARGUMENT", "expected an array of layer numbers for layers");
      c.layers.push_back(a.Get(i).As<Napi::Number>().Int64Value());
    }
  }
  c.modules_to_save = get_strings(o, "modulesToSave");
  c.init = get_string(o, "init", c.init);
  return c;
}

Napi::Value AddonModel::AddLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  Napi::Object o = obj_arg(info, 0, "LoRA options");
  const auto c = lora_from_js(o);
  const uint64_t seed = static_cast<uint64_t>(get_number(o, "seed", 0));
  auto work = [h, c, seed](const lep::ProgressFn&) {
    ModelLock lock(*h);
    h->model->add_lora(c, seed);
    return true;
  };
  return AddonJob<bool>::Start(env, info[1], work, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

namespace {

// loadLora and mergeLoraFile: a job that applies the adapter file the options name (its config, the
// file, whether to leave the model's own modules to save) to the model with `apply` (core/lora_io.h).
using ApplyAdapter = void (*)(lep::LlamaModel&, const lep::LoraConfig&, const std::string&, bool);

Napi::Value StartAdapterFileJob(const Napi::CallbackInfo& info, std::shared_ptr<ModelHolder> h, const char* what, ApplyAdapter apply) {
  Napi::Object o = obj_arg(info, 0, "LoRA options");
  const auto c = lora_from_js(o);
  const std::string file = get_string(o, "file", "");
  if (file.empty()) throw make_error(info.Env(), "LEP_BAD_ARGUMENT", std::string(what) + " needs a file");
  const bool skip = o.Has("skipModulesToSave") && o.Get("skipModulesToSave").ToBoolean().Value();
  auto work = [h, c, file, skip, apply](const lep::ProgressFn&) {
    ModelLock lock(*h);
    apply(*h->model, c, file, skip);
    return true;
  };
  return AddonJob<bool>::Start(info.Env(), info[1], work, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

}  // namespace

Napi::Value AddonModel::LoadLora(const Napi::CallbackInfo& info) {
  return StartAdapterFileJob(info, holder(info.Env()), "loadLora", &lep::load_lora);
}

Napi::Value AddonModel::MergeLoraFile(const Napi::CallbackInfo& info) {
  return StartAdapterFileJob(info, holder(info.Env()), "mergeLoraFile", &lep::merge_lora_file);
}

Napi::Value AddonModel::SaveLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  Napi::Object o = obj_arg(info, 0, "save options");
  const std::string file = get_string(o, "file", "");
  if (file.empty()) throw make_error(env, "LEP_BAD_ARGUMENT", "saveLora needs a file");
  auto dtype = dtype_arg(env, get_string(o, "dtype", "f32"));
  auto work = [h, file, dtype](const lep::ProgressFn&) {
    ModelLock lock(*h);
    lep::save_lora(*h->model, file, dtype);
    return true;
  };
  return AddonJob<bool>::Start(env, info[1], work, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

Napi::Value AddonModel::MergeLora(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  auto work = [h](const lep::ProgressFn&) {
    ModelLock lock(*h);
    if (!h->model->has_lora()) throw lep::Error("LEP_BAD_ARGUMENT", "the model has no LoRA adapters to merge");
    h->model->merge_lora();
    return true;
  };
  return AddonJob<bool>::Start(env, info[0], work, [](Napi::Env env, bool&) -> Napi::Value { return env.Undefined(); });
}

}  // namespace lep_addon
