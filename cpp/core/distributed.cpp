#include "core/distributed.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>
#include <torch/version.h>

// Gloo needs libtorch built with it (USE_C10D_GLOO, set by libtorch's CMake targets) and gloo's headers
// (Debian: libgloo-dev). Without them lep still builds; joining a group then fails with a message.
#if defined(USE_C10D_GLOO) && __has_include(<gloo/context.h>)
#define LEP_HAVE_GLOO 1
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
// NCCL for CUDA models: libtorch built with it and NCCL's header where the compiler finds it (the
// rendezvous store comes with the Gloo headers above).
#if defined(LEP_HAVE_GLOO) && defined(USE_C10D_NCCL) && __has_include(<nccl.h>)
#define LEP_HAVE_NCCL 1
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <sstream>

#include "core/error.h"
#include "core/fork_gate.h"

namespace lep {

namespace {

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string seconds(double s) {
  std::ostringstream o;
  o << s << " s";
  return o.str();
}

// Gloo and the TCPStore say "Timed out ..." / "timeout" when a peer did not answer in time.
bool says_timeout(const std::string& m) { return m.find("imed out") != std::string::npos || m.find("imeout") != std::string::npos; }

}  // namespace

// The store and the process group, with the backend's type erased: ProcessGroupGloo and
// ProcessGroupNCCL derive from c10d::ProcessGroup in libtorch 1.13 and from c10d::Backend in 2.x, but
// both have the same allreduce signature.
struct DataParallel::Group {
  c10::intrusive_ptr<c10d::Store> store;
  std::function<c10::intrusive_ptr<c10d::Work>(std::vector<at::Tensor>&, const c10d::AllreduceOptions&)> allreduce;
  DistConfig config;

  c10::intrusive_ptr<c10d::Work> start(std::vector<at::Tensor>& tensors, c10d::ReduceOp op, const std::string& what) {
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    try {
      return allreduce(tensors, o);
    } catch (const std::exception& e) {
      fail(e, what);
    }
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
    ForkSafeRegion waiting;  // waiting on other ranks: no BLAS call, and it may be long
    try {
      work->wait(std::chrono::milliseconds(static_cast<int64_t>(config.timeout_s * 1000)));
    } catch (const std::exception& e) {
      fail(e, what);
    }
  }

