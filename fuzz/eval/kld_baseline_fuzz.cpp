// Fuzzes the compact KLD baseline parser (a file a user passes back to `qstudy kld`): any input
// must either parse into a baseline that serialises back to the same bytes and can be used to
// score a model, or be refused with a qs::Error.
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "eval/kld.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  qs::eval::CompactBaseline base;
  try {
    base = qs::eval::CompactBaseline::parse(bytes, "fuzz.qskld");
  } catch (const qs::Error&) {
    return 0;
  }
  if (base.serialize() != bytes) __builtin_trap();
  if (base.size() > 0 && base.n_vocab() <= 4096) {
    std::vector<float> logits(static_cast<size_t>(base.n_vocab()), 0.0f);
    qs::eval::KldAccumulator acc;
    for (size_t t = 0; t < base.size() && t < 8; ++t) acc.add(base, t, logits);
    (void)acc.stats();
  }
  return 0;
}
