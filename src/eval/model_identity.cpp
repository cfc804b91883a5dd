#include "eval/model_identity.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"

namespace qs::eval {

std::string fingerprint_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path))
      if (e.is_regular_file()) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  auto mix = [](uint64_t h, uint64_t v) {
    h ^= v * 0x9e3779b97f4a7c15ull;
    h = (h << 27) | (h >> 37);
    return h * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
  };
  uint64_t total = 0x6a09e667f3bcc908ull;
  for (const auto& f : files) {
    auto mf = MappedFile::open(f);
    const uint8_t* d = mf->data();
    const size_t n = mf->size();
    // Four independent lanes over 8-byte words keep the loop fast (several GB/s).
    uint64_t lane[4] = {1, 2, 3, 4};
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
      for (int k = 0; k < 4; ++k) {
        uint64_t v;
        std::memcpy(&v, d + i + 8 * k, 8);
        lane[k] = mix(lane[k], v);
      }
    uint64_t h = mix(mix(mix(lane[0], lane[1]), lane[2]), lane[3]);
    for (; i < n; ++i) h = mix(h, d[i]);
    h = mix(h, n);
    const std::string rel = files.size() > 1 ? fs::relative(f, path).string() : fs::path(f).filename().string();
    for (char c : rel) total = mix(total, static_cast<unsigned char>(c));
    total = mix(total, h);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "qsh64:%016llx", static_cast<unsigned long long>(total));
  return buf;
}

std::map<std::string, int64_t> linear_formats(const Model& model) {
  std::map<std::string, int64_t> out;
  auto& weights = const_cast<ModelWeights&>(model.weights());
  for (auto& layer : weights.layers)
    for (auto& [role, lin] : layer.linears()) out[(*lin)->format()] += (*lin)->weight_bytes();
  return out;
}

std::string scheme_name(const Model& model) {
  const auto formats = linear_formats(model);
  if (formats.empty()) return "";
  std::vector<std::pair<int64_t, std::string>> by_size;
  for (const auto& [f, b] : formats) by_size.emplace_back(b, f);
  std::sort(by_size.rbegin(), by_size.rend());
  std::string s = by_size[0].second;
  if (by_size.size() > 1) {
    s += " (+";
    for (size_t i = 1; i < by_size.size(); ++i) s += (i > 1 ? ", " : "") + by_size[i].second;
    s += ")";
  }
  return s;
}

std::string tokenizer_difference(const Tokenizer& a, const Tokenizer& b) {
  if (a.vocab_size() != b.vocab_size()) return cat("vocabulary sizes differ (", a.vocab_size(), " vs ", b.vocab_size(), ")");
  if (a.bos_id() != b.bos_id()) return "BOS ids differ";
  if (a.adds_bos() != b.adds_bos()) return "one adds BOS and the other does not";
  if (a.eos_ids() != b.eos_ids()) return "end-of-sequence ids differ";
  for (int32_t id = 0; id < a.vocab_size(); ++id)
    if (a.id_to_token(id) != b.id_to_token(id))
      return cat("token ", id, " is ", quote(a.id_to_token(id)), " vs ", quote(b.id_to_token(id)));
  const char* probe = "Question: The quick brown fox jumps over 13 lazy dogs, naïvely; 東京 ✓\nAnswer: 42.";
  if (a.encode(probe, true) != b.encode(probe, true)) return "a probe text encodes to different ids";
  return "";
}

}  // namespace qs::eval
