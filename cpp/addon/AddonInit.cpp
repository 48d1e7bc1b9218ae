// initEmbeddings(options, onProgress): the embedding-initialisation job (core/embedding_init.h). TS builds
// the plan (ts/init/); this glue copies its typed arrays into the job before the thread starts (a typed
// array is only valid during the synchronous call) and converts the report back.
#include "addon/AddonJob.h"
#include "addon/AddonModel.h"
#include "addon/convert.h"
#include "core/embedding_init.h"
#include "core/sparse_code.h"

namespace lep_addon {

namespace {

template <class Array, class T>
std::vector<T> copy_array(const Napi::Object& o, const char* key, napi_typedarray_type type, const char* type_name) {
  Napi::Value v = o.Get(key);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw make_error(o.Env(), "LEP_BAD_ARGUMENT", std::string("expected ") + type_name + " for " + key);
  auto a = v.As<Array>();
  return std::vector<T>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Int32Array to_int32(Napi::Env env, const std::vector<int64_t>& v) {
  auto a = Napi::Int32Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = static_cast<int32_t>(v[i]);
  return a;
}

Napi::Object side_to_js(Napi::Env env, const lep::EmbeddingSideReport& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("zeroRows", to_int32(env, s.zero_rows));
  o.Set("fallbackRows", to_int32(env, s.fallback_rows));
  o.Set("oldStd", s.old_std);
  if (!s.donor.offsets.empty()) {
    const auto& d = s.donor;
    Napi::Object j = Napi::Object::New(env);
    j.Set("rows", to_int32(env, d.rows));
    j.Set("offsets", to_int32(env, d.offsets));
    j.Set("oldIds", to_int32(env, d.old_ids));
    auto w = Napi::Float64Array::New(env, d.weights.size());
    std::copy(d.weights.begin(), d.weights.end(), w.Data());
    j.Set("weights", w);
    j.Set("keptMean", to_int32(env, d.kept_mean));
    j.Set("atoms", static_cast<double>(d.atoms));
    j.Set("meanResidual", d.mean_residual);
    j.Set("maxResidual", d.max_residual);
    o.Set("donor", j);
  }
  return o;
}

torch::ScalarType solve_dtype(Napi::Env env, const std::string& s) {
  if (s == "float32") return torch::kFloat32;
  if (s == "float64") return torch::kFloat64;
  throw make_error(env, "LEP_BAD_ARGUMENT", "solve dtype must be float32 or float64, got '" + s + "'");
}

lep::DonorMethod donor_method(Napi::Env env, const std::string& s) {
  if (s == "omp") return lep::DonorMethod::kOmp;
  if (s == "focus") return lep::DonorMethod::kFocus;
  throw make_error(env, "LEP_BAD_ARGUMENT", "donor method must be omp or focus, got '" + s + "'");
}

// sparseCode({method, targets, atoms, dim, k, device, dtype}) -> {indices: Int32Array, coeffs: Float64Array, width}:
// the donor-space solve alone (core/sparse_code.h) on Float64Array row-major matrices, synchronously. For
// checking the solver against other implementations and for small solves; init jobs call it internally.
Napi::Value SparseCode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = obj_arg(info, 0, "sparseCode options");
  const auto method = donor_method(env, get_string(o, "method", "omp"));
  const auto dim = static_cast<int64_t>(get_number(o, "dim", 0));
  const auto k = static_cast<int64_t>(get_number(o, "k", 1));
  auto ys = copy_array<Napi::Float64Array, double>(o, "targets", napi_float64_array, "a Float64Array");
  auto as = copy_array<Napi::Float64Array, double>(o, "atoms", napi_float64_array, "a Float64Array");
  if (dim <= 0 || ys.size() % dim || as.size() % dim || as.empty())
    throw make_error(env, "LEP_BAD_ARGUMENT", "sparseCode: targets and atoms must be non-empty row-major matrices of width dim");
  const int64_t n = static_cast<int64_t>(as.size()) / dim;
  if (method == lep::DonorMethod::kOmp && (k < 1 || k > n))
    throw make_error(env, "LEP_BAD_ARGUMENT", "sparseCode: k must be in [1, " + std::to_string(n) + "]");
  const auto opts = torch::TensorOptions().dtype(solve_dtype(env, get_string(o, "dtype", "float64"))).device(device_arg(env, get_string(o, "device", "cpu")));
  auto y = torch::from_blob(ys.data(), {static_cast<int64_t>(ys.size()) / dim, dim}, torch::kFloat64).to(opts);
  auto a = torch::from_blob(as.data(), {n, dim}, torch::kFloat64).to(opts);
  const lep::SparseCode code = method == lep::DonorMethod::kOmp ? lep::omp_code(y, a, k, y.scalar_type() == torch::kFloat64 ? 1e-12 : 1e-6) : lep::focus_code(y, a);
  auto idx = code.indices.to(torch::kCPU, torch::kInt32).contiguous();
  auto w = code.coeffs.to(torch::kCPU, torch::kFloat64).contiguous();
  auto ji = Napi::Int32Array::New(env, idx.numel());
  std::copy(idx.data_ptr<int32_t>(), idx.data_ptr<int32_t>() + idx.numel(), ji.Data());
  auto jw = Napi::Float64Array::New(env, w.numel());
  std::copy(w.data_ptr<double>(), w.data_ptr<double>() + w.numel(), jw.Data());
  Napi::Object out = Napi::Object::New(env);
  out.Set("indices", ji);
  out.Set("coeffs", jw);
  out.Set("width", static_cast<double>(idx.size(1)));
  return out;
}

Napi::Value InitEmbeddings(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = obj_arg(info, 0, "initEmbeddings options");
  lep::EmbeddingInitJob job;
  job.files = get_strings(o, "files");
  job.out_files = get_strings(o, "outFiles");
  job.embed_name = get_string(o, "embedName", job.embed_name);
  job.head_name = get_string(o, "headName", job.head_name);
  // The options arrive resolved (ts/init/initOptions.ts holds the defaults, initEmbeddings.ts the plan):
  // need_* fails on a missing one (LEP_INTERNAL) instead of defaulting here.
  job.tied = need_bool(o, "tied");
  auto& p = job.plan;
  p.old_tokens = static_cast<int64_t>(need_number(o, "oldTokens"));
  p.new_tokens = static_cast<int64_t>(need_number(o, "newTokens"));
  p.new_rows = static_cast<int64_t>(need_number(o, "newRows"));
  p.output_first = need_bool(o, "outputFirst");
  p.seed = static_cast<uint64_t>(need_number(o, "seed"));
  for (int32_t v : copy_array<Napi::Int32Array, int32_t>(o, "offsets", napi_int32_array, "an Int32Array")) p.offsets.push_back(v);
  for (int32_t v : copy_array<Napi::Int32Array, int32_t>(o, "ids", napi_int32_array, "an Int32Array")) p.ids.push_back(v);
  p.kinds = copy_array<Napi::Uint8Array, uint8_t>(o, "kinds", napi_uint8_array, "a Uint8Array");
  Napi::Value dv = o.Get("donor");
  if (dv.IsObject()) {
    Napi::Object d = dv.As<Napi::Object>();
    p.has_donor = true;
    p.donor.files = get_strings(d, "files");
    p.donor.tied = need_bool(d, "tied");
    p.donor.method = donor_method(env, need_string(d, "method"));
    p.donor.k = static_cast<int64_t>(need_number(d, "k"));
    p.donor.dtype = solve_dtype(env, need_string(d, "dtype"));
    p.donor.device = device_arg(env, need_string(d, "device"));
    for (int32_t v : copy_array<Napi::Int32Array, int32_t>(d, "sharedOld", napi_int32_array, "an Int32Array")) p.donor.shared_old.push_back(v);
    for (int32_t v : copy_array<Napi::Int32Array, int32_t>(d, "sharedDonor", napi_int32_array, "an Int32Array")) p.donor.shared_donor.push_back(v);
    for (int32_t v : copy_array<Napi::Int32Array, int32_t>(d, "rowDonor", napi_int32_array, "an Int32Array")) p.donor.row_donor.push_back(v);
    if (p.donor.shared_old.size() != p.donor.shared_donor.size())
      throw make_error(env, "LEP_BAD_ARGUMENT", "donor.sharedOld and donor.sharedDonor differ in length");
  }
  auto work = [job](const lep::ProgressFn& progress) { return lep::run_embedding_init(job, progress); };
  auto convert = [](Napi::Env env, lep::EmbeddingInitResult& r) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("input", side_to_js(env, r.input));
    if (r.has_output) out.Set("output", side_to_js(env, r.output));
    out.Set("dtype", r.dtype);
    out.Set("hiddenSize", static_cast<double>(r.hidden_size));
    out.Set("bytesWritten", static_cast<double>(r.bytes_written));
    return out;
  };
  return AddonJob<lep::EmbeddingInitResult>::Start(env, info[1], work, convert);
}

}  // namespace

void InitEmbeddingInit(Napi::Env env, Napi::Object exports) {
  exports.Set("initEmbeddings", Napi::Function::New(env, Sync<InitEmbeddings>));
  exports.Set("sparseCode", Napi::Function::New(env, Sync<SparseCode>));
}

}  // namespace lep_addon
