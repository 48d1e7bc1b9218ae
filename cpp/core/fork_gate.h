#pragma once
// Forks wait for lep's jobs to reach a safe point. A process that starts a child with fork() (Node does,
// for every spawn) runs OpenBLAS's pre-fork handler, which tears OpenBLAS's thread pool down; a job inside
// a threaded BLAS call at that moment then waits forever for work the pool lost (reproduced: a generation
// loop beside a loop spawning `true` hung within seconds, its thread spinning in exec_blas_async_wait).
// So a job thread holds this gate, shared, while it computes, and lets it go at safe points (each decoder
// layer, forward and backward; each loss chunk; each tensor of an update or a checkpoint; each progress
// report): any point of the job's thread between two libtorch ops is one, since a BLAS call returns only
// when its pool is done. A pre-fork handler of lep's, which runs before OpenBLAS's (handlers registered
// later run first), takes it exclusively, so the fork comes between two BLAS calls. It waits at most
// `max_wait` (a stretch with no safe point: loading a model's tensors, one layer of a very long sequence),
// then lets the fork go as before and says so on stderr, once.
//
// The rule that keeps it from deadlocking: a job's thread never waits, holding the gate, for something
// another job holds across a safe point (a model, the data-parallel group); it waits in a ForkSafeRegion.
// Otherwise a fork waits for the waiter, the waiter for the other job, and that job, at its safe point,
// for the fork (seen with two generations on one model: addon/AddonModel.h, ModelLock).
#include <chrono>

namespace lep {

// A job's thread takes the gate as its work starts and lets it go as it ends (once per run: not reentrant).
void fork_gate_enter();
void fork_gate_leave();

// A stretch of a job's thread with no BLAS call, which may be long (waiting for other ranks): the gate is
// let go for it, so a fork need not wait for it to end.
class ForkSafeRegion {
 public:
  ForkSafeRegion();
  ~ForkSafeRegion();
  ForkSafeRegion(const ForkSafeRegion&) = delete;
  ForkSafeRegion& operator=(const ForkSafeRegion&) = delete;

 private:
  bool held_;
};

// A safe point on a job's thread: no BLAS call is under way. Lets a waiting fork go first; cheap (one
// atomic load) when none waits, and nothing on a thread that holds no gate.
void fork_safe_point();

// Registers the pre-fork handlers (once per process).
void install_fork_gate(std::chrono::milliseconds max_wait);

}  // namespace lep
