// writeGguf({path, files, metadata, tensors}, onProgress): GGUF export job. TS decides every key and
// tensor mapping (ts/checkpoint/gguf.ts); this glue converts them and streams tensors from the checkpoint.
#include "addon/AddonJob.h"
#include "addon/convert.h"
#include "core/checkpoint.h"
#include "core/gguf_writer.h"

namespace lep_addon {

namespace {

lep::GgufType gguf_type(Napi::Env env, const std::string& s) {
  if (s == "u32") return lep::GgufType::UINT32;
  if (s == "i32") return lep::GgufType::INT32;
  if (s == "f32") return lep::GgufType::FLOAT32;
  if (s == "u64") return lep::GgufType::UINT64;
  if (s == "bool") return lep::GgufType::BOOL;
  if (s == "string") return lep::GgufType::STRING;
  if (s == "array") return lep::GgufType::ARRAY;
  throw make_error(env, "LEP_BAD_ARGUMENT", "unknown GGUF value type '" + s + "'");
}

lep::GgmlType ggml_type(Napi::Env env, const std::string& s) {
  if (s == "f32") return lep::GgmlType::F32;
  if (s == "f16") return lep::GgmlType::F16;
  if (s == "bf16") return lep::GgmlType::BF16;
  throw make_error(env, "LEP_BAD_ARGUMENT", "GGUF tensor type must be f32, f16 or bf16, got '" + s + "'");
}

struct PendingTensor {
  std::string name, source;
  lep::GgmlType type;
  int64_t permute_heads;
  std::vector<float> inline_data;  // generated tensors (rope_freqs) come as Float32Array
  bool has_inline = false;
};

Napi::Value WriteGguf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = obj_arg(info, 0, "writeGguf options");
  const std::string path = get_string(o, "path", "");
  auto files = get_strings(o, "files");
  std::vector<lep::GgufKV> kvs;
  auto meta = o.Get("metadata").As<Napi::Array>();
  for (uint32_t i = 0; i < meta.Length(); ++i) {
    auto pair = meta.Get(i).As<Napi::Array>();
    auto v = pair.Get(1u).As<Napi::Object>();
    lep::GgufKV kv;
    kv.key = pair.Get(0u).As<Napi::String>().Utf8Value();
    kv.type = gguf_type(env, get_string(v, "type", ""));
    Napi::Value value = v.Get("value");
    if (kv.type == lep::GgufType::STRING) {
      kv.string = value.As<Napi::String>().Utf8Value();
    } else if (kv.type == lep::GgufType::ARRAY) {
      kv.item_type = gguf_type(env, get_string(v, "itemType", ""));
      auto arr = value.As<Napi::Object>();
      const uint32_t n = arr.Get("length").As<Napi::Number>().Uint32Value();
      if (kv.item_type == lep::GgufType::STRING) {
        kv.strings.reserve(n);
        for (uint32_t j = 0; j < n; ++j) kv.strings.push_back(arr.Get(j).As<Napi::String>().Utf8Value());
      } else {
        kv.numbers.reserve(n);
        for (uint32_t j = 0; j < n; ++j) kv.numbers.push_back(arr.Get(j).As<Napi::Number>().DoubleValue());
      }
    } else if (kv.type == lep::GgufType::BOOL) {
      kv.number = value.ToBoolean().Value() ? 1 : 0;
    } else {
      kv.number = value.As<Napi::Number>().DoubleValue();
    }
    kvs.push_back(std::move(kv));
  }
  std::vector<PendingTensor> pending;
  auto ts = o.Get("tensors").As<Napi::Array>();
  for (uint32_t i = 0; i < ts.Length(); ++i) {
    auto t = ts.Get(i).As<Napi::Object>();
    PendingTensor p{get_string(t, "name", ""), get_string(t, "source", ""), ggml_type(env, get_string(t, "type", "f32")),
                    static_cast<int64_t>(get_number(t, "permuteHeads", 0)), {}, false};
    if (t.Get("data").IsTypedArray()) {
      auto d = t.Get("data").As<Napi::Float32Array>();
      p.inline_data.assign(d.Data(), d.Data() + d.ElementLength());
      p.has_inline = true;
    }
    pending.push_back(std::move(p));
  }
  auto work = [path, files, kvs, pending](const lep::ProgressFn& progress) {
    auto weights = lep::read_checkpoint(files);  // zero-copy mmap views
    std::vector<lep::GgufTensor> tensors;
    for (const auto& p : pending) {
      torch::Tensor data;
      if (p.has_inline) {
        data = torch::tensor(p.inline_data, torch::kFloat32);
      } else {
        auto it = weights.find(p.source);
        if (it == weights.end()) throw lep::Error("LEP_MISSING_TENSOR", "checkpoint lacks tensor '" + p.source + "'");
        data = it->second;
      }
      tensors.push_back(lep::GgufTensor{p.name, data, p.type, p.permute_heads});
    }
    return lep::write_gguf(path, kvs, tensors, progress);
  };
  auto convert = [](Napi::Env env, uint64_t& bytes) -> Napi::Value {
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytes", static_cast<double>(bytes));
    return r;
  };
  return AddonJob<uint64_t>::Start(env, info[1], work, convert);
}

}  // namespace

void InitGguf(Napi::Env env, Napi::Object exports) { exports.Set("writeGguf", Napi::Function::New(env, Sync<WriteGguf>)); }

}  // namespace lep_addon
