// libFuzzer: arbitrary bytes as a GGUF file holding a vocabulary. Reading the vocabulary must
// succeed or raise qs::Error; a tokenizer that loads must encode and decode text, and write its
// vocabulary back as GGUF metadata, without crashing.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    qs::GgufFile f = qs::parse_gguf(data, size, "fuzz.gguf");
    auto t = qs::Tokenizer::from_gguf(f);
    for (const std::string text : {"Hello world", " a  b\n", "ab<s>c", "naïve 東京 🙂", ""}) {
      auto ids = t->encode(text, true);
      (void)t->decode(ids, false);
    }
    (void)t->to_gguf_metadata(t->vocab_size());
  } catch (const qs::Error&) {
  }
  return 0;
}
