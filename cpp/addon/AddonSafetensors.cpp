#include "addon/AddonSafetensors.h"

#include <cmath>

#include "addon/AddonJob.h"
#include "addon/convert.h"
#include "core/error.h"
#include "core/safetensors.h"

namespace lep_addon {

namespace {

Napi::Object info_to_js(Napi::Env env, const lep::TensorInfo& i) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("name", i.name);
  t.Set("dtype", i.dtype);
  Napi::Array shape = Napi::Array::New(env, i.shape.size());
  for (size_t d = 0; d < i.shape.size(); ++d) shape.Set(d, static_cast<double>(i.shape[d]));
  t.Set("shape", shape);
  t.Set("begin", static_cast<double>(i.begin));
  t.Set("end", static_cast<double>(i.end));
  return t;
}

Napi::Value Inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  lep::SafetensorsFile f(path);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array tensors = Napi::Array::New(env, f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) tensors.Set(i, info_to_js(env, f.tensors()[i]));
  out.Set("tensors", tensors);
  Napi::Object meta = Napi::Object::New(env);
  for (const auto& [k, v] : f.metadata()) meta.Set(k, v);
  out.Set("metadata", meta);
  return out;
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  lep::SafetensorsFile f(path);
  Napi::Array out = Napi::Array::New(env, f.tensors().size());
  for (size_t i = 0; i < f.tensors().size(); ++i) {
    const auto& ti = f.tensors()[i];
    Napi::Object t = info_to_js(env, ti);
    auto bytes = Napi::Uint8Array::New(env, ti.end - ti.begin);
    auto view = f.tensor(ti.name).contiguous();
    if (bytes.ByteLength()) std::memcpy(bytes.Data(), view.data_ptr(), bytes.ByteLength());
    t.Set("data", bytes);
    out.Set(i, t);
  }
  return out;
}

Napi::Value Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  auto arr = info[1].As<Napi::Array>();
  std::map<std::string, std::string> metadata;
  if (info.Length() > 2 && info[2].IsObject()) {
    auto m = info[2].As<Napi::Object>();
    auto keys = m.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      metadata[k] = m.Get(k).ToString().Utf8Value();
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    auto t = arr.Get(i).As<Napi::Object>();
    const std::string name = get_string(t, "name", "");
    const std::string dtype = get_string(t, "dtype", "");
    std::vector<int64_t> shape;
    auto s = t.Get("shape").As<Napi::Array>();
    int64_t numel = 1, need = 0;
    bool bad_shape = false;
    for (uint32_t d = 0; d < s.Length(); ++d) {
      const double dim = s.Get(d).ToNumber().DoubleValue();
      bad_shape |= !(dim >= 0 && dim <= 9.0e15 && dim == std::floor(dim));
      shape.push_back(bad_shape ? 0 : static_cast<int64_t>(dim));
      bad_shape |= __builtin_mul_overflow(numel, shape.back(), &numel);
    }
    // A product that wraps could otherwise match the data's length (as in the reader).
    bad_shape |= __builtin_mul_overflow(numel, lep::dtype_size(dtype), &need);
    if (bad_shape)
      throw lep::Error("LEP_SHAPE_MISMATCH", "tensor '" + name + "' has a shape whose dimensions are not non-negative integers "
                                             "or whose byte count overflows 64 bits");
    auto data = t.Get("data").As<Napi::Uint8Array>();
    if (static_cast<int64_t>(data.ByteLength()) != need)
      throw lep::Error("LEP_SHAPE_MISMATCH", "tensor '" + name + "' has " + std::to_string(data.ByteLength()) +
                                                 " bytes but " + dtype + " x shape needs " + std::to_string(need));
    auto tensor = torch::empty(shape, torch::TensorOptions().dtype(lep::dtype_from_safetensors(dtype)));
    if (need) std::memcpy(tensor.data_ptr(), data.Data(), need);
    tensors.emplace_back(name, tensor);
  }
  lep::write_safetensors(path, tensors, metadata);
  return env.Undefined();
}

}  // namespace

void InitSafetensors(Napi::Env env, Napi::Object exports) {
  exports.Set("inspectSafetensors", Napi::Function::New(env, Sync<Inspect>));
  exports.Set("readSafetensors", Napi::Function::New(env, Sync<Read>));
  exports.Set("writeSafetensors", Napi::Function::New(env, Sync<Write>));
}

}  // namespace lep_addon