  // What the user sees on the surviving ranks when another one died or hangs.
  [[noreturn]] void fail(const std::exception& e, const std::string& what) const {
    const std::string m = e.what();
    const bool timeout = says_timeout(m);
    const std::string me = "rank " + std::to_string(config.rank) + " of " + std::to_string(config.world_size);
    if (timeout)
      throw Error("LEP_DIST_TIMEOUT", me + ": the other ranks did not answer within " + seconds(config.timeout_s) + " during " + what +
                                          " (one may have crashed or hung); stopping.\n(" + first_line(m) +
                                          ")\nHINT: restart all ranks to resume from the last checkpoint; raise --dist-timeout if a rank is only slow (a long checkpoint write or evaluation).");
    throw Error("LEP_DIST_PEER_LOST", me + ": lost contact with another rank during " + what +
                                          " (it probably crashed or was killed); stopping.\n(" + first_line(m) +
                                          ")\nHINT: restart all ranks to resume from the last checkpoint.");
  }
};

namespace {

#ifdef LEP_HAVE_GLOO
// libtorch 2.4+ has TCPStoreOptions::useLibUV and defaults it to true, but builds without libuv (Debian's)
// then refuse to create any store ("use_libuv was requested but PyTorch was build without libuv
// support"). The classic socket store exists in every version; 1.13 has no such field. The int/long
// overloads pick the first one where `o.useLibUV` compiles.
template <typename Options>
auto without_libuv(Options& o, int) -> decltype(o.useLibUV = false, void()) {
  o.useLibUV = false;
}
template <typename Options>
void without_libuv(Options&, long) {}

// Why joining failed. A timeout means ranks are missing; anything earlier has its own cause (port taken,
// unknown host, a libtorch refusing the store) and must not be reported as missing ranks. `store`: the
// TCPStore could not be made (else the process group: with libtorch 1.13 a lonely rank 0 gets its store
// and times out here).
[[noreturn]] void join_failed(const DistConfig& c, const std::exception& e, double waited_s, bool store) {
  const std::string m = first_line(e.what());
  const std::string where = c.master_addr + ":" + std::to_string(c.master_port);
  const std::string me = "rank " + std::to_string(c.rank);
  const bool timeout = says_timeout(m) || waited_s >= c.timeout_s;
  if (timeout && (c.rank == 0 || !store))
    throw Error("LEP_DIST_RENDEZVOUS", me + ": not all " + std::to_string(c.world_size) + " ranks joined the rendezvous at " + where + " within " +
                                           seconds(c.timeout_s) + " (" + m +
                                           ")\nHINT: start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE.");
  if (timeout)
    throw Error("LEP_DIST_RENDEZVOUS", me + ": cannot reach rank 0's rendezvous at " + where + " within " + seconds(c.timeout_s) + " (" + m +
                                           ")\nHINT: rank 0 must be running; MASTER_ADDR must be its address as seen from this host.");
  if (!store)
    throw Error("LEP_DIST_RENDEZVOUS", me + ": connecting the " + std::to_string(c.world_size) + " ranks failed (" + m +
                                           ")\nHINT: set GLOO_SOCKET_IFNAME to the network interface the ranks share.");
  if (c.rank == 0)
    throw Error("LEP_DIST_RENDEZVOUS", me + ": cannot open the rendezvous at " + where + ": " + m +
                                           "\nHINT: check that the port is free on this host (or choose another MASTER_PORT) and that MASTER_ADDR is this host's address.");
  throw Error("LEP_DIST_RENDEZVOUS", me + ": cannot reach rank 0's rendezvous at " + where + ": " + m +
                                         "\nHINT: MASTER_ADDR must be rank 0's address as seen from this host.");
}

std::shared_ptr<::gloo::transport::Device> gloo_device(const DistConfig& c) {
  // GLOO_SOCKET_IFNAME chooses the interface as it does for torch.distributed; a loopback rendezvous
  // means all ranks are on this machine, so talk over loopback too (the hostname may resolve to an
  // address other ranks cannot reach, e.g. in containers).
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    std::string first = ifname;
    first = first.substr(0, first.find(','));
    return c10d::ProcessGroupGloo::createDeviceForInterface(first);
  }
  if (c.master_addr == "127.0.0.1" || c.master_addr == "localhost" || c.master_addr == "::1")
    return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

std::shared_ptr<DataParallel::Group> make_group(const DistConfig& c, torch::Device device) {
  auto g = std::make_shared<DataParallel::Group>();
  g->config = c;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000));
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(c.master_port);
  so.isServer = c.rank == 0;
  so.numWorkers = static_cast<size_t>(c.world_size);
  so.waitWorkers = true;
  so.timeout = timeout;
  without_libuv(so, 0);
  auto t0 = std::chrono::steady_clock::now();
  const auto waited = [&t0] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  ForkSafeRegion joining;  // waiting for the other ranks to join: no BLAS call, and it may be long
  try {
    g->store = c10::make_intrusive<c10d::TCPStore>(c.master_addr, so);
  } catch (const std::exception& e) {
    join_failed(c, e, waited(), true);
  }
  t0 = std::chrono::steady_clock::now();
  try {
#ifdef LEP_HAVE_NCCL
    if (device.is_cuda()) {
      // Blocking waits: prepare_distributed_env, at load.
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = timeout;
      auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, static_cast<int>(c.rank), static_cast<int>(c.world_size), o);
      g->allreduce = [pg](std::vector<at::Tensor>& t, const c10d::AllreduceOptions& ao) { return pg->allreduce(t, ao); };
      return g;
    }
#endif
    auto o = c10d::ProcessGroupGloo::Options::create(timeout);
    o->devices.push_back(gloo_device(c));
    o->threads = 2;
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, static_cast<int>(c.rank), static_cast<int>(c.world_size), o);
    g->allreduce = [pg](std::vector<at::Tensor>& t, const c10d::AllreduceOptions& ao) { return pg->allreduce(t, ao); };
  } catch (const std::exception& e) {
    join_failed(c, e, waited(), false);
  }
  return g;
}
#else
std::shared_ptr<DataParallel::Group> make_group(const DistConfig&, torch::Device) {
  throw Error("LEP_DIST_UNAVAILABLE", "this build of lep has no c10d Gloo backend, so it cannot train on several processes\nHINT: build against a libtorch with distributed support and gloo's headers (Debian: apt-get install libgloo-dev), then rebuild lep.");
}
#endif

}  // namespace

