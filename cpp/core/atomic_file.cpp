#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace lep {

namespace {
// Why a write that fails partway usually does, by errno.
std::string write_hint(int err) {
  switch (err) {
    case ENOSPC: return "the disk is full: free space there, or write somewhere else";
    case EDQUOT: return "your disk quota is used up: free space there, or write somewhere else";
    case EFBIG: return "the file would be larger than this process may write (ulimit -f) or the filesystem allows";
    default: return "is the disk full?";
  }
}
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw Error("LEP_IO", "cannot create " + tmp_ + " (the working copy of " + path_ + "): " + std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

// Names the file asked for, not its working copy: that one is removed as the error unwinds this object.
std::string AtomicFile::failed(const char* what, int err) const {
  return std::string("cannot ") + what + " " + path_ + ": " + std::strerror(err) + "\nHINT: " + write_hint(err);
}

void AtomicFile::write(const void* data, size_t bytes) {
  if (bytes && std::fwrite(data, 1, bytes, f_) != bytes) {
    const int err = errno;
    throw Error("LEP_IO", failed("write", err));
  }
  written_ += bytes;
}

void AtomicFile::commit() {
  if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) {  // buffered bytes meet a full disk here too
    const int err = errno;
    throw Error("LEP_IO", failed("flush", err));
  }
  std::fclose(f_);
  f_ = nullptr;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw Error("LEP_IO", "cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
  committed_ = true;
}

}  // namespace lep
