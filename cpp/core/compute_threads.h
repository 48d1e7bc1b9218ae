// Which threads and which products a job on a model uses, for each kind of work in the job.
//
// Why: libtorch's OpenMP pool and OpenBLAS's pool must not both hold the cores while their idle workers
// spin (runtime.h, apply_threads), and which one should get the threads depends on what does the work.
// OpenBLAS runs libtorch's float32 products; oneDNN runs bf16/f16 products (libtorch's own path) and,
// where float32_products() says so, lep's float32 ones (onednn.h); both oneDNN and the element-wise work
// run in the OpenMP pool. Measured on 2 AVX-512/AMX cores (bench/README.md, "Threads and products of
// inference"):
// - training: the OpenMP pool, for bf16/f16 always and for float32 where thread waits are short
//   (training_shares_pools), with oneDNN's float32 products where float32_products() chooses them;
// - products of several rows (a prompt, a scored sequence, a decoding step of a batch): for a bf16/f16
//   model the OpenMP pool (prompts 1.0-1.4x, batched decoding 1.4x the speed with the BLAS pool); for a
//   float32 model oneDNN's products and LM head in the OpenMP pool where float32_products() chooses them
//   (prompts 1.1-1.3x, batched decoding 1.5x), else the BLAS and its pool (the OpenMP pool beside the
//   BLAS's products made scoring 13-17 % and prompts 23 % slower);
// - one row (a decoding step of one sequence): for bf16/f16 the OpenMP pool (1.4-1.6x); for float32 the
//   BLAS's matrix-vector products and its pool (the OpenMP pool with oneDNN's attention products: 0.7-0.9x).
// Off the CPU, libtorch's device kernels do everything and the BLAS pool is kept.
#pragma once
#include <string>

#include "core/llama_model.h"
#include "core/runtime.h"

namespace lep {

enum class Work { kTraining, kRows, kOneRow };

// Held for a stretch of work on the calling thread: gives the work's pool the threads and sets the model's
// products (LlamaModel::set_onednn_products); both go back at the end of the scope. Scopes do not nest.
// Throws LEP_BAD_ARGUMENT for an LEP_F32_PRODUCTS value that float32_products() refuses.
class ComputeThreads {
 public:
  ComputeThreads(LlamaModel& model, Work work);
  ~ComputeThreads() { model_.set_onednn_products(before_); }
  Work work() const { return work_; }
  // "onednn" or "libtorch": what runs the model's float32 products in this work.
  std::string products() const { return onednn_ ? "onednn" : "libtorch"; }
  ComputeThreads(const ComputeThreads&) = delete;
  ComputeThreads& operator=(const ComputeThreads&) = delete;

 private:
  LlamaModel& model_;
  Work work_;
  bool before_;
  bool onednn_;
  ScopedThreadPool pool_;
};

}  // namespace lep