void prepare_distributed_env() {
#ifdef LEP_HAVE_NCCL
  // NCCL's blocking waits, so that Work::wait(timeout) returns only when the collective is done and throws
  // when it times out (LEP_DIST_TIMEOUT, LEP_DIST_PEER_LOST); without them a wait only orders the GPU
  // stream, and a dead peer hangs the next copy to the host until NCCL's watchdog aborts the process.
  // Set here, as the addon loads, before lep starts a thread (setenv beside another thread's getenv is
  // undefined behaviour), under the one name this libtorch reads (renamed in 2.2; the old one then
  // draws a deprecation warning), and only where the user set neither.
  if (!std::getenv("TORCH_NCCL_BLOCKING_WAIT") && !std::getenv("NCCL_BLOCKING_WAIT"))
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
    ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", 0);
#else
    ::setenv("NCCL_BLOCKING_WAIT", "1", 0);
#endif
#endif
}

std::shared_ptr<DataParallel> DataParallel::join(const DistConfig& c, torch::Device device) {
  if (c.world_size < 2) throw Error("LEP_BAD_ARGUMENT", "a data-parallel group needs a world size of at least 2");
  if (c.rank < 0 || c.rank >= c.world_size)
    throw Error("LEP_BAD_ARGUMENT", "rank " + std::to_string(c.rank) + " is outside the world size " + std::to_string(c.world_size));
  if (c.master_addr.empty() || c.master_port <= 0 || c.master_port > 65535)
    throw Error("LEP_BAD_ARGUMENT", "a data-parallel group needs MASTER_ADDR and a MASTER_PORT in 1..65535");
  if (c.grad_sync != "dense" && c.grad_sync != "touched-rows")
    throw Error("LEP_BAD_ARGUMENT", "grad_sync must be 'dense' or 'touched-rows', got '" + c.grad_sync + "'");
#ifndef LEP_HAVE_NCCL
  if (device.is_cuda())
    throw Error("LEP_DIST_NO_NCCL", "data-parallel training of a CUDA model needs a libtorch built with NCCL, and NCCL's header (nccl.h) when lep is built\nHINT: use an official libtorch with CUDA (LIBTORCH=...) with NCCL's development files installed (nccl.h where the compiler finds it), then rebuild lep; or train on CPU.");
#endif
  // One group per process, as in torch.distributed: the rendezvous port can be bound only once, and
  // every job of a process (lep adapt's stages) talks to the same peers.
  static std::mutex mu;
  static std::shared_ptr<Group> group;
  static DistConfig joined;
  static bool joined_cuda = false;  // the group's backend: NCCL for CUDA tensors, Gloo for CPU ones
  std::unique_lock<std::mutex> lock(mu, std::defer_lock);
  {
    // Outside the fork gate: a job joining holds `mu` across its own safe region (make_group), and one
    // waiting here with the gate held would keep a fork, and so that job, waiting (core/fork_gate.h).
    ForkSafeRegion waiting;
    lock.lock();
  }
  if (group && (joined.rank != c.rank || joined.world_size != c.world_size || joined.master_addr != c.master_addr ||
                joined.master_port != c.master_port))
    throw Error("LEP_BAD_ARGUMENT", "this process already joined another data-parallel group (rank " + std::to_string(joined.rank) + " of " +
                                        std::to_string(joined.world_size) + " at " + joined.master_addr + ":" +
                                        std::to_string(joined.master_port) + ")");
  if (group && joined_cuda != device.is_cuda())
    throw Error("LEP_BAD_ARGUMENT", std::string("this process joined its data-parallel group for a ") + (joined_cuda ? "CUDA" : "CPU") +
                                        " model; a stage on " + (device.is_cuda() ? "CUDA" : "the CPU") +
                                        " cannot use it (one group per process)\nHINT: run every training stage of a data-parallel lep adapt on one device.");
  if (!group) {
    group = make_group(c, device);
    joined = c;
    joined_cuda = device.is_cuda();
  }
  group->config.timeout_s = c.timeout_s;
  const torch::Device comm = device.is_cuda() ? device : torch::Device(torch::kCPU);
  struct Made : DataParallel {
    Made(const DistConfig& c, std::shared_ptr<Group> g, torch::Device d) : DataParallel(c, std::move(g), d) {}
  };
  return std::make_shared<Made>(c, group, comm);
}

