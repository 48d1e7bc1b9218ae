// libFuzzer target: the safetensors header parser (cpp/core/safetensors_header.cpp) on arbitrary bytes
// taken as a whole file. It must return or throw lep::Error; any other exception, a crash, an
// AddressSanitizer or UndefinedBehaviorSanitizer report, or a hang is a bug.
// Build and run: fuzz/run.sh 30 safetensors_header
// sources: cpp/core/safetensors_header.cpp
#include <cstdint>

#include "core/error.h"
#include "core/safetensors_header.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto h = lep::parse_safetensors_header(data, size, "fuzz.safetensors");
    // What the parser accepted must be safe to use: every tensor lies inside the data section.
    for (const auto& t : h.tensors)
      if (t.end > size - h.data_start || t.begin > t.end) __builtin_trap();
  } catch (const lep::Error&) {
  }
  return 0;
}
