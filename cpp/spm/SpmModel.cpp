// spm.readModel(path): the pieces, scores and types of a trained SentencePiece model (synchronous: a
// 32000-piece model reads in milliseconds). spm.encode(path, texts, onProgress): SentencePiece's own ids
// for each text, on a worker thread — the reference the tokenizer.json conversion is checked against.
#include <napi.h>
#include <sentencepiece_processor.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "spm/SpmExports.h"
#include "spm/SpmJob.h"
#include "spm/SpmModelReader.h"

namespace lep_spm {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw SpmError("LEP_SPM_MODEL", "cannot read SentencePiece model " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Loads the model with SentencePiece itself, so a file it would refuse is refused here too.
void LoadProcessor(sentencepiece::SentencePieceProcessor& sp, const std::string& path, const std::string& bytes) {
  auto status = sp.LoadFromSerializedProto(bytes);
  if (!status.ok()) throw SpmError("LEP_SPM_MODEL", path + ": SentencePiece cannot load it: " + status.message());
}

const char* ModelTypeName(int t) {
  switch (t) {
    case 1: return "unigram";
    case 2: return "bpe";
    case 3: return "word";
    case 4: return "char";
    default: return "unknown";
  }
}

}  // namespace

Napi::Value ReadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw MakeError(env, "LEP_BAD_ARGUMENT", "readModel(path): path must be a string");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  SpmModelInfo m;
  {
    std::string bytes = ReadFile(path);
    sentencepiece::SentencePieceProcessor sp;
    LoadProcessor(sp, path, bytes);
    m = ParseModelProto(bytes);
    // The wire reader and SentencePiece must agree on every piece.
    if (static_cast<int>(m.pieces.size()) != sp.GetPieceSize())
      throw SpmError("LEP_SPM_MODEL", path + ": read " + std::to_string(m.pieces.size()) + " pieces, SentencePiece has " + std::to_string(sp.GetPieceSize()));
    for (int i = 0; i < sp.GetPieceSize(); i++)
      if (sp.IdToPiece(i) != m.pieces[i] || sp.GetScore(i) != m.scores[i])
        throw SpmError("LEP_SPM_MODEL", path + ": piece " + std::to_string(i) + " differs between the wire reader and SentencePiece");
  }
  Napi::Object out = Napi::Object::New(env);
  Napi::Array pieces = Napi::Array::New(env, m.pieces.size());
  Napi::Float32Array scores = Napi::Float32Array::New(env, m.scores.size());
  Napi::Uint8Array types = Napi::Uint8Array::New(env, m.types.size());
  for (size_t i = 0; i < m.pieces.size(); i++) {
    pieces.Set(static_cast<uint32_t>(i), m.pieces[i]);
    scores[i] = m.scores[i];
    types[i] = m.types[i];
  }
  out.Set("pieces", pieces);
  out.Set("scores", scores);
  out.Set("types", types);
  out.Set("modelType", ModelTypeName(m.model_type));
  out.Set("byteFallback", m.byte_fallback);
  out.Set("normalization", m.normalization);
  out.Set("addDummyPrefix", m.add_dummy_prefix);
  out.Set("removeExtraWhitespaces", m.remove_extra_whitespaces);
  return out;
}

Napi::Value Encode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray())
    throw MakeError(env, "LEP_BAD_ARGUMENT", "encode(path, texts, onProgress): path must be a string and texts an array of strings");
  std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Array arr = info[1].As<Napi::Array>();
  std::vector<std::string> texts(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); i++) {
    Napi::Value v = arr.Get(i);
    if (!v.IsString()) throw MakeError(env, "LEP_BAD_ARGUMENT", "encode: texts[" + std::to_string(i) + "] is not a string");
    texts[i] = v.As<Napi::String>().Utf8Value();
  }
  using Ids = std::vector<std::vector<int>>;
  return SpmJob<Ids>::Start(
      env, info.Length() > 2 ? info[2] : env.Undefined(),
      [path, texts = std::move(texts)](const ProgressFn& progress) {
        std::string bytes = ReadFile(path);
        sentencepiece::SentencePieceProcessor sp;
        LoadProcessor(sp, path, bytes);
        Ids out(texts.size());
        const size_t every = std::max<size_t>(1, texts.size() / 20);
        for (size_t i = 0; i < texts.size(); i++) {
          auto status = sp.Encode(texts[i], &out[i]);
          if (!status.ok()) throw SpmError("LEP_SPM_ENCODE", "text " + std::to_string(i) + ": " + status.message());
          if ((i + 1) % every == 0 || i + 1 == texts.size())
            if (!progress({"encode", static_cast<int64_t>(i + 1), static_cast<int64_t>(texts.size())}))
              throw SpmError("LEP_ABORTED", "encode aborted");
        }
        return out;
      },
      [](Napi::Env env, Ids& ids) -> Napi::Value {
        Napi::Array out = Napi::Array::New(env, ids.size());
        for (size_t i = 0; i < ids.size(); i++) {
          Napi::Int32Array a = Napi::Int32Array::New(env, ids[i].size());
          for (size_t j = 0; j < ids[i].size(); j++) a[j] = ids[i][j];
          out.Set(static_cast<uint32_t>(i), a);
        }
        return out;
      });
}

}  // namespace lep_spm
