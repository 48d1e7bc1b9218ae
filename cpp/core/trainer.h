// The training engine: causal-LM training of a LlamaModel over packed token blocks, with a parameter
// selection (all parameters, or only the input/output embeddings, optionally only given rows), AdamW,
// cosine schedule with warm-up, gradient clipping and accumulation, evaluation loss, atomic
// checkpoints and bit-exact resume (CPU, f32). One call = one training job.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/adamw.h"
#include "core/distributed.h"
#include "core/llama_model.h"
#include "core/lora.h"
#include "core/progress.h"

namespace lep {

struct TrainConfig {
  std::string params = "all";      // "all" | "embeddings" | "lora"
  std::vector<int64_t> rows;       // embeddings mode: only these rows train (empty = all rows)
  LoraConfig lora;                 // lora mode: adapters added from `lora_seed` unless the model has them
  uint64_t lora_seed = 0;
  std::string data;                // packed blocks: safetensors with "tokens" I32 (N, T+1) and optional "loss_mask" U8
  std::string eval_data;           // same layout; optional
  int64_t batch_size = 8;          // sequences per micro-batch
  int64_t grad_accum = 1;          // micro-batches per optimizer step
  int64_t steps = 100;             // optimizer steps in total
  double lr = 1e-4, min_lr_ratio = 0.0;
  // Peak learning rate of the input embeddings and the LM head (the same schedule, scaled by
  // embedding_lr / lr): lower than lr keeps an instruct model's embeddings near its base's. Resolved by
  // the caller (ts/train/trainOptions.ts: lr when unset).
  double embedding_lr = 1e-4;
  int64_t warmup_steps = 0;
  AdamWConfig adamw;
  double clip = 1.0;               // max global grad norm (0 = off)
  uint64_t seed = 0;               // data order
  int64_t eval_every = 0;          // 0 = only at the start and the end
  int64_t eval_batches = 0;        // 0 = the whole eval set
  int64_t checkpoint_every = 0;    // 0 = only when stopped early
  std::string checkpoint_dir;      // where step-N checkpoints go ("" = none)
  int64_t keep_checkpoints = 2;
  std::string resume_from;         // a checkpoint directory ("" = fresh)
  int64_t report_every = 1;
  bool activation_checkpointing = false;  // recompute layers in backward: less memory, ~1/3 more compute
  // Data-parallel: with world_size > 1 each rank trains on its part of every step's global batch of
  // batch_size x grad_accum x world_size blocks; the result equals one process with that batch.
  DistConfig dist;
};

struct TrainReport {
  int64_t steps_done = 0;
  double last_loss = 0;
  double last_eval_loss = -1;
  bool stopped_early = false;
  std::string last_checkpoint;
  // The compute threads the job ran with on the CPU: OpenBLAS's and libtorch's OpenMP pool's.
  int blas_threads = 0;
  int intra_op_threads = 0;
  // Where a float32 model's matrix products and loss softmax ran: "onednn" (lep calls oneDNN, onednn.h)
  // or "libtorch" (its BLAS; bf16/f16 products always go to libtorch's own oneDNN path).
  std::string products;
  // What each micro-batch computed of the LM head (lm_loss.h, LmLossResult): positions per loss chunk, and
  // the head rows given a gradient (the vocabulary; the trained rows with a row set; 0 for a frozen head).
  int64_t loss_chunk_rows = 0;
  int64_t head_grad_rows = 0;
};

// Trains `model` in place. Progress events: phase "train" (step, loss, lr, grad_norm, tokens,
// tokens_per_s) and "eval" (step, eval_loss). Returning false from progress stops at the step
// boundary after writing a checkpoint (when checkpoint_dir is set).
TrainReport train(LlamaModel& model, const TrainConfig& config, const ProgressFn& progress);

// Loss (mean over target tokens) and gradients of the trainable selection for one batch of blocks
// (B, T+1), computed as a training step would (same threads and products): used by gradient checks.
// "lora" uses the adapters the model has (and no modules to save).
struct LossAndGrads {
  double loss = 0;
  std::map<std::string, torch::Tensor> grads;  // by parameter name
  std::string products;                        // as TrainReport::products
  int64_t loss_chunk_rows = 0, head_grad_rows = 0;  // as TrainReport's
};
LossAndGrads loss_and_grads(LlamaModel& model, const torch::Tensor& blocks, const torch::Tensor& loss_mask,
                            const std::string& params);

}  // namespace lep
