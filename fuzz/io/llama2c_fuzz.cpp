// libFuzzer: arbitrary bytes as a llama2.c checkpoint.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "io/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qs::Llama2cCheckpoint ck = qs::parse_llama2c(data, size, "fuzz.bin");
    for (const auto& name : ck.tensors.names()) {
      const qs::Tensor& t = ck.tensors.get(name);
      const auto* p = static_cast<const uint8_t*>(t.data);
      if (p < data || p + t.nbytes > data + size) std::abort();
    }
  } catch (const qs::Error&) {
  }
  return 0;
}
