#include "core/runtime.h"

#include <dlfcn.h>
#include <execinfo.h>
#include <malloc.h>
#include <strings.h>
#include <ATen/Config.h>
#include <torch/torch.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <thread>

#include "core/cpu_allocator.h"
#include "core/device.h"
#include "core/error.h"
#include "core/onednn.h"

namespace lep {

namespace {

// OpenBLAS's thread setter, if libtorch resolved BLAS to OpenBLAS (looked up at run time: libtorch may
// be linked against another BLAS, or MKL in official builds).
using SetThreadsFn = void (*)(int);
SetThreadsFn openblas_setter() { return reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }

// Full path of the BLAS library mapped into this process (libtorch resolves it at load time).
std::string loaded_blas_path() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  for (const char* lib : {"libopenblas", "libmkl", "libblis", "libblas"}) {
    maps.clear();
    maps.seekg(0);
    while (std::getline(maps, line))
      if (line.find(lib) != std::string::npos && line.find('/') != std::string::npos) return line.substr(line.find('/'));
  }
  return "";
}

// An environment variable as a whole non-negative number; -1 when unset or not a plain number.
long long env_count(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return -1;
  char* end = nullptr;
  const long long n = std::strtoll(v, &end, 10);
  return *end == '\0' && n >= 0 ? n : -1;
}

bool env_is(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && strcasecmp(v, value) == 0;
}

std::string openblas_string(const char* fn) {
  using StringFn = char* (*)();
  auto f = reinterpret_cast<StringFn>(dlsym(RTLD_DEFAULT, fn));
  const char* s = f ? f() : nullptr;
  return s ? std::string(s) : std::string();
}

// max |C − C_ref| / (|op(A)|·|op(B)|) elementwise, C = op(A)·op(B) computed by libtorch (so by its BLAS) in
// `dtype`, C_ref by a plain float64 loop over the same (rounded) values.
double product_error(int64_t m, int64_t k, int64_t n, bool trans_a, bool trans_b, torch::ScalarType dtype) {
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(m * 1000003 + k * 1009 + n));
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // Stored transposed when the product reads the operand transposed, so BLAS sees 'T' for it.
  auto a_store = torch::randn(trans_a ? std::vector<int64_t>{k, m} : std::vector<int64_t>{m, k}, gen, f64).to(dtype);
  auto b_store = torch::randn(trans_b ? std::vector<int64_t>{n, k} : std::vector<int64_t>{k, n}, gen, f64).to(dtype);
  auto a_op = trans_a ? a_store.t() : a_store;  // (m, k)
  auto b_op = trans_b ? b_store.t() : b_store;  // (k, n)
  auto c = (n == 1 ? torch::mv(a_op, b_op.squeeze(1)).unsqueeze(1) : torch::mm(a_op, b_op)).to(torch::kFloat64).contiguous();
  auto a = a_op.to(torch::kFloat64).contiguous(), b = b_op.to(torch::kFloat64).contiguous();
  const double *pa = a.data_ptr<double>(), *pb = b.data_ptr<double>(), *pc = c.data_ptr<double>();
  double worst = 0;
  std::vector<double> ref(n), scale(n);
  for (int64_t i = 0; i < m; ++i) {
    std::fill(ref.begin(), ref.end(), 0.0);
    std::fill(scale.begin(), scale.end(), 0.0);
    for (int64_t p = 0; p < k; ++p) {
      const double x = pa[i * k + p];
      for (int64_t j = 0; j < n; ++j) ref[j] += x * pb[p * n + j], scale[j] += std::abs(x * pb[p * n + j]);
    }
    for (int64_t j = 0; j < n; ++j) {
      const double e = std::abs(pc[i * n + j] - ref[j]) / std::max(scale[j], 1e-300);
      if (!(e <= worst)) worst = std::isnan(e) ? INFINITY : e;  // NaN from a broken kernel counts as infinite
    }
  }
  return worst;
}

}  // namespace

BlasCheck blas_self_check() {
  BlasCheck check;
  for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
    // Sizes off the usual block sizes (edges) and big enough that OpenBLAS splits them over threads;
    // the transposed cases are the ones propagation (AᵀA) and training (X·Wᵀ) use; n = 1 is gemv.
    const double e = std::max({product_error(260, 300, 200, false, false, dtype), product_error(200, 260, 150, true, false, dtype),
                               product_error(67, 129, 45, false, true, dtype), product_error(1000, 300, 1, false, false, dtype)});
    (dtype == torch::kFloat32 ? check.f32_error : check.f64_error) = e;
  }
  return check;
}

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.torch_version = TORCH_VERSION;
  info.blas_path = loaded_blas_path();
  info.blas = info.blas_path.empty() ? "unknown" : info.blas_path.substr(info.blas_path.rfind('/') + 1);
  info.blas_core = openblas_string("openblas_get_corename");
  info.blas_config = openblas_string("openblas_get_config");
  info.blas_threads = blas_threads();
  info.intra_op_threads = at::get_num_threads();
  info.inter_op_threads = at::get_num_interop_threads();
  info.training_shares_pools = training_shares_pools();
  info.onednn = onednn_version();
  info.onednn_fits_cpu = onednn_fits_cpu();
  info.f32_products = float32_products().reason;
  info.weights = weight_mapping();
  info.allocator = cpu_allocator_description();
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  info.cuda_version = libtorch_cuda_version();
  info.parallel_info = at::get_parallel_info();
  return info;
}

