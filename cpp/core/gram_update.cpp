#include "core/gram_update.h"

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace lep {

namespace {

// Row-block height of the blocked path: 16 blocks at d = 4096 do 53% of the full product's work on G, and
// each gemm (256 × c × ≥ 256) is still large enough to run at the kernel's speed.
constexpr int64_t kGramBlock = 256;

// Fortran BLAS dsyrk (LP64, as Debian's libblas.so.3 and libopenblas.so.0 are); the trailing string
// lengths are what gfortran-built BLAS expect and C-built ones ignore.
using DsyrkFn = void (*)(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
                         const int* lda, const double* beta, double* c, const int* ldc, size_t uplo_len, size_t trans_len);

DsyrkFn dsyrk = nullptr;

void call_dsyrk(DsyrkFn fn, torch::Tensor& g, const torch::Tensor& a) {
  // Row-major G (d, d) is column-major Gᵀ, so its upper triangle is the column-major lower one; row-major
  // A (c, d) with row stride lda is column-major X = Aᵀ (d, c). dsyrk('L', 'N') adds X·Xᵀ = AᵀA there.
  const int n = static_cast<int>(a.size(1)), k = static_cast<int>(a.size(0));
  const int lda = static_cast<int>(a.stride(0)), ldc = static_cast<int>(g.stride(0));
  const double one = 1.0;
  fn("L", "N", &n, &k, &one, a.data_ptr<double>(), &lda, &one, g.data_ptr<double>(), &ldc, 1, 1);
}

// The dsyrk_ of a BLAS already in the process, if it computes the same upper triangle as addmm on a small
// matrix (odd sizes, so edge kernels run too) and leaves the lower one alone.
DsyrkFn find_dsyrk() {
  DsyrkFn fn = nullptr;
  for (const char* lib : {"libblas.so.3", "libopenblas.so.0", "libopenblas.so", "libblas.so"}) {
    if (void* h = ::dlopen(lib, RTLD_LAZY | RTLD_NOLOAD)) {  // NOLOAD: only a library libtorch already brought in
      fn = reinterpret_cast<DsyrkFn>(::dlsym(h, "dsyrk_"));
      ::dlclose(h);  // drops the reference NOLOAD took; the library stays loaded
      if (fn) break;
    }
  }
  if (!fn) return nullptr;
  // Deterministic values, not the global generator: a user's seed must not depend on this check.
  auto a = torch::sin(torch::arange(301 * 67, torch::kFloat64) * 0.37).reshape({301, 67});
  auto g = torch::zeros({67, 67}, torch::kFloat64);
  call_dsyrk(fn, g, a);
  auto ref = torch::mm(a.t(), a);
  const double scale = ref.abs().max().item<double>();
  const bool upper_ok = (g.triu() - ref.triu()).abs().max().item<double>() <= 1e-12 * scale;
  const bool lower_kept = g.tril(-1).abs().max().item<double>() == 0;
  return upper_ok && lower_kept ? fn : nullptr;
}

bool syrk_available() {
  static std::once_flag once;
  std::call_once(once, [] { dsyrk = find_dsyrk(); });
  return dsyrk != nullptr;
}

}  // namespace

const char* gram_path_name(GramPath p) {
  switch (p) {
    case GramPath::kSyrk: return "syrk";
    case GramPath::kBlocked: return "blocked";
    case GramPath::kFull: return "full";
  }
  return "?";
}

GramPath choose_gram_path(const torch::Device& device) {
  const bool syrk = device.is_cpu() && syrk_available();
  const char* env = std::getenv("LEP_PROPAGATE_GRAM");
  const std::string want = env ? env : "";
  if (want.empty() || want == "syrk") return syrk ? GramPath::kSyrk : GramPath::kBlocked;
  if (want == "blocked") return GramPath::kBlocked;
  if (want == "full") return GramPath::kFull;
  throw Error("LEP_BAD_ARGUMENT", "LEP_PROPAGATE_GRAM is '" + want + "'; it must be syrk, blocked or full\nHINT: unset LEP_PROPAGATE_GRAM to use the fastest path.");
}

GramPath gram_update(GramPath path, torch::Tensor& g, const torch::Tensor& a) {
  const int64_t d = a.size(1);
  if (a.size(0) == 0) return path;
  const bool syrk_fits = a.is_cpu() && g.is_cpu() && a.stride(1) == 1 && g.is_contiguous() && d <= INT_MAX && a.size(0) <= INT_MAX &&
                         a.stride(0) <= INT_MAX && a.stride(0) >= std::max<int64_t>(1, d);
  if (path == GramPath::kSyrk && syrk_fits && syrk_available()) {
    call_dsyrk(dsyrk, g, a);
    return GramPath::kSyrk;
  }
  if (path == GramPath::kFull) {
    g.addmm_(a.t(), a);
    return GramPath::kFull;
  }
  // Row block [i0, i1) of G from column i0 on: A[:, i0:i1]ᵀ · A[:, i0:]. The blocks left of the diagonal
  // are G's lower triangle, never computed.
  for (int64_t i0 = 0; i0 < d; i0 += kGramBlock) {
    const int64_t i1 = std::min(d, i0 + kGramBlock);
    g.slice(0, i0, i1).slice(1, i0).addmm_(a.slice(1, i0, i1).t(), a.slice(1, i0));
  }
  return GramPath::kBlocked;
}

}  // namespace lep
