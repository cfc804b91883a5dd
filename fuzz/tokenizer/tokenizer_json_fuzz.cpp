// Fuzz target: arbitrary bytes as tokenizer.json. Loading either succeeds or throws qs::Error;
// a tokenizer that loads must encode and decode a fixed text without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<qs::Tokenizer> tok;
  try {
    tok = qs::Tokenizer::from_hf_json_text(bytes, "", "fuzz/tokenizer.json");
  } catch (const qs::Error&) {
    return 0;
  }
  try {
    std::vector<int32_t> ids = tok->encode("Hello, world! 12345 naïve 東京 🙂 \n\n  <s></s>", true);
    tok->decode(ids, true);
    tok->decode(ids, false);
    qs::StreamDecoder stream(*tok);
    for (int32_t id : ids) stream.push(id);
    stream.flush();
  } catch (const qs::Error&) {
    // An unknown character without unk_token or byte fallback is an error, not a crash.
  }
  return 0;
}
