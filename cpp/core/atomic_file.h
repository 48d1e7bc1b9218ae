// Atomic file output: bytes go to "<path>.tmp-<pid>" in the same directory; commit() fsyncs and renames
// over `path`. A crash or exception before commit() leaves any previous file at `path` untouched.
#pragma once
#include <cstdio>
#include <string>

namespace lep {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();  // removes the temporary file unless committed
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  void write(const void* data, size_t bytes);
  uint64_t tell() const { return written_; }
  void commit();

 private:
  std::string failed(const char* what, int err) const;

  std::string path_, tmp_;
  FILE* f_ = nullptr;
  uint64_t written_ = 0;
  bool committed_ = false;
};

}  // namespace lep
