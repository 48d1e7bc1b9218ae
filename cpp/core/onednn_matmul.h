// Float32 matrix products through oneDNN, for CPU training.
//
// Why: OpenBLAS (what libtorch's float32 matmul calls) runs the small products of a training step well
// below oneDNN's JIT (brgemm) kernels on AVX-512 CPUs, and runs a batched product as one BLAS call per
// matrix, each threaded on its own. On a 2-core AVX-512 Xeon, oneDNN 2.6 against OpenBLAS 0.3.21, both on
// 2 threads: the attention products (64 matrices of 256×32 · 32×128) 182-224 against 75-83 GFLOP/s,
// the MLP and projection products (2048×256 · 256×704 and the like) 225-275 against 185-237 GFLOP/s;
// the LM head's wide products were even, and so were ~1B and 8B layers' products, or a little slower
// (bench/README.md, "oneDNN for float32 training products").
// libtorch 1.13 and 2.6 send float32 products only to the BLAS, so lep calls the oneDNN library libtorch
// itself links (Debian's libdnnl) directly.
//
// oneDNN threads with the calling thread's OpenMP pool, so the trainer uses these only where a job gives
// that pool the threads (CPU training with short thread waits, runtime.h), and only on AVX-512 CPUs
// (onednn_fits_cpu); LEP_TRAIN_PRODUCTS=blas turns them off, =onednn forces them (trainer.cpp,
// TrainingThreads). Without
// oneDNN in the build (cmake -DLEP_ONEDNN=OFF) every function here falls back to libtorch's own product.
#pragma once
#include <torch/torch.h>

#include <string>

namespace lep {

// "oneDNN 2.6.3" when lep was built with oneDNN, else empty.
std::string onednn_version();
// Built with oneDNN and on a CPU with AVX-512 (F, BW, VL, DQ: oneDNN's avx512_core), where its edge over
// the BLAS was measured. On other CPUs (AVX2 only, for one) lep has not measured it, so the BLAS stays.
bool onednn_fits_cpu();

// out = a · b. a (…, M, K), b (…, K, N), out (…, M, N): float32 CPU tensors with the same leading dims,
// any strides (transposed views included). Returns false, having written nothing, when oneDNN is not
// built in or has no fast kernel for these operands; the caller then uses libtorch. Primitives are
// cached per shape, strides and thread count.
bool onednn_matmul_out(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& out);

// Differentiable products whose forward and backward run through onednn_matmul_out (libtorch where it
// declines): x (…, in) · wᵀ for w (out, in), giving w a gradient of w's own layout, in the BLAS when
// the layer is large (from about 4e9 multiply-adds a product, where oneDNN no longer won); and
// a (…, M, K) · b (…, K, N) for activations (attention scores and their weighted values).
torch::Tensor onednn_linear(const torch::Tensor& x, const torch::Tensor& w);
torch::Tensor onednn_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace lep
