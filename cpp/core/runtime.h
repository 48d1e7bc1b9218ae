// Facts about the native runtime (versions, BLAS, threads, devices) and thread settings.
#pragma once
#include <string>

namespace lep {

struct RuntimeInfo {
  std::string torch_version;
  std::string blas;  // BLAS library libtorch resolved to at run time (file name)
  std::string blas_path;    // its full path (empty if not found)
  std::string blas_core;    // OpenBLAS's kernel set in use (openblas_get_corename), empty for other BLAS
  std::string blas_config;  // OpenBLAS's build line (openblas_get_config), empty for other BLAS
  int blas_threads = 0;
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  bool training_shares_pools = false;  // see training_shares_pools()
  std::string onednn;                  // "oneDNN 2.6.3" when built to call oneDNN itself (onednn.h), else empty
  bool onednn_fits_cpu = false;        // see onednn_fits_cpu()
  std::string f32_products;            // float32_products().reason, for lep info
  std::string weights;                 // weight_mapping(), for lep info
  std::string allocator;               // cpu_allocator_description(), for lep info
  bool cuda_available = false;
  int cuda_devices = 0;
  std::string cuda_version;            // libtorch_cuda_version() (device.h): "" without CUDA
  std::string parallel_info;
};

RuntimeInfo runtime_info();

// Worst error of the BLAS in use on a few matrix products (f32 and f64, plain and transposed operands,
// sizes off the kernels' block sizes, large enough to run threaded) against a float64 reference, each
// relative to the bound scale Σ|a||b|. A correct kernel stays near k·eps (about 1e-6 for f32 here); a
// broken one is off by O(1) or gives NaN. Used to validate a BLAS core before lep adopts it.
struct BlasCheck {
  double f32_error = 0, f64_error = 0;
};
BlasCheck blas_self_check();
// Intra-op threads for libtorch and OpenBLAS together (never both pools at full size while their idle
// workers spin for long: oversubscription made steps 5-9x slower on 2 cores; see apply_threads for the
// exceptions). n <= 0 picks the default (number of cores).
void set_threads(int n);
// Whether libtorch's OpenMP pool may get the threads beside OpenBLAS's where the BLAS still runs some
// products: in a CPU training job of any dtype, and for a float32 model's products of several rows in
// oneDNN (compute_threads.h).
// True when the BLAS is not OpenBLAS (one pool), or when idle workers of both stop spinning within about
// a third of a millisecond, so the pools do not take the cores from each other: OPENBLAS_THREAD_TIMEOUT
// at most 20 (ts/binding/threadWaits.ts sets 20: the two numbers go together) and libgomp's
// GOMP_SPINCOUNT at most 30000 (or OMP_WAIT_POLICY=passive). The libraries read these when they load;
// this answer is taken then too.
bool training_shares_pools();
// What runs a float32 model's products on the CPU in training and in products of several rows (prompts,
// scoring, batched decoding; compute_threads.h), with the training loss's softmax, and why: oneDNN
// (onednn.h) when lep is built with it, oneDNN runs AVX2 or AVX-512 kernels here (onednn_fits_cpu: where
// its edge over the BLAS was measured) and thread waits are short enough for libtorch's pool to get the threads
// (training_shares_pools: oneDNN threads with that pool); otherwise the BLAS and libtorch.
// LEP_F32_PRODUCTS=onednn forces oneDNN (in a build with it, on any CPU), =blas keeps the BLAS. Read afresh at each call: jobs (compute_threads.cpp)
// and `lep info` both ask here, so what info says is what a job started now does.
struct Float32Products {
  bool onednn = false;
  std::string reason;  // one line, as `lep info` prints it ("f32 products")
  std::string error;   // a LEP_F32_PRODUCTS value a job refuses (LEP_BAD_ARGUMENT, with a hint); else empty
};
Float32Products float32_products();
// Whether a CPU model's weights that are stored in its compute dtype stay in their mmap'ed checkpoint
// (llama_model.cpp, load_weights) instead of being copied: LEP_MMAP=0 copies them, as llama.cpp's
// --no-mmap does. Throws LEP_BAD_ARGUMENT for another value. Read at each load.
bool map_weights();
// map_weights() as one line for `lep info` ("weights"): what a CPU load does now and why, or what is
// wrong with LEP_MMAP (info reports a bad value instead of throwing; a load throws).
std::string weight_mapping();
// Throws LEP_BAD_DTYPE, with a hint, when a bfloat16 product fails on this CPU: libtorch 1.13 sends bf16
// matmuls to oneDNN by the CPU's own flags (AVX-512), so oneDNN held below AVX-512 by ONEDNN_MAX_CPU_ISA
// has no kernel for them and every product of a bf16 model would fail with oneDNN's bare "could not
// create a primitive descriptor iterator". Probed once per process (a 64 x 64 product); a CPU bf16
// model asks at each forward pass.
void require_cpu_bf16_products();
// OpenBLAS's thread count (process-wide); 0 when the BLAS is not OpenBLAS.
int blas_threads();
// Which pool gets the threads. OpenBLAS runs float32/float64 matmuls; oneDNN runs bf16/f16 ones (on AMX
// or AVX-512 BF16 where the CPU has them) and threads with libtorch's OpenMP pool, as do element-wise ops.
// Which one each kind of work uses: compute_threads.h (CPU training of float32 models, for one, uses
// kOpenMp when training_shares_pools(): its loss softmax, norms and AdamW then run on every core too).
enum class ThreadPool { kBlas, kOpenMp };
// Re-applies the thread setting on the calling thread; every job thread calls this first. OpenBLAS always
// gets n threads. The OpenMP pool (whose thread count is per calling thread) gets 1 with kBlas, so the two
// pools never spin against each other on the same cores, and n with kOpenMp (see above). OpenBLAS keeps n
// then too: its count is process-wide, and a float32 job running beside this one would otherwise sum in
// another order (and lose its bit-identical resume).
void apply_threads(ThreadPool pool = ThreadPool::kBlas);
// The calling thread's OpenMP pool gets the threads (kOpenMp) until the end of the scope.
class ScopedThreadPool {
 public:
  explicit ScopedThreadPool(ThreadPool pool) : pool_(pool) { apply_threads(pool_); }
  ~ScopedThreadPool() { if (pool_ != ThreadPool::kBlas) apply_threads(ThreadPool::kBlas); }
  ScopedThreadPool(const ScopedThreadPool&) = delete;
  ScopedThreadPool& operator=(const ScopedThreadPool&) = delete;

 private:
  ThreadPool pool_;
};
// Raises glibc's mmap/trim thresholds and top pad so big tensors freed in a loop are reused, not returned
// to the OS and faulted in again.
void tune_allocator();
// Makes glibc load libgcc_s's unwinder now, while memory is there. glibc loads it at the first exception
// unwound through C frames (oneDNN's) or the first backtrace (every c10::Error takes one); under an address
// space limit (ulimit -v) that first load met the exhausted memory, and glibc aborted the process
// ("libgcc_s.so.1 must be installed for unwinding to work") instead of the bad_alloc reaching lep's handler.
void load_unwinder();
// Gives the OS back the pages of freed memory that tune_allocator keeps (glibc's malloc_trim: the free
// chunks of every arena and the main heap's top; a thread arena's top, up to the 64 MiB pad, stays).
// Called when the last running job ends, so a long-lived process does not hold a finished job's peak.
void release_free_memory();

}  // namespace lep
