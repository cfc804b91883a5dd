// libFuzzer: a quantized checkpoint in one safetensors image. Its __metadata__ holds
// "quantization_config" (the JSON of config.json's quantization_config: compressed-tensors, or any
// quant_method the readers take) and optionally "layer" = "N,K" (the Linear's shape, default 8,64);
// its tensors are the checkpoint's. Every layer whose name prefixes a tensor is read through the
// reader's LinearFactory; a layer that loads is run once. Any input must load or raise qs::Error:
// never crash, hang or read out of bounds.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "io/safetensors.h"
#include "io/tensor_store.h"
#include "quantize/files/hf_checkpoint.h"

namespace {

// "N,K" with both in [1, 1024]; the default otherwise.
void parse_shape(const std::string& s, int64_t& n, int64_t& k) {
  const auto comma = s.find(',');
  if (comma == std::string::npos || comma == 0 || comma + 1 >= s.size() || s.size() > 12) return;
  const long a = std::strtol(s.substr(0, comma).c_str(), nullptr, 10);
  const long b = std::strtol(s.substr(comma + 1).c_str(), nullptr, 10);
  if (a >= 1 && a <= 1024 && b >= 1 && b <= 1024) n = a, k = b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static qs::ThreadPool pool(1);
  try {
    qs::SafetensorsFile f = qs::parse_safetensors(data, size, "<fuzz input>");
    auto qc_text = f.metadata.find("quantization_config");
    if (qc_text == f.metadata.end()) return 0;
    nlohmann::json qc;
    try {
      qc = nlohmann::json::parse(qc_text->second);
    } catch (const nlohmann::json::exception&) {
      return 0;
    }
    int64_t n = 8, k = 64;
    if (auto it = f.metadata.find("layer"); it != f.metadata.end()) parse_shape(it->second, n, k);
    qs::TensorStore store("<fuzz checkpoint>");
    store.metadata = f.metadata;
    std::set<std::string> layers;
    for (auto& t : f.tensors) {
      // Candidate layer names: the tensor name without its last one or two components.
      std::string name = t.name;
      for (int i = 0; i < 2; ++i) {
        const auto dot = name.rfind('.');
        if (dot == std::string::npos || dot == 0) break;
        name = name.substr(0, dot);
        if (layers.size() < 8) layers.insert(name);
      }
      store.add(std::move(t), "<fuzz input>");
    }
    const qs::LinearFactory factory = qs::quant::files::checkpoint_reader(qc, "<fuzz config>");
    for (const auto& name : layers) {
      try {
        auto lin = factory(name, n, k, store);
        if (!lin) continue;
        if (lin->out_features() != n || lin->in_features() != k) std::abort();
        std::vector<float> x(2 * k, 0.5f), y(2 * n);
        lin->forward(x.data(), 2, y.data(), pool);
        volatile float sink = lin->dequantized()[0];
        (void)sink;
      } catch (const qs::Error&) {
      }
    }
  } catch (const qs::Error&) {
  }
  return 0;
}
