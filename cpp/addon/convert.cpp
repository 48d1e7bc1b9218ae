#include "addon/convert.h"

#include "addon/AddonJob.h"

#include <cctype>
#include <cmath>

namespace lep_addon {

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  return lep_node::MakeError(env, code, message);
}

namespace {

// The core names its values in snake_case ("grad_norm"); JS sees camelCase ("gradNorm").
std::string camel_case(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_' && i + 1 < s.size()) {
      out += static_cast<char>(std::toupper(static_cast<unsigned char>(s[++i])));
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

// The JS progress event, typed as JobProgress in ts/binding/progress.ts: `phase` (the discriminant),
// `done` of `total`, the phase's values in camelCase, and `tokens` for generate. `step` and the snake_case
// value names are the 0.1.0 spelling, kept for one minor release (docs/migration.md).
Napi::Object progress_to_js(Napi::Env env, const lep::ProgressEvent& ev) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("phase", ev.phase);
  o.Set("done", static_cast<double>(ev.step));
  o.Set("total", static_cast<double>(ev.total));
  for (const auto& [k, v] : ev.values) o.Set(camel_case(k), v);
  if (!ev.tokens.empty()) {
    Napi::Array tokens = Napi::Array::New(env, ev.tokens.size());
    for (size_t i = 0; i < ev.tokens.size(); ++i) tokens.Set(static_cast<uint32_t>(i), static_cast<double>(ev.tokens[i]));
    o.Set("tokens", tokens);
  }
  o.Set("step", static_cast<double>(ev.step));
  for (const auto& [k, v] : ev.values)
    if (k.find('_') != std::string::npos) o.Set(k, v);
  return o;
}

Napi::Object obj_arg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject())
    throw make_error(info.Env(), "LEP_BAD_ARGUMENT", std::string("expected an object for ") + what);
  return info[i].As<Napi::Object>();
}

std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw make_error(o.Env(), "LEP_BAD_ARGUMENT", std::string("expected a string for ") + key);
  return v.As<Napi::String>().Utf8Value();
}

double get_number(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber()) throw make_error(o.Env(), "LEP_BAD_ARGUMENT", std::string("expected a number for ") + key);
  return v.As<Napi::Number>().DoubleValue();
}

bool get_bool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw make_error(o.Env(), "LEP_BAD_ARGUMENT", std::string("expected a boolean for ") + key);
  return v.As<Napi::Boolean>().Value();
}

static void need(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull())
    throw make_error(o.Env(), "LEP_INTERNAL", std::string("the native options lack \"") + key + "\" (TS resolves every option before a native call; this is a bug in lep)");
}

std::string need_string(const Napi::Object& o, const char* key) {
  need(o, key);
  return get_string(o, key, "");
}

double need_number(const Napi::Object& o, const char* key) {
  need(o, key);
  return get_number(o, key, 0);
}

bool need_bool(const Napi::Object& o, const char* key) {
  need(o, key);
  return get_bool(o, key, false);
}

Napi::Array need_array(const Napi::Object& o, const char* key) {
  need(o, key);
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) throw make_error(o.Env(), "LEP_BAD_ARGUMENT", std::string("expected an array for ") + key);
  return v.As<Napi::Array>();
}

std::vector<std::string> get_strings(const Napi::Object& o, const char* key) {
  std::vector<std::string> out;
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return out;
  if (!v.IsArray()) throw make_error(o.Env(), "LEP_BAD_ARGUMENT", std::string("expected an array of strings for ") + key);
  auto a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

std::vector<std::vector<int64_t>> get_sequences(const Napi::Value& v, const char* what) {
  Napi::Env env = v.Env();
  if (!v.IsArray()) throw make_error(env, "LEP_BAD_ARGUMENT", std::string("expected an array of token arrays for ") + what);
  auto a = v.As<Napi::Array>();
  std::vector<std::vector<int64_t>> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value s = a.Get(i);
    // Copied here, on the calling thread: typed-array memory is only safe during this call.
    if (s.IsTypedArray()) {
      auto ta = s.As<Napi::TypedArray>();
      if (ta.TypedArrayType() == napi_int32_array) {
        auto t = s.As<Napi::Int32Array>();
        out[i].assign(t.Data(), t.Data() + t.ElementLength());
      } else if (ta.TypedArrayType() == napi_uint32_array) {
        auto t = s.As<Napi::Uint32Array>();
        out[i].assign(t.Data(), t.Data() + t.ElementLength());
      } else {
        throw make_error(env, "LEP_BAD_ARGUMENT", std::string(what) + " must hold Int32Array, Uint32Array or number[]");
      }
    } else if (s.IsArray()) {
      auto arr = s.As<Napi::Array>();
      for (uint32_t j = 0; j < arr.Length(); ++j) {
        // Int64Value() would turn 1.5 into 1 and NaN into 0: a token id must be an integer as given.
        Napi::Value x = arr.Get(j);
        const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : std::nan("");
        if (!(d >= -9.0e15 && d <= 9.0e15) || d != std::floor(d))
          throw make_error(env, "LEP_BAD_TOKEN", std::string(what) + "[" + std::to_string(i) + "][" + std::to_string(j) +
                                                     "] is " + x.ToString().Utf8Value() + ", not an integer token id");
        out[i].push_back(static_cast<int64_t>(d));
      }
    } else {
      throw make_error(env, "LEP_BAD_ARGUMENT", std::string(what) + " must hold Int32Array, Uint32Array or number[]");
    }
  }
  return out;
}

lep::ModelConfig config_from_js(const Napi::Object& o) {
  lep::ModelConfig c;
  c.model_type = get_string(o, "modelType", "llama");
  c.vocab_size = get_number(o, "vocabSize", 0);
  c.hidden_size = get_number(o, "hiddenSize", 0);
  c.intermediate_size = get_number(o, "intermediateSize", 0);
  c.num_hidden_layers = get_number(o, "numHiddenLayers", 0);
  c.num_attention_heads = get_number(o, "numAttentionHeads", 0);
  c.num_key_value_heads = get_number(o, "numKeyValueHeads", c.num_attention_heads);
  c.head_dim = get_number(o, "headDim", c.num_attention_heads ? c.hidden_size / c.num_attention_heads : 0);
  c.max_position_embeddings = get_number(o, "maxPositionEmbeddings", 2048);
  c.rms_norm_eps = get_number(o, "rmsNormEps", 1e-6);
  c.rope_theta = get_number(o, "ropeTheta", 10000.0);
  c.tie_word_embeddings = get_bool(o, "tieWordEmbeddings", false);
  c.attention_bias = get_bool(o, "attentionBias", false);
  Napi::Value rs = o.Get("ropeScaling");
  if (rs.IsObject()) {
    auto r = rs.As<Napi::Object>();
    c.rope_scaling.type = get_string(r, "type", "");
    c.rope_scaling.factor = get_number(r, "factor", 1.0);
    c.rope_scaling.low_freq_factor = get_number(r, "lowFreqFactor", 1.0);
    c.rope_scaling.high_freq_factor = get_number(r, "highFreqFactor", 4.0);
    c.rope_scaling.original_max_position_embeddings = get_number(r, "originalMaxPositionEmbeddings", 8192);
  }
  return c;
}

}  // namespace lep_addon