std::vector<double> DataParallel::sum(const std::vector<double>& values, const std::string& what) {
  std::vector<at::Tensor> t{torch::tensor(values, torch::kFloat64).to(comm_device_)};
  group_->wait(group_->start(t, c10d::ReduceOp::SUM, what), what);
  auto c = t[0].cpu();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

bool DataParallel::all(bool value, const std::string& what) {
  return sum({value ? 0.0 : 1.0}, what)[0] == 0.0;
}

void DataParallel::check_same(const std::vector<std::pair<std::string, double>>& values) {
  // min and max of each value in one all-reduce: max(x) and max(-x).
  std::vector<double> v;
  for (const auto& [_, x] : values) v.push_back(x);
  for (const auto& [_, x] : values) v.push_back(-x);
  std::vector<at::Tensor> t{torch::tensor(v, torch::kFloat64).to(comm_device_)};
  group_->wait(group_->start(t, c10d::ReduceOp::MAX, "the start-up check"), "the start-up check");
  auto r = t[0].cpu();
  const size_t n = values.size();
  for (size_t i = 0; i < n; ++i) {
    const double hi = r[static_cast<int64_t>(i)].item<double>(), lo = -r[static_cast<int64_t>(n + i)].item<double>();
    if (hi != lo) {
      std::ostringstream o;
      o << "the ranks disagree on " << values[i].first << " (from " << lo << " to " << hi << "; this rank, " << rank() << ", has "
        << values[i].second << ")\nHINT: every rank must see the same model, data, options and checkpoint directory (shared storage, or identical copies).";
      throw Error("LEP_DIST_MISMATCH", o.str());
    }
  }
}

// ---------------------------------------------------------------------------------------------------

struct GradSync::Bucket {
  std::vector<size_t> entries;
  size_t pending = 0;     // entries not yet final this step
  bool started = false;
  bool rows = false;      // one row-restricted entry (fixed rows and/or touched rows)
  torch::Tensor buffer;   // what is all-reduced
  torch::Tensor row_index;  // rows of `buffer` (row-restricted)
  c10::intrusive_ptr<c10d::Work> work;
};

namespace {

// Fires after autograd has accumulated a leaf's gradient (the same hook c10d's Reducer uses for DDP).
struct ReadyHook : torch::autograd::FunctionPostHook {
  std::function<void()> fn;
  explicit ReadyHook(std::function<void()> f) : fn(std::move(f)) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& /*inputs*/) override {
    fn();
    return outputs;
  }
};

// When a parameter's gradient becomes final in a LLaMA-family backward (Hugging Face names): the LM
// head first (the trainer computes it before the body's backward), then the final norm, the layers
// from the last to the first, the input embedding last. Only overlap depends on this order.
double ready_rank(const std::string& name) {
  if (name.rfind("lm_head", 0) == 0) return 0;
  if (name.rfind("model.norm", 0) == 0) return 1;
  const std::string layers = "model.layers.";
  if (name.rfind(layers, 0) == 0) return 2 + 0.5 / (1.0 + std::atof(name.c_str() + layers.size()));
  return 3;  // model.embed_tokens
}

}  // namespace

