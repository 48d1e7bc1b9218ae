#include "addon/AddonModel.h"

#include "addon/AddonJob.h"
#include "addon/convert.h"
#include "core/checkpoint.h"
#include "core/device.h"
#include "core/generate.h"
#include "core/score.h"

namespace lep_addon {

namespace {

struct AddonData {
  Napi::FunctionReference model_ctor;
};

}  // namespace

torch::ScalarType dtype_arg(Napi::Env env, const std::string& s) {
  if (s == "f32" || s == "float32") return torch::kFloat32;
  if (s == "bf16" || s == "bfloat16") return torch::kBFloat16;
  if (s == "f16" || s == "float16") return torch::kFloat16;
  if (s == "f64" || s == "float64") return torch::kFloat64;  // gradient checks
  throw make_error(env, "LEP_BAD_ARGUMENT", "dtype must be f32, bf16 or f16, got '" + s + "'");
}

torch::Device device_arg(Napi::Env env, const std::string& s) {
  try {
    return lep::parse_device(s);
  } catch (const lep::Error& e) {
    throw make_error(env, e.code(), e.what());
  }
}

template <Napi::Value (AddonModel::*M)(const Napi::CallbackInfo&)>
Napi::Value AddonModel::Guarded(const Napi::CallbackInfo& info) {
  lep::CpuJobScope scope;  // as lep.node's synchronous functions (addon/AddonJob.h, Sync)
  return lep_node::Guard<TorchJobTraits>(info.Env(), [&] { return (this->*M)(info); });
}

void AddonModel::Init(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "NativeModel",
                                    {InstanceMethod<&AddonModel::Guarded<&AddonModel::Score>>("score"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::Generate>>("generate"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::Save>>("save"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::Info>>("info"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::Train>>("train"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::LossAndGrads>>("lossAndGrads"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::AddLora>>("addLora"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::LoadLora>>("loadLora"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::SaveLora>>("saveLora"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::MergeLora>>("mergeLora"),
                                     InstanceMethod<&AddonModel::Guarded<&AddonModel::MergeLoraFile>>("mergeLoraFile"),
                                     InstanceMethod<&AddonModel::Dispose>("dispose")});
  auto* data = new AddonData{Napi::Persistent(ctor)};
  env.SetInstanceData<AddonData>(data);
  exports.Set("loadModel", Napi::Function::New(env, Sync<LoadModel>));
  exports.Set("checkModelWeights", Napi::Function::New(env, Sync<CheckModelWeights>));
}

Napi::Object AddonModel::NewInstance(Napi::Env env, std::shared_ptr<ModelHolder> holder) {
  Napi::Object obj = env.GetInstanceData<AddonData>()->model_ctor.New({});
  AddonModel::Unwrap(obj)->holder_ = std::move(holder);
  return obj;
}

AddonModel::AddonModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AddonModel>(info) {}

std::shared_ptr<ModelHolder> AddonModel::holder(Napi::Env env) {
  if (!holder_) throw make_error(env, "LEP_DISPOSED", "the model was disposed");
  return holder_;
}

Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = obj_arg(info, 0, "loadModel options");
  lep::ModelConfig config = config_from_js(obj_arg(info, 0, "options").Get("config").As<Napi::Object>());
  auto files = get_strings(o, "files");
  // Tensors in `overrides` (e.g. a training checkpoint's trainable.safetensors) replace same-named ones.
  auto overrides = o.Has("overrides") ? get_strings(o, "overrides") : std::vector<std::string>{};
  // Resolved in full by TS (LepModel.load; createModel's CREATE_MODEL_SPEC for a random model's init).
  auto device = device_arg(env, need_string(o, "device"));
  auto dtype = dtype_arg(env, need_string(o, "dtype"));
  if (dtype == torch::kFloat16 && device.is_cpu()) dtype = torch::kFloat32;  // no CPU half matmul in 1.13
  const bool random = files.empty();
  const uint64_t seed = random ? need_number(o, "seed") : 0;
  const double init_std = random ? need_number(o, "initStd") : 0, embed_std = random ? need_number(o, "embedStd") : 0;
  auto work = [=](const lep::ProgressFn& progress) {
    auto holder = std::make_shared<ModelHolder>();
    if (files.empty()) {
      holder->model = std::make_unique<lep::LlamaModel>(config, device, dtype);
      holder->model->init_random(init_std, embed_std, seed);
    } else {
      // Headers against config.json before the model allocates anything (a hostile config.json can ask
      // for 10^9 layers).
      lep::check_weights_match_config(config, lep::checkpoint_shapes(files), files.front());
      // Weights stay in their files' pages where they can (LEP_MMAP, docs/guide.md): mapped copy-on-write.
      const bool in_place = device.is_cpu() && lep::map_weights();
      auto weights = lep::read_checkpoint(files, in_place);
      if (!overrides.empty()) {
        for (auto& [name, t] : lep::read_checkpoint(overrides, in_place)) {
          if (!weights.count(name))
            throw lep::Error("LEP_UNEXPECTED_TENSOR", "override tensor '" + name + "' is not in the model's checkpoint");
          if (weights[name].sizes() != t.sizes())
            throw lep::Error("LEP_SHAPE_MISMATCH", "override tensor '" + name + "' has another shape than the model's");
          weights[name] = t;
        }
      }
      holder->model = std::make_unique<lep::LlamaModel>(config, device, dtype);
      holder->model->load_weights(weights, in_place);
    }
    holder->refresh_info();
    progress(lep::ProgressEvent{"load", 1, 1, {}});
    return holder;
  };
  auto convert = [](Napi::Env env, std::shared_ptr<ModelHolder>& h) -> Napi::Value { return AddonModel::NewInstance(env, h); };
  return AddonJob<std::shared_ptr<ModelHolder>>::Start(env, info[1], work, convert);
}

// checkModelWeights({config, files, where}): the checkpoint's headers against config.json (synchronous:
// headers only, no tensor data is read).
Napi::Value CheckModelWeights(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = obj_arg(info, 0, "checkModelWeights options");
  lep::ModelConfig config = config_from_js(o.Get("config").As<Napi::Object>());
  auto files = get_strings(o, "files");
  const std::string where = get_string(o, "where", files.empty() ? "" : files.front());
  lep::check_weights_match_config(config, lep::checkpoint_shapes(files), where);
  return env.Undefined();
}

Napi::Value AddonModel::Score(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  auto seqs = get_sequences(info[0], "sequences");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  lep::ScoreOptions opts;
  opts.max_batch_tokens = get_number(o, "maxBatchTokens", opts.max_batch_tokens);
  opts.last_logprobs = get_bool(o, "lastLogprobs", false);
  auto work = [h, seqs, opts](const lep::ProgressFn& progress) {
    ModelLock lock(*h);
    return lep::score(*h->model, seqs, opts, progress);
  };
  auto convert = [](Napi::Env env, std::vector<lep::ScoreResult>& rs) -> Napi::Value {
    Napi::Array out = Napi::Array::New(env, rs.size());
    for (size_t i = 0; i < rs.size(); ++i) {
      Napi::Object r = Napi::Object::New(env);
      auto lp = Napi::Float32Array::New(env, rs[i].token_logprobs.size());
      std::copy(rs[i].token_logprobs.begin(), rs[i].token_logprobs.end(), lp.Data());
      r.Set("tokenLogprobs", lp);
      if (!rs[i].last_logprobs.empty()) {
        auto last = Napi::Float32Array::New(env, rs[i].last_logprobs.size());
        std::copy(rs[i].last_logprobs.begin(), rs[i].last_logprobs.end(), last.Data());
        r.Set("lastLogprobs", last);
      }
      out.Set(i, r);
    }
    return out;
  };
  return AddonJob<std::vector<lep::ScoreResult>>::Start(env, info[2], work, convert);
}

Napi::Value AddonModel::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  auto prompts = get_sequences(info[0], "prompts");
  Napi::Object o = info.Length() > 1 && info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
  lep::GenerateOptions opts;
  // Resolved in full by TS (GENERATE_SPEC holds the defaults); the core checks the ranges.
  opts.max_new_tokens = need_number(o, "maxNewTokens");
  opts.temperature = need_number(o, "temperature");
  opts.top_k = need_number(o, "topK");
  opts.top_p = need_number(o, "topP");
  opts.repetition_penalty = need_number(o, "repetitionPenalty");
  opts.seed = need_number(o, "seed");
  auto a = need_array(o, "stopTokens");
  for (uint32_t i = 0; i < a.Length(); ++i) opts.stop_tokens.insert(a.Get(i).As<Napi::Number>().Int64Value());
  auto work = [h, prompts, opts](const lep::ProgressFn& progress) {
    ModelLock lock(*h);
    return lep::generate(*h->model, prompts, opts, progress);
  };
  auto convert = [](Napi::Env env, std::vector<lep::GenerateResult>& rs) -> Napi::Value {
    Napi::Array out = Napi::Array::New(env, rs.size());
    for (size_t i = 0; i < rs.size(); ++i) {
      Napi::Object r = Napi::Object::New(env);
      auto t = Napi::Int32Array::New(env, rs[i].tokens.size());
      std::copy(rs[i].tokens.begin(), rs[i].tokens.end(), t.Data());
      r.Set("tokens", t);
      r.Set("finishReason", rs[i].finish_reason);
      out.Set(i, r);
    }
    return out;
  };
  return AddonJob<std::vector<lep::GenerateResult>>::Start(env, info[2], work, convert);
}

Napi::Value AddonModel::Save(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  Napi::Object o = obj_arg(info, 0, "save options");
  const std::string dir = get_string(o, "dir", "");
  if (dir.empty()) throw make_error(env, "LEP_BAD_ARGUMENT", "save needs a dir");
  const uint64_t shard = get_number(o, "maxShardBytes", 0);
  auto dtype = dtype_arg(env, get_string(o, "dtype", "f32"));
  auto work = [h, dir, shard, dtype](const lep::ProgressFn&) {
    ModelLock lock(*h);
    // Saving only the base weights of an adapted model would silently lose the adapters.
    if (h->model->has_lora())
      throw lep::Error("LEP_BAD_ARGUMENT", "the model has LoRA adapters: merge them (mergeLora) or save them (saveLora) first");
    return lep::write_checkpoint(dir, h->model->parameters(), shard, dtype);
  };
  auto convert = [](Napi::Env env, std::vector<std::string>& files) -> Napi::Value {
    Napi::Array out = Napi::Array::New(env, files.size());
    for (size_t i = 0; i < files.size(); ++i) out.Set(i, files[i]);
    return out;
  };
  return AddonJob<std::vector<std::string>>::Start(env, info[1], work, convert);
}

void ModelHolder::refresh_info() {
  ModelInfo i;
  for (const auto& [_, p] : model->parameters()) i.parameters += p.numel();
  for (const auto& [_, p] : model->lora_tensors()) i.lora_parameters += p.numel();
  i.device = model->device().str();
  i.dtype = std::string(c10::toString(model->dtype()));
  std::lock_guard<std::mutex> lock(info_lock_);
  info_ = std::move(i);
}

// A snapshot: safe beside a running job (ModelHolder::info).
Napi::Value AddonModel::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const ModelInfo i = holder(env)->info();
  Napi::Object o = Napi::Object::New(env);
  o.Set("parameters", static_cast<double>(i.parameters));
  o.Set("loraParameters", static_cast<double>(i.lora_parameters));
  o.Set("device", i.device);
  o.Set("dtype", i.dtype);
  return o;
}

void AddonModel::Dispose(const Napi::CallbackInfo& info) { holder_.reset(); }

}  // namespace lep_addon