void require_cpu_bf16_products() {
  static const std::string failure = [] {
    try {
      torch::NoGradGuard no_grad;
      const auto a = torch::ones({64, 64}, torch::kBFloat16);
      (void)torch::matmul(a, a);
      return std::string();
    } catch (const std::exception& e) {
      const std::string what = e.what();
      return what.substr(0, what.find('\n'));
    }
  }();
  if (failure.empty()) return;
  const char* cap = std::getenv("ONEDNN_MAX_CPU_ISA");
  if (!cap) cap = std::getenv("DNNL_MAX_CPU_ISA");
  throw Error("LEP_BAD_DTYPE", "bfloat16 products fail on this CPU (" + failure + ")" +
                                   (cap ? std::string("; ONEDNN_MAX_CPU_ISA=") + cap + " holds oneDNN below the AVX-512 kernels libtorch sends them to" : "") +
                                   "\nHINT: " + (cap ? "unset ONEDNN_MAX_CPU_ISA (or set AVX512_CORE or higher), or " : "") +
                                   "use --dtype f32 on the CPU");
}

bool map_weights() {
  const char* env = std::getenv("LEP_MMAP");
  const std::string v = env ? env : "";
  if (v.empty() || v == "1") return true;
  if (v == "0") return false;
  throw Error("LEP_BAD_ARGUMENT", "LEP_MMAP is '" + v + "'; it must be 1 (the default: weights stay in the mmap'ed checkpoint) or 0 (copied into memory)\n"
              "HINT: unset LEP_MMAP, or set it to 0 where the checkpoint may change under a loaded model (a file rewritten in place, a flaky network filesystem).");
}

std::string weight_mapping() {
  const char* env = std::getenv("LEP_MMAP");
  const std::string set = env ? " (LEP_MMAP=" + std::string(env) + ")" : " (LEP_MMAP unset)";
  try {
    return map_weights() ? "mapped: a CPU model's weights stored in its dtype stay in the checkpoint's pages" + set + "; LEP_MMAP=0 copies them"
                         : "copied into memory" + set + "; unset LEP_MMAP to map them";
  } catch (const Error&) {
    return "LEP_MMAP='" + std::string(env) + "' is refused by every model load: set it to 1 or 0, or unset it";
  }
}

Float32Products float32_products() {
  const char* env = std::getenv("LEP_F32_PRODUCTS");
  const std::string want = env ? env : "", built = onednn_version();
  Float32Products p;
  if (!want.empty() && want != "onednn" && want != "blas") {
    p.error = "LEP_F32_PRODUCTS is '" + want + "'; it must be onednn or blas\n"
              "HINT: unset LEP_F32_PRODUCTS to let lep choose (oneDNN where it has the threads).";
    p.reason = "refused: LEP_F32_PRODUCTS is '" + want + "' (jobs on a model fail; onednn or blas)";
  } else if (want == "onednn" && built.empty()) {
    p.error = "LEP_F32_PRODUCTS is 'onednn' but this build of lep has no oneDNN\n"
              "HINT: unset LEP_F32_PRODUCTS, or rebuild with libdnnl-dev installed (lep build).";
    p.reason = "refused: LEP_F32_PRODUCTS=onednn, but this addon was built without oneDNN";
  } else if (built.empty()) {
    p.reason = "the BLAS: this addon was built without oneDNN (cmake -DLEP_ONEDNN=OFF)";
  } else if (want == "blas") {
    p.reason = "the BLAS: LEP_F32_PRODUCTS=blas (" + built + " is built in)";
  } else if (want == "onednn") {
    p.onednn = true;
    p.reason = built + ": LEP_F32_PRODUCTS=onednn";
  } else if (!onednn_fits_cpu()) {
    p.reason = "the BLAS: " + built + " has no AVX2 kernels for this CPU, and its edge over the BLAS was measured with AVX2 and AVX-512";
  } else if (!training_shares_pools()) {
    p.reason = "the BLAS: thread waits are long, so libtorch's pool (which " + built + " threads with) keeps 1 thread";
  } else {
    p.onednn = true;
    p.reason = built + " (faster than the BLAS with AVX2 and AVX-512 kernels; LEP_F32_PRODUCTS=blas for the BLAS)";
  }
  return p;
}

namespace {
std::atomic<int> g_threads{0};
}

int default_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

void set_threads(int n) {
  if (n <= 0) n = default_threads();
  g_threads = n;
  apply_threads();
}

int blas_threads() {
  using GetThreadsFn = int (*)();
  auto get = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? get() : 0;
}

