// lep_spm.node: SentencePiece training glue, in its own addon because libsentencepiece's bundled
// protobuf symbols clash with libtorch's when both are linked into one .node (docs/architecture.md).
// Exports: version(), train(options, onProgress), readModel(path), encode(path, texts, onProgress),
// stopJobs(waitMs), exitNow(code) (common/NodeJob.h).
#include <napi.h>

#include "spm/SpmExports.h"
#include "spm/SpmJob.h"

namespace {

Napi::Value Version(const Napi::CallbackInfo& info) {
  // libsentencepiece 0.1.9x has no version API; name the library instead.
  return Napi::String::New(info.Env(), "sentencepiece (Debian libsentencepiece)");
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("version", Napi::Function::New(env, Version));
  exports.Set("train", Napi::Function::New(env, lep_spm::Sync<lep_spm::Train>));
  exports.Set("readModel", Napi::Function::New(env, lep_spm::Sync<lep_spm::ReadModel>));
  exports.Set("encode", Napi::Function::New(env, lep_spm::Sync<lep_spm::Encode>));
  exports.Set("stopJobs", Napi::Function::New(env, lep_node::StopJobsJs));
  exports.Set("exitNow", Napi::Function::New(env, lep_node::ExitNow));
  return exports;
}

}  // namespace

NODE_API_MODULE(lep_spm, Init)
