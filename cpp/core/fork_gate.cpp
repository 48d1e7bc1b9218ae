#include "core/fork_gate.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace lep {
namespace {

// Writers first: a job thread letting the gate go at a safe point cannot take it back while a fork waits.
pthread_rwlock_t* gate() {
  static pthread_rwlock_t lock = [] {
    pthread_rwlock_t l;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&l, &attr);
    pthread_rwlockattr_destroy(&attr);
    return l;
  }();
  return &lock;
}

thread_local bool holding = false;  // this thread is a job's, inside its run
std::atomic<int> forks_waiting{0};
std::atomic<long> max_wait_ms{10000};
thread_local bool fork_holds = false;  // this (forking) thread got the gate: prepare sets, parent and child release

void say_once(const char* message, size_t length) {
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  ssize_t written = write(STDERR_FILENO, message, length);
  (void)written;  // nothing to do if stderr is gone
}

void prepare() {
  timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  const long ms = max_wait_ms.load();
  deadline.tv_sec += ms / 1000;
  deadline.tv_nsec += (ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  ++forks_waiting;
  fork_holds = pthread_rwlock_timedwrlock(gate(), &deadline) == 0;
  --forks_waiting;
  if (!fork_holds) {
    static const char message[] =
        "lep: a child process started while a lep job had been computing without a safe point for the whole wait: "
        "OpenBLAS's pre-fork handler can leave that job waiting forever. Start children with forkWhenIdle(() => "
        "spawn(...)) from lep, or from another process (docs/architecture.md, \"Known hazard\"). Said once.\n";
    say_once(message, sizeof message - 1);
  }
}

void release() {
  if (!fork_holds) return;
  fork_holds = false;
  pthread_rwlock_unlock(gate());
}

}  // namespace

void fork_gate_enter() {
  pthread_rwlock_rdlock(gate());
  holding = true;
}

void fork_gate_leave() {
  if (!holding) return;
  holding = false;
  pthread_rwlock_unlock(gate());
}

ForkSafeRegion::ForkSafeRegion() : held_(holding) {
  if (held_) fork_gate_leave();
}

ForkSafeRegion::~ForkSafeRegion() {
  if (held_) fork_gate_enter();
}

void fork_safe_point() {
  if (!holding || forks_waiting.load(std::memory_order_relaxed) == 0) return;
  fork_gate_leave();
  fork_gate_enter();  // after the fork: writers go first
}

void install_fork_gate(std::chrono::milliseconds max_wait) {
  max_wait_ms = static_cast<long>(max_wait.count());
  static std::once_flag once;
  std::call_once(once, [] { pthread_atfork(prepare, release, release); });
}

}  // namespace lep
