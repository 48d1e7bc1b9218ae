// JS <-> core struct conversions, with messages that name the offending field.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "addon/errors.h"
#include "core/model_config.h"

namespace lep_addon {

Napi::Object obj_arg(const Napi::CallbackInfo& info, size_t i, const char* what);
std::string get_string(const Napi::Object& o, const char* key, const std::string& fallback);
double get_number(const Napi::Object& o, const char* key, double fallback);
bool get_bool(const Napi::Object& o, const char* key, bool fallback);
std::vector<std::string> get_strings(const Napi::Object& o, const char* key);
// Options TS resolves in full (its option specs hold the defaults): a missing key is a bug in lep
// (LEP_INTERNAL), never a silent default here.
std::string need_string(const Napi::Object& o, const char* key);
double need_number(const Napi::Object& o, const char* key);
bool need_bool(const Napi::Object& o, const char* key);
Napi::Array need_array(const Napi::Object& o, const char* key);
// Token sequences: an array of Int32Array / Uint32Array / number[].
std::vector<std::vector<int64_t>> get_sequences(const Napi::Value& v, const char* what);
lep::ModelConfig config_from_js(const Napi::Object& o);

}  // namespace lep_addon
