// Data-parallel training over libtorch's own distributed layer (c10d): a TCPStore rendezvous at
// MASTER_ADDR:MASTER_PORT (what torchrun, Slurm scripts and `lep launch` set), a ProcessGroupGloo on CPU
// (ProcessGroupNCCL for CUDA models when libtorch was built with it), and the collectives the trainer
// needs — small sums (token counts, loss sums, stop flags), consistency checks, and the gradient
// all-reduce (GradSync).
//
// Every collective waits at most DistConfig::timeout_s; a rank that crashed, was killed or hangs turns
// into a lep::Error ("LEP_DIST_PEER_LOST" / "LEP_DIST_TIMEOUT") on every other rank instead of a hang.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace c10d {
class Work;
}

namespace lep {

// Process environment the c10d backends read (NCCL's blocking waits, where lep has NCCL): called once
// as lep.node loads, before any thread of lep's starts.
void prepare_distributed_env();

struct DistConfig {
  int64_t rank = 0;
  int64_t world_size = 1;        // 1 = one process, nothing distributed
  std::string master_addr;       // rank 0's host: the TCPStore server
  int64_t master_port = 0;
  double timeout_s = 300;        // longest wait for the other ranks, at rendezvous and in any collective
  std::string grad_sync = "touched-rows";  // "dense" | "touched-rows" (embeddings: only rows some batch used)
  double bucket_mb = 25;         // dense gradients are all-reduced in buckets of about this size
};

// One process's membership in the group. Joining is done once per process and configuration: later
// training jobs in the same process (lep adapt's stages, a resumed run) reuse the group, as
// torch.distributed.init_process_group does.
class DataParallel {
 public:
  static std::shared_ptr<DataParallel> join(const DistConfig& config, torch::Device device);
  virtual ~DataParallel() = default;

  int64_t rank() const { return config_.rank; }
  int64_t world() const { return config_.world_size; }
  const DistConfig& config() const { return config_; }

  // Element-wise sums over ranks of a few numbers (token counts, loss sums). `what` names the moment
  // in error messages ("the token count of step 12").
  std::vector<double> sum(const std::vector<double>& values, const std::string& what);
  // True when every rank passes true (a stop request on any rank stops all at the same step).
  bool all(bool value, const std::string& what);
  // Fails with one message naming the first value that differs between ranks (same data, same
  // checkpoint, same options): a mismatch would otherwise show up as a hang or silently wrong results.
  void check_same(const std::vector<std::pair<std::string, double>>& values);

  // Internals shared with GradSync.
  struct Group;
  Group& group() { return *group_; }
  torch::Device comm_device() const { return comm_device_; }

 protected:
  DataParallel(const DistConfig& c, std::shared_ptr<Group> g, torch::Device d) : config_(c), group_(std::move(g)), comm_device_(d) {}
  DistConfig config_;
  std::shared_ptr<Group> group_;
  torch::Device comm_device_;
};

// Turns each rank's gradient into the sum over ranks, for the trainable tensors of one job.
//
// Dense tensors are packed, in the order backward finishes them (LM head, final norm, last layer ...
// first layer, input embedding), into buckets of about bucket_mb; a bucket is all-reduced
// asynchronously as soon as its last gradient is final (autograd's post-accumulation hook, the one
// c10d's DDP Reducer uses; the head is marked by hand), so communication overlaps the rest of backward.
// Buckets always start in index order so every rank issues the same collectives in the same order.
//
// Row-restricted tensors all-reduce only some rows: a fixed row set (train only new tokens), and, with
// grad_sync "touched-rows", the input embedding's rows that some rank's batch used this step (its
// gradient is zero elsewhere); the union of touched rows is itself all-reduced as a vocabulary-long
// byte mask, started before the forward pass.
class GradSync {
 public:
  struct Entry {
    std::string name;
    torch::Tensor param;       // the model's parameter; its .grad() is summed in place
    torch::Tensor fixed_rows;  // int64 rows that may be non-zero (undefined = all)
    bool input_embedding = false;  // gradient non-zero only in the rows of input ids
    bool manual = false;       // gradient written by the trainer, not by autograd: mark_ready() by hand
  };
  GradSync(std::shared_ptr<DataParallel> dp, std::vector<Entry> entries);
  ~GradSync();

  // Start of a step: the input ids of all this rank's micro-batches (for touched-rows).
  void begin_step(const std::vector<torch::Tensor>& input_ids, int64_t step);
  // Call before the last micro-batch's backward: from then on, a gradient that autograd finalises
  // starts its bucket's all-reduce.
  void arm() { armed_ = true; }
  // A manual entry's gradient is final (the untied LM head's, computed before the body's backward);
  // no effect on other tensors.
  void mark_ready(const torch::Tensor& param);
  // Starts what has not started, waits for all, writes the sums into the gradients. Returns the bytes
  // this rank contributed to all-reduces this step (payload; the ring moves about 2x(W-1)/W of it).
  int64_t finish();

  int64_t dense_bytes() const;  // what a dense all-reduce of every entry would send
  double last_wait_s() const { return wait_s_; }  // time finish() blocked: communication backward did not hide
  int64_t last_early_buckets() const { return early_; }  // buckets started before finish(), i.e. during backward

 private:
  struct Bucket;
  void ready(size_t entry);
  void launch_ready();
  void launch(Bucket& b);

  std::shared_ptr<DataParallel> dp_;
  std::vector<Entry> entries_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<size_t> bucket_of_;  // entry -> bucket
  // What grad_accumulator returns: std::shared_ptr<Node> up to libtorch 2.12, c10::intrusive_ptr<Node> from 2.13.
  std::vector<decltype(torch::autograd::impl::grad_accumulator(std::declval<const torch::Tensor&>()))> accumulators_;
  std::vector<uintptr_t> hook_keys_;
  size_t next_launch_ = 0;
  bool armed_ = false;
  int64_t step_ = 0;
  int64_t bytes_ = 0;
  double wait_s_ = 0;
  int64_t early_ = 0;
  bool finishing_ = false;
  torch::Tensor touched_mask_;   // (V,) uint8, being all-reduced (MAX) since begin_step
  c10::intrusive_ptr<c10d::Work> touched_work_;
};

}  // namespace lep
