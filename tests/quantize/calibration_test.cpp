#include "quantize/calibration.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/rng.h"
#include "model/loader.h"
#include "testing/testing.h"

namespace qs::quant {
namespace {

// Advancing the states through every layer reproduces the model's own forward pass, whatever the
// chunking, and taps see every linear input once per chunk with the right row counts.
TEST(Calibration, LayerByLayerEqualsForward) {
  auto model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  const auto& c = model->config();
  Rng rng(4);
  std::vector<std::vector<int32_t>> seqs;
  for (int n : {40, 17, 64, 33}) {
    std::vector<int32_t> s(n);
    for (auto& t : s) t = static_cast<int32_t>(rng.below(c.vocab_size));
    s[0] = 1;
    seqs.push_back(s);
  }
  CalibrationRunner runner(*model, seqs, 64);  // small chunks: several per layer
  int64_t tapped_rows[4] = {0, 0, 0, 0};
  LinearTap tap = [&](int, LinearSlot slot, const float*, int64_t rows) { tapped_rows[static_cast<int>(slot)] += rows; };
  for (int l = 0; l < c.num_hidden_layers; ++l) runner.run_layer(l, model->weights().layers[l].view(), &tap, true);
  for (int64_t r : tapped_rows) EXPECT_EQ(r, runner.total_rows() * c.num_hidden_layers);

  const int64_t H = c.hidden_size;
  int64_t row = 0;
  for (const auto& s : seqs) {
    KVCache cache(c, 1);
    ForwardOutput out;
    SeqInput in{0, s, Outputs::All};
    model->forward({&in, 1}, cache, out, {.logits = false, .hidden = true});
    double num = 0, den = 0;
    std::vector<float> normed(H);
    for (size_t t = 0; t < s.size(); ++t, ++row) {
      kernels::rmsnorm(runner.states().data() + row * H, model->weights().final_norm.data(), normed.data(), 1, H,
                       static_cast<float>(c.rms_norm_eps));
      for (int64_t i = 0; i < H; ++i) {
        const double d = normed[i] - out.hidden[t * H + i];
        num += d * d;
        den += double(out.hidden[t * H + i]) * out.hidden[t * H + i];
      }
    }
    EXPECT_LT(std::sqrt(num / den), 1e-6);
  }
}

}  // namespace
}  // namespace qs::quant