GradSync::GradSync(std::shared_ptr<DataParallel> dp, std::vector<Entry> entries) : dp_(std::move(dp)), entries_(std::move(entries)) {
  const bool touched = dp_->config().grad_sync == "touched-rows";
  const int64_t cap = static_cast<int64_t>(dp_->config().bucket_mb * (1 << 20));
  bucket_of_.assign(entries_.size(), 0);
  Bucket* open = nullptr;
  int64_t open_bytes = 0;
  std::vector<size_t> order(entries_.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ready_rank(entries_[a].name) < ready_rank(entries_[b].name); });
  for (size_t k : order) {
    const Entry& e = entries_[k];
    const bool rows = e.fixed_rows.defined() || (touched && e.input_embedding);
    const int64_t bytes = e.param.numel() * 4;
    // A manual entry (the untied head) is final before the body's backward starts: alone, its bucket
    // can start at once instead of waiting for the layers it would share a bucket with.
    if (rows || e.manual || !open || open_bytes + bytes > cap) {
      buckets_.push_back(std::make_unique<Bucket>());
      open = buckets_.back().get();
      open->rows = rows;
      open_bytes = 0;
    }
    open->entries.push_back(k);
    open_bytes += bytes;
    bucket_of_[k] = buckets_.size() - 1;
    if (rows || e.manual) open = nullptr;  // a row-restricted or manual entry is a bucket of its own
  }
  for (size_t k = 0; k < entries_.size(); ++k) {
    if (entries_[k].manual || !entries_[k].param.requires_grad()) continue;
    auto acc = torch::autograd::impl::grad_accumulator(entries_[k].param);
    hook_keys_.push_back(acc->add_post_hook(std::make_unique<ReadyHook>([this, k] { ready(k); })));
    accumulators_.push_back(acc);
  }
}

GradSync::~GradSync() {
  for (size_t i = 0; i < accumulators_.size(); ++i) accumulators_[i]->del_post_hook(hook_keys_[i]);
}

int64_t GradSync::dense_bytes() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += e.param.numel() * 4;
  return n;
}

void GradSync::begin_step(const std::vector<torch::Tensor>& input_ids, int64_t step) {
  step_ = step;
  bytes_ = 0;
  early_ = 0;
  armed_ = false;
  next_launch_ = 0;
  for (auto& b : buckets_) {
    b->pending = b->entries.size();
    b->started = false;
    b->work.reset();
    b->buffer = torch::Tensor();
    b->row_index = torch::Tensor();
  }
  touched_work_.reset();
  if (dp_->config().grad_sync != "touched-rows") return;
  for (const auto& e : entries_) {
    if (!e.input_embedding) continue;
    // The rows this rank's batches use, as a vocabulary-long mask; MAX over ranks = their union.
    auto mask = torch::zeros({e.param.size(0)}, torch::TensorOptions().dtype(torch::kUInt8));
    for (const auto& ids : input_ids) mask.index_fill_(0, ids.reshape({-1}).to(torch::kCPU), 1);
    touched_mask_ = mask.to(dp_->comm_device());
    std::vector<at::Tensor> t{touched_mask_};
    touched_work_ = dp_->group().start(t, c10d::ReduceOp::MAX, "the touched-row union of step " + std::to_string(step + 1));
    bytes_ += touched_mask_.numel();
    break;
  }
}

void GradSync::mark_ready(const torch::Tensor& param) {
  // Only for gradients autograd does not finish: a tied head is also the input embedding, whose
  // gradient is final only after the body's backward (its hook says so).
  for (size_t k = 0; k < entries_.size(); ++k)
    if (entries_[k].manual && entries_[k].param.is_same(param)) return ready(k);
}

