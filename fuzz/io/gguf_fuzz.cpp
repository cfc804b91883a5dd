// libFuzzer: arbitrary bytes as a GGUF file. Any input must either parse into metadata and
// tensors that lie inside the buffer or raise qs::Error; never crash, hang or read out of
// bounds. The first row of each tensor of a decodable type is dequantized too.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qs::GgufFile f = qs::parse_gguf(data, size, "fuzz.gguf");
    for (const auto& kv : f.metadata) (void)kv.value.describe();
    std::vector<float> row;
    for (const auto& t : f.tensors) {
      if (t.data < data || t.data + t.nbytes > data + size) std::abort();
      volatile uint8_t sink = t.nbytes ? t.data[t.nbytes - 1] : 0;  // touch the last byte
      (void)sink;
      const int64_t n = t.ne.empty() ? 1 : t.ne[0];
      if (!qs::formats::ggml_can_dequantize(t.type) || t.nbytes == 0 || n > (1 << 16)) continue;
      if (qs::formats::ggml_row_size(t.type, n) > t.nbytes) std::abort();
      row.resize(static_cast<size_t>(n));
      qs::formats::dequantize_row(t.type, t.data, row.data(), n);
    }
  } catch (const qs::Error&) {
  }
  return 0;
}
