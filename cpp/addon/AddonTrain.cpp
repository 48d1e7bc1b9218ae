// NativeModel.train(options, onProgress) and NativeModel.lossAndGrads(...): the training engine's glue.
#include "addon/AddonJob.h"
#include "addon/AddonModel.h"
#include "addon/convert.h"
#include "core/trainer.h"

namespace lep_addon {

Napi::Value AddonModel::Train(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  Napi::Object o = obj_arg(info, 0, "train options");
  lep::TrainConfig c;
  c.params = get_string(o, "params", c.params);
  c.data = get_string(o, "data", "");
  c.eval_data = get_string(o, "evalData", "");
  c.batch_size = get_number(o, "batchSize", c.batch_size);
  c.grad_accum = get_number(o, "gradAccum", c.grad_accum);
  c.steps = get_number(o, "steps", c.steps);
  c.lr = get_number(o, "lr", c.lr);
  c.min_lr_ratio = get_number(o, "minLrRatio", c.min_lr_ratio);
  c.warmup_steps = get_number(o, "warmupSteps", c.warmup_steps);
  c.adamw.beta1 = get_number(o, "beta1", c.adamw.beta1);
  c.adamw.beta2 = get_number(o, "beta2", c.adamw.beta2);
  c.adamw.eps = get_number(o, "eps", c.adamw.eps);
  c.adamw.weight_decay = get_number(o, "weightDecay", c.adamw.weight_decay);
  c.clip = get_number(o, "clip", c.clip);
  c.seed = get_number(o, "seed", 0);
  c.eval_every = get_number(o, "evalEvery", c.eval_every);
  c.eval_batches = get_number(o, "evalBatches", c.eval_batches);
  c.checkpoint_every = get_number(o, "checkpointEvery", c.checkpoint_every);
  c.checkpoint_dir = get_string(o, "checkpointDir", "");
  c.keep_checkpoints = get_number(o, "keepCheckpoints", c.keep_checkpoints);
  c.resume_from = get_string(o, "resumeFrom", "");
  c.report_every = get_number(o, "reportEvery", c.report_every);
  c.activation_checkpointing = get_bool(o, "activationCheckpointing", false);
  if (o.Get("lora").IsObject()) {
    c.lora = lora_from_js(o.Get("lora").As<Napi::Object>());
    c.lora_seed = static_cast<uint64_t>(get_number(o.Get("lora").As<Napi::Object>(), "seed", 0));
  }
  if (o.Get("dist").IsObject()) {  // data-parallel: the rendezvous TS read from the environment
    Napi::Object d = o.Get("dist").As<Napi::Object>();
    c.dist.rank = get_number(d, "rank", 0);
    c.dist.world_size = get_number(d, "worldSize", 1);
    c.dist.master_addr = get_string(d, "masterAddr", "");
    c.dist.master_port = get_number(d, "masterPort", 0);
    c.dist.timeout_s = get_number(d, "timeoutS", c.dist.timeout_s);
    c.dist.grad_sync = get_string(d, "gradSync", c.dist.grad_sync);
    c.dist.bucket_mb = get_number(d, "bucketMb", c.dist.bucket_mb);
  }
  Napi::Value rows = o.Get("rows");
  if (rows.IsTypedArray() || rows.IsArray()) {
    Napi::Array wrap = Napi::Array::New(env, 1);
    wrap.Set(0u, rows);
    c.rows = get_sequences(wrap, "rows")[0];
  }
  auto work = [h, c](const lep::ProgressFn& progress) {
    ModelLock lock(*h);
    return lep::train(*h->model, c, progress);
  };
  auto convert = [](Napi::Env env, lep::TrainReport& r) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("stepsDone", static_cast<double>(r.steps_done));
    out.Set("lastLoss", r.last_loss);
    out.Set("lastEvalLoss", r.last_eval_loss);
    out.Set("stoppedEarly", r.stopped_early);
    out.Set("lastCheckpoint", r.last_checkpoint);
    return out;
  };
  return AddonJob<lep::TrainReport>::Start(env, info[1], work, convert);
}

Napi::Value AddonModel::LossAndGrads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto h = holder(env);
  Napi::Object o = obj_arg(info, 0, "lossAndGrads options");
  auto tokens = o.Get("tokens").As<Napi::Int32Array>();
  const int64_t rows = get_number(o, "rows", 0), cols = get_number(o, "cols", 0);
  if (rows * cols != static_cast<int64_t>(tokens.ElementLength()))
    throw make_error(env, "LEP_SHAPE_MISMATCH", "tokens length does not match rows x cols");
  auto blocks = torch::from_blob(tokens.Data(), {rows, cols}, torch::kInt32).clone();
  torch::Tensor mask;
  if (o.Get("lossMask").IsTypedArray()) {
    auto m = o.Get("lossMask").As<Napi::Uint8Array>();
    mask = torch::from_blob(m.Data(), {rows, cols}, torch::kUInt8).clone();
  }
  const std::string params = get_string(o, "params", "all");
  const bool checkpointing = get_bool(o, "activationCheckpointing", false);
  auto work = [h, blocks, mask, params, checkpointing](const lep::ProgressFn&) {
    ModelLock lock(*h);
    h->model->set_activation_checkpointing(checkpointing);
    auto r = lep::loss_and_grads(*h->model, blocks, mask, params);
    h->model->set_activation_checkpointing(false);
    return r;
  };
  using R = std::pair<double, std::map<std::string, torch::Tensor>>;
  auto convert = [](Napi::Env env, R& r) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", r.first);
    Napi::Object grads = Napi::Object::New(env);
    for (const auto& [name, g] : r.second) {
      auto c = g.to(torch::kCPU, torch::kFloat64).contiguous();
      auto arr = Napi::Float64Array::New(env, c.numel());
      std::memcpy(arr.Data(), c.data_ptr<double>(), c.numel() * sizeof(double));
      grads.Set(name, arr);
    }
    out.Set("grads", grads);
    return out;
  };
  return AddonJob<R>::Start(env, info[1], work, convert);
}

}  // namespace lep_addon
