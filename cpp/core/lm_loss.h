// Causal-LM loss with the LM head computed in row chunks: logits for all positions (B*T x V floats,
// gigabytes at LLaMa-3's 128k vocabulary) are never materialised at once. The head's gradient is
// computed by hand chunk by chunk (d logits = softmax - onehot), so autograd never stores logits either.
#pragma once
#include <torch/torch.h>

namespace lep {

struct LmLossResult {
  double loss_sum = 0;     // sum of token losses over masked positions (float64 accumulation)
  int64_t tokens = 0;      // positions counted
  torch::Tensor grad_hidden;  // (N, C) d(loss_sum * scale)/d hidden, when gradients were asked for
  torch::Tensor grad_head;    // (V, C) d(loss_sum * scale)/d W, when gradients were asked for; (k, C) for head_rows
};

// Which gradients lm_loss_chunked computes: the head's costs as much as the logits themselves (V·N·C
// multiply-adds), so a job whose head is frozen asks for the hidden states' gradient only.
enum class LmLossGrads { kNone, kHidden, kHiddenAndHead };

// hidden (N, C), head W (V, C), targets (N) int64, mask (N) bool or undefined (= all).
// With `grads`, also returns gradients of (loss_sum * grad_scale). chunk_rows 0 picks rows so that one
// (rows, V) float32 chunk stays under glibc's mmap threshold (32 MiB, set in runtime.cpp): freed chunks
// are then reused from the heap instead of mapped fresh and page-faulted in on every chunk of every step.
// `head_rows` (k) int64: the head's gradient only for these rows (rows-only training), in their order;
// that matmul then costs k·N·C instead of V·N·C. Undefined = every row.
LmLossResult lm_loss_chunked(const torch::Tensor& hidden, const torch::Tensor& head, const torch::Tensor& targets,
                             const torch::Tensor& mask, LmLossGrads grads, double grad_scale, int64_t chunk_rows = 0,
                             const torch::Tensor& head_rows = {});

}  // namespace lep