namespace {

// The file a symbol resolves to in this process ("" when it does not).
std::string library_of(const char* symbol) {
  Dl_info where{};
  void* p = dlsym(RTLD_DEFAULT, symbol);
  return p && dladdr(p, &where) && where.dli_fname ? where.dli_fname : "";
}

// See training_shares_pools(). Decided from the variables as they were when the libraries read them.
bool decide_training_shares_pools() {
  if (!openblas_setter()) return true;  // one pool does all the work: nothing spins against it
  // OpenBLAS's own workers (pthreads builds; 0 = sequential, 2 = OpenMP: libgomp's spin governs them):
  // OPENBLAS_THREAD_TIMEOUT 1-20 is 2^4-2^20 cycles (below 4 counts as 4); 0 or unset, its default 2^28.
  using ParallelFn = int (*)();
  auto parallel = reinterpret_cast<ParallelFn>(dlsym(RTLD_DEFAULT, "openblas_get_parallel"));
  const long long timeout = env_count("OPENBLAS_THREAD_TIMEOUT");
  if ((!parallel || parallel() == 1) && (timeout < 1 || timeout > 20)) return false;
  // libtorch's OpenMP runtime must be libgomp (LLVM's and Intel's read KMP_BLOCKTIME instead). There
  // GOMP_SPINCOUNT wins over OMP_WAIT_POLICY (passive: no spin; unset: 300000; active: about forever).
  // 30000 spins is the most measured (bench/README.md, "Thread waits"; libgomp counts ~100000 a ms).
  if (library_of("omp_get_max_threads").find("libgomp") == std::string::npos) return false;
  const long long spins = env_count("GOMP_SPINCOUNT");
  return spins >= 0 ? spins <= 30000 : std::getenv("GOMP_SPINCOUNT") == nullptr && env_is("OMP_WAIT_POLICY", "passive");
}

// Evaluated when lep.node loads, just after OpenBLAS and libgomp read the same variables: a later change
// to the environment (a script setting process.env for a child) does not reach the libraries, so it must
// not reach this answer either.
const bool g_training_shares_pools = decide_training_shares_pools();

}  // namespace

bool training_shares_pools() { return g_training_shares_pools; }

namespace {
// The calling thread's OpenMP pool size. at::set_num_threads also rebuilds libtorch's pthreadpool (used
// only by XNNPACK/QNNPACK ops, which lep never runs), whose fresh workers spin for about 0.1 s on the
// cores the job needs, and clears libtorch's cache of oneDNN primitives. Called at every job start and
// change of pool (compute_threads.h), that cost 10 % of scoring's CPU time (bench/README.md, "Threads and
// products of inference"). Where ATen threads with OpenMP, its parallel ops and oneDNN read the calling
// thread's OpenMP count, so lep sets only that; elsewhere (a TBB or native-pool libtorch) libtorch's own.
// What lep gives up: after setThreads changes n within a process, a bf16 product libtorch cached in its
// ideep cache may keep running with the old count (a speed matter; oneDNN's own cache keys on threads).
void set_pool_threads(int n) {
#if AT_PARALLEL_OPENMP
  static const auto omp_set = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  if (omp_set) {
    if (at::get_num_threads() != n) omp_set(n);
    return;
  }
#endif
  if (at::get_num_threads() != n) at::set_num_threads(n);
}
}  // namespace

void apply_threads(ThreadPool pool) {
  int n = g_threads.load();
  if (n <= 0) n = default_threads();
  // kBlas: OpenBLAS does the heavy matmuls with n threads and libtorch's OpenMP pool stays at 1. kOpenMp:
  // element-wise work and oneDNN's products use the OpenMP pool, for the work compute_threads.h says.
  // libtorch keeps one process-wide count besides each thread's own and copies it into a thread's at that
  // thread's first parallel op: asking first pins this thread's count, so a job starting on another thread
  // cannot change it (a training job had otherwise run with the pool size the next job set).
  at::get_num_threads();
  auto setter = openblas_setter();
  if (setter) setter(n);
  set_pool_threads(setter && pool == ThreadPool::kBlas ? 1 : n);
}

void tune_allocator() {
  // Freed blocks below the mmap threshold stay in glibc's heap and are reused: page faults on fresh
  // memory ran at 0.25 GB/s here against 34 GB/s for touched memory (docs/architecture.md). 32 MiB is the
  // largest mmap threshold glibc accepts on 64-bit; the trim threshold keeps the heap from shrinking.
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kReusedBelow));
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  // Jobs run on their own threads, whose memory comes from glibc's per-thread arenas: heaps of at most
  // 64 MiB, and a heap left wholly free is unmapped whatever the trim threshold, unless the top pad says
  // to keep that much. A training step's (rows x vocabulary) chunks and (V x C) gradients (25-33 MB each)
  // filled and emptied such heaps, so from step to step they were mapped afresh and faulted in: 36k-150k
  // page faults a step at the small bench shape, none from step to step with this pad (bench/README.md,
  // "Page faults"). What is kept is given back when the last running job ends (release_free_memory),
  // except each thread arena's top, up to this pad, which stays for the next job.
  mallopt(M_TOP_PAD, 64 << 20);
}

void release_free_memory() { malloc_trim(0); }

void load_unwinder() {
  void* frame[1];
  backtrace(frame, 1);  // loads libgcc_s through glibc's unwind link, which keeps it for every later unwind
}

}  // namespace lep