void GradSync::ready(size_t k) {
  if (!armed_) return;  // an earlier micro-batch: the gradient is not final yet
  Bucket& b = *buckets_[bucket_of_[k]];
  if (b.pending > 0) --b.pending;
  launch_ready();
}

void GradSync::launch_ready() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_]->pending == 0) launch(*buckets_[next_launch_++]);
}

void GradSync::launch(Bucket& b) {
  torch::NoGradGuard no_grad;
  const std::string what = "the gradient all-reduce of step " + std::to_string(step_ + 1);
  auto grad_of = [&](const Entry& e) {
    auto g = e.param.grad();
    return g.defined() ? g : torch::zeros_like(e.param);
  };
  if (b.rows) {
    const Entry& e = entries_[b.entries[0]];
    torch::Tensor idx = e.fixed_rows;
    if (e.input_embedding && touched_work_) {
      dp_->group().wait(touched_work_, "the touched-row union of step " + std::to_string(step_ + 1));
      auto rows = touched_mask_.to(torch::kCPU).nonzero().reshape({-1});
      if (idx.defined()) rows = rows.index({torch::isin(rows, idx.to(torch::kCPU))});
      idx = rows;
    }
    b.row_index = idx.to(e.param.device());
    b.buffer = grad_of(e).index_select(0, b.row_index).to(torch::kFloat32).to(dp_->comm_device());  // (K, C)
  } else if (b.entries.size() == 1 && grad_of(entries_[b.entries[0]]).scalar_type() == torch::kFloat32 &&
             entries_[b.entries[0]].param.device() == dp_->comm_device()) {
    auto& e = entries_[b.entries[0]];
    if (!e.param.grad().defined()) e.param.mutable_grad() = torch::zeros_like(e.param);
    b.buffer = e.param.mutable_grad().is_contiguous() ? e.param.mutable_grad() : e.param.grad().contiguous();
  } else {
    // Sums in float32 even for bf16 gradients: one rounding at the end instead of one per rank.
    std::vector<torch::Tensor> flat;
    for (size_t k : b.entries) flat.push_back(grad_of(entries_[k]).reshape({-1}).to(torch::kFloat32));
    b.buffer = torch::cat(flat).to(dp_->comm_device());
  }
  bytes_ += b.buffer.numel() * static_cast<int64_t>(b.buffer.element_size());
  if (!finishing_) ++early_;
  std::vector<at::Tensor> t{b.buffer};
  b.work = dp_->group().start(t, c10d::ReduceOp::SUM, what);
  b.started = true;
}

int64_t GradSync::finish() {
  torch::NoGradGuard no_grad;
  const auto t0 = std::chrono::steady_clock::now();
  armed_ = true;
  finishing_ = true;
  for (auto& b : buckets_) b->pending = 0;
  launch_ready();
  const std::string what = "the gradient all-reduce of step " + std::to_string(step_ + 1);
  for (auto& bp : buckets_) {
    Bucket& b = *bp;
    dp_->group().wait(b.work, what);
    if (b.rows) {
      auto& p = entries_[b.entries[0]].param;
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      // Rows outside the index are zero on every rank (untouched or outside the trained set).
      auto& g = p.mutable_grad();
      g.zero_();
      g.index_copy_(0, b.row_index, b.buffer.to(g.device()).to(g.scalar_type()));
    } else if (b.entries.size() == 1 && b.buffer.is_same(entries_[b.entries[0]].param.grad())) {
      // summed in place
    } else {
      int64_t off = 0;
      for (size_t k : b.entries) {
        auto& p = entries_[k].param;
        const int64_t n = p.numel();
        auto part = b.buffer.narrow(0, off, n).view(p.sizes()).to(p.device()).to(p.scalar_type());
        if (p.grad().defined()) p.mutable_grad().copy_(part);
        else p.mutable_grad() = part.clone();
        off += n;
      }
    }
    b.buffer = torch::Tensor();
    b.work.reset();
  }
  armed_ = false;
  finishing_ = false;
  wait_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return bytes_;
}

}  // namespace lep
