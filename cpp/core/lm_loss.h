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
  // The work done, for reports and tests: positions per chunk (the logits never held for more at once),
  // and the head rows whose gradient was computed (V, k for head_rows, 0 without the head's gradient).
  int64_t chunk_rows = 0;
  int64_t head_grad_rows = 0;
};

// Which gradients lm_loss_chunked computes: the head's costs as much as the logits themselves (V·N·C
// multiply-adds), so a job whose head is frozen asks for the hidden states' gradient only.
enum class LmLossGrads { kNone, kHidden, kHiddenAndHead };

// Buffers lm_loss_chunked writes its chunks into, kept between calls: a training job holds one for its
// life, so the (rows, V) chunk is allocated and page-faulted in once per job rather than once per step
// (it is larger than glibc's mmap threshold, so a freed one would go back to the system). Made on
// first use and again when a call needs more rows or another dtype; CPU only (CUDA's caching allocator
// already reuses blocks). It stays allocated through the backward and the optimizer step.
struct LmLossWorkspace {
  torch::Tensor probs;    // (rows, V) float32 (float64): a chunk's logits, in place its probabilities, then d
  torch::Tensor reduced;  // (rows, V) bf16, for bf16 models: the chunk's logits, then d rounded for the products
};

// Rows per chunk when chunk_rows is 0: as many as fit in kLmLossChunkBytes of float32 (float64 for f64
// models), and no fewer than kLmLossMinChunkRows. Two costs pull apart. Each of the chunk's three
// products packs the whole head (V x C) afresh, so few rows spend the time packing rather than
// multiplying: at the small bench shape (C 256, V 32000, 2048 rows, f32, 2 threads, OpenBLAS) the loss
// took 515-525 ms in chunks of 196 rows, 472-485 in 392, 444-469 in 1024. And each pass over the chunk
// (the logits written, the softmax, d read by two products) goes out to memory, so a chunk that stays
// nearer the cores pays: with oneDNN's products and softmax, steps in chunks of 512 rows (the default
// is now 524 at V 32000) against 1048 (128 MiB) took 0.295-0.306 against 0.310-0.325 s at the toy
// shape (C 96), 0.88-0.93 against 0.92-0.93 at the small one, and in bf16 0.96x and 0.99-1.03x
// (bench/README.md, "oneDNN for the LM head"). At LLaMa-3's 128256 tokens 64 MiB would be 130 rows, too few for the
// packing, so the floor of 256 keeps float32 chunks there at about the 128 MiB they had (256 MiB in
// float64, which only tests use). Measured on the CPU; CUDA takes the same sizes (not measured there:
// twice the chunks at 32000 tokens than before 2026-12-05).
constexpr int64_t kLmLossChunkBytes = int64_t{64} << 20;
constexpr int64_t kLmLossMinChunkRows = 256;

// hidden (N, C), head W (V, C), targets (N) int64, mask (N) bool or undefined (= all).
// With `grads`, also returns gradients of (loss_sum * grad_scale). chunk_rows 0 picks rows as above.
// `ws` (CPU): buffers to reuse, or null for buffers of this call only. `onednn`: the job's choice (LlamaModel::onednn_products, runtime.h
// float32_products): the softmax, and the head's float32 products where onednn_product_pays, through
// oneDNN (onednn.h) wherever it takes the operands.
// `head_rows` (k) int64: the head's gradient only for these rows (rows-only training), in their order;
// that matmul then costs k·N·C instead of V·N·C. Undefined = every row.
LmLossResult lm_loss_chunked(const torch::Tensor& hidden, const torch::Tensor& head, const torch::Tensor& targets,
                             const torch::Tensor& mask, LmLossGrads grads, double grad_scale, int64_t chunk_rows = 0,
                             const torch::Tensor& head_rows = {}, LmLossWorkspace* ws = nullptr, bool onednn = false);

}  // namespace lep
