// propagate(options, onProgress): the propagation job (core/propagate.h). TS builds the averaging map,
// the overlap set and the copied rows from tokenizers; this glue copies them off the JS heap, runs the
// core on the job thread and returns the report.
//
// Two shapes: with `targets` (an array of {instructFiles, copyTo, copyFrom, outRows, outDir, and optionally
// method, which overrides the top-level one for that target}) the report
// has one entry per target, each with its error if it was not written; without it, the top-level
// instructFiles/copyTo/copyFrom/outRows/outDir are the one target, the report is that target's (sides,
// files, dtype at the top level) and a failure rejects the job.
#include "addon/AddonJob.h"
#include "addon/convert.h"
#include "core/propagate.h"

namespace lep_addon {

namespace {

// An id list: Int32Array, Uint32Array or number[]; absent = empty. Copied here, on the calling thread:
// typed-array memory is only safe during this call.
std::vector<int64_t> get_ids(const Napi::Object& o, const char* key) {
  Napi::Env env = o.Env();
  Napi::Value v = o.Get(key);
  std::vector<int64_t> out;
  if (v.IsUndefined() || v.IsNull()) return out;
  if (v.IsTypedArray()) {
    auto ta = v.As<Napi::TypedArray>();
    if (ta.TypedArrayType() == napi_int32_array) {
      auto t = v.As<Napi::Int32Array>();
      out.assign(t.Data(), t.Data() + t.ElementLength());
      return out;
    }
    if (ta.TypedArrayType() == napi_uint32_array) {
      auto t = v.As<Napi::Uint32Array>();
      out.assign(t.Data(), t.Data() + t.ElementLength());
      return out;
    }
  } else if (v.IsArray()) {
    auto a = v.As<Napi::Array>();
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(a.Get(i).As<Napi::Number>().Int64Value());
    return out;
  }
  throw make_error(env, "LEP_BAD_ARGUMENT", std::string("expected Int32Array, Uint32Array or number[] for ") + key);
}

Napi::Value Propagate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = obj_arg(info, 0, "propagate options");
  lep::PropagateOptions opt;
  // The options arrive resolved (ts/propagate/propagateOptions.ts holds the defaults): need_* fails on
  // a missing one instead of defaulting here. A lep::Error from the parsers becomes a JS error in Sync.
  const lep::PropagateMethod method = lep::propagate_method_from_string(need_string(o, "method"));
  opt.solver = lep::lstsq_solver_from_string(need_string(o, "solver"));
  opt.base_files = get_strings(o, "baseFiles");
  opt.donor_files = get_strings(o, "donorFiles");
  opt.t_offsets = get_ids(o, "tOffsets");
  opt.t_indices = get_ids(o, "tIndices");
  opt.overlap_new = get_ids(o, "overlapNew");
  opt.overlap_old = get_ids(o, "overlapOld");
  opt.max_shard_bytes = static_cast<uint64_t>(need_number(o, "maxShardBytes"));
  opt.chunk_rows = static_cast<int64_t>(need_number(o, "chunkRows"));
  opt.device = need_string(o, "device");
  const bool multi = o.Has("targets") && !o.Get("targets").IsUndefined();
  const auto read_target = [&env, method](const Napi::Object& t) {
    lep::PropagateTarget tg;
    tg.method = t.Has("method") && !t.Get("method").IsUndefined() ? lep::propagate_method_from_string(need_string(t, "method")) : method;
    tg.instruct_files = get_strings(t, "instructFiles");
    tg.copy_to = get_ids(t, "copyTo");
    tg.copy_from = get_ids(t, "copyFrom");
    // Resolved by propagate.ts like the options above: a missing one is LEP_INTERNAL, not a default.
    tg.out_rows = static_cast<int64_t>(need_number(t, "outRows"));
    tg.out_dir = need_string(t, "outDir");
    if (tg.out_dir.empty()) throw make_error(env, "LEP_BAD_ARGUMENT", "propagate needs outDir");
    return tg;
  };
  if (multi) {
    if (!o.Get("targets").IsArray()) throw make_error(env, "LEP_BAD_ARGUMENT", "propagate: targets must be an array");
    auto arr = o.Get("targets").As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      if (!arr.Get(i).IsObject()) throw make_error(env, "LEP_BAD_ARGUMENT", "propagate: each target must be an object");
      opt.targets.push_back(read_target(arr.Get(i).As<Napi::Object>()));
    }
    if (opt.targets.empty()) throw make_error(env, "LEP_BAD_ARGUMENT", "propagate needs at least one target");
  } else {
    opt.targets.push_back(read_target(o));
  }
  auto work = [opt, multi](const lep::ProgressFn& progress) {
    auto r = lep::propagate(opt, progress);
    // The single-target shape keeps the job's old contract: a failure rejects it.
    if (!multi && !r.targets[0].error_code.empty()) throw lep::Error(r.targets[0].error_code, r.targets[0].error_message);
    return r;
  };
  const auto side_to_js = [](Napi::Env env, const std::vector<lep::PropagateSideReport>& ss) {
    Napi::Array sides = Napi::Array::New(env, ss.size());
    for (size_t i = 0; i < ss.size(); ++i) {
      const auto& s = ss[i];
      Napi::Object j = Napi::Object::New(env);
      j.Set("side", s.side);
      j.Set("tensor", s.tensor);
      j.Set("systemRows", static_cast<double>(s.system_rows));
      j.Set("residual", s.residual < 0 ? env.Null() : Napi::Number::New(env, s.residual));
      j.Set("solverFellBack", s.solver_fell_back);
      j.Set("gram", s.gram);
      j.Set("overlapRows", static_cast<double>(s.overlap_rows));
      j.Set("overlapCosine", s.overlap_cosine);
      j.Set("baseInstructCorrelation", s.base_instruct_correlation);
      j.Set("solveSeconds", s.solve_seconds);
      j.Set("applySeconds", s.apply_seconds);
      j.Set("cosineSeconds", s.cosine_seconds);
      sides.Set(i, j);
    }
    return sides;
  };
  // A target's fields, onto `out` (the target object, or the top level in the single-target shape).
  const auto target_to_js = [side_to_js](Napi::Env env, const lep::PropagateTargetReport& t, Napi::Object out) {
    out.Set("sides", side_to_js(env, t.sides));
    Napi::Array files = Napi::Array::New(env, t.files.size());
    for (size_t i = 0; i < t.files.size(); ++i) files.Set(i, t.files[i]);
    out.Set("files", files);
    out.Set("outRows", static_cast<double>(t.out_rows));
    out.Set("dtype", t.dtype);
    out.Set("writeSeconds", t.write_seconds);
    if (t.error_code.empty()) {
      out.Set("error", env.Null());
    } else {
      Napi::Object e = Napi::Object::New(env);
      e.Set("code", t.error_code);
      e.Set("message", t.error_message);
      out.Set("error", e);
    }
  };
  auto convert = [multi, target_to_js](Napi::Env env, lep::PropagateReport& r) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    if (multi) {
      Napi::Array targets = Napi::Array::New(env, r.targets.size());
      for (size_t i = 0; i < r.targets.size(); ++i) {
        Napi::Object t = Napi::Object::New(env);
        target_to_js(env, r.targets[i], t);
        targets.Set(i, t);
      }
      out.Set("targets", targets);
    } else {
      target_to_js(env, r.targets[0], out);
    }
    out.Set("hiddenSize", static_cast<double>(r.hidden_size));
    out.Set("oldRows", static_cast<double>(r.old_rows));
    out.Set("donorRows", static_cast<double>(r.donor_rows));
    out.Set("sharedSeconds", r.shared_seconds);
    out.Set("totalSeconds", r.total_seconds);
    return out;
  };
  return AddonJob<lep::PropagateReport>::Start(env, info[1], work, convert);
}

}  // namespace

void InitPropagate(Napi::Env env, Napi::Object exports) { exports.Set("propagate", Napi::Function::New(env, Sync<Propagate>)); }

}  // namespace lep_addon
