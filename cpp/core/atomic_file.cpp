#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/error.h"

namespace lep {

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = path_ + ".tmp-" + std::to_string(::getpid());
  f_ = std::fopen(tmp_.c_str(), "wbe");  // e: O_CLOEXEC, a child spawned meanwhile keeps no descriptor
  if (!f_) {
    const int err = errno;
    throw Error("LEP_IO", "cannot create " + tmp_ + " (the working copy of " + path_ + "): " + std::strerror(err) + "\nHINT: " + io_hint(err));
  }
}

AtomicFile::~AtomicFile() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

// Names the file asked for, not its working copy: that one is removed as the error unwinds this object.
std::string AtomicFile::failed(const char* what, int err) const {
  return std::string("cannot ") + what + " " + path_ + ": " + std::strerror(err) + "\nHINT: " + io_hint(err);
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
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    throw Error("LEP_IO", "cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(err) + "\nHINT: " + io_hint(err));
  }
  committed_ = true;
}

}  // namespace lep
