// libFuzzer: arbitrary bytes as a safetensors file. Any input must either parse into tensors that
// lie inside the buffer or raise qs::Error; never crash, hang or read out of bounds.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qs::SafetensorsFile f = qs::parse_safetensors(data, size, "fuzz.safetensors");
    for (const auto& t : f.tensors) {
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (p < data || p + t.nbytes > data + size) std::abort();
      volatile uint8_t sink = t.nbytes ? p[t.nbytes - 1] : 0;  // touch the last byte
      (void)sink;
    }
  } catch (const qs::Error&) {
  }
  return 0;
}
