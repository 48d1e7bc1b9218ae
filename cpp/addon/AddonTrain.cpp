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
  // Every option arrives resolved (ts/train/trainOptions.ts holds the defaults): need_* fails on a missing
  // one. Only the optional inputs (evaluation data, checkpoints, resume, LoRA, data-parallel, rows) may
  // be absent, and absent means "none".
  lep::TrainConfig c;
  c.params = need_string(o, "params");
  c.data = need_string(o, "data");
  c.eval_data = get_string(o, "evalData", "");
  c.batch_size = need_number(o, "batchSize");
  c.grad_accum = need_number(o, "gradAccum");
  c.steps = need_number(o, "steps");
  c.lr = need_number(o, "lr");
  c.min_lr_ratio = need_number(o, "minLrRatio");
  c.embedding_lr = need_number(o, "embeddingLr");
  c.warmup_steps = need_number(o, "warmupSteps");
  c.adamw.beta1 = need_number(o, "beta1");
  c.adamw.beta2 = need_number(o, "beta2");
  c.adamw.eps = need_number(o, "eps");
  c.adamw.weight_decay = need_number(o, "weightDecay");
  c.clip = need_number(o, "clip");
  c.seed = need_number(o, "seed");
  c.eval_every = need_number(o, "evalEvery");
  c.eval_batches = need_number(o, "evalBatches");
  c.checkpoint_every = need_number(o, "checkpointEvery");
  c.checkpoint_dir = get_string(o, "checkpointDir", "");
  c.keep_checkpoints = need_number(o, "keepCheckpoints");
  c.resume_from = get_string(o, "resumeFrom", "");
  c.report_every = need_number(o, "reportEvery");
  c.activation_checkpointing = need_bool(o, "activationCheckpointing");
  if (o.Get("lora").IsObject()) {
    c.lora = lora_from_js(o.Get("lora").As<Napi::Object>());
    c.lora_seed = static_cast<uint64_t>(need_number(o.Get("lora").As<Napi::Object>(), "seed"));
  }
  if (o.Get("dist").IsObject()) {  // data-parallel: the rendezvous TS read from the environment
    Napi::Object d = o.Get("dist").As<Napi::Object>();
    c.dist.rank = need_number(d, "rank");
    c.dist.world_size = need_number(d, "worldSize");
    c.dist.master_addr = need_string(d, "masterAddr");
    c.dist.master_port = need_number(d, "masterPort");
    c.dist.timeout_s = need_number(d, "timeoutS");
    c.dist.grad_sync = need_string(d, "gradSync");
    c.dist.bucket_mb = need_number(d, "bucketMb");
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
    out.Set("blasThreads", r.blas_threads);
    out.Set("intraOpThreads", r.intra_op_threads);
    out.Set("products", r.products);
    out.Set("lossChunkRows", static_cast<double>(r.loss_chunk_rows));
    out.Set("headGradRows", static_cast<double>(r.head_grad_rows));
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
  using R = lep::LossAndGrads;
  auto convert = [](Napi::Env env, R& r) -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    out.Set("loss", r.loss);
    out.Set("products", r.products);
    out.Set("lossChunkRows", static_cast<double>(r.loss_chunk_rows));
    out.Set("headGradRows", static_cast<double>(r.head_grad_rows));
    Napi::Object grads = Napi::Object::New(env);
    for (const auto& [name, g] : r.grads) {
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
