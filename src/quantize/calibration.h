// Calibration: the hidden states of a set of token sequences, advanced through the model one
// decoder layer at a time. Quantization algorithms look at each linear layer's inputs through
// taps, replace the layer's weights, and then advance the states with the quantized layer, so
// every layer is calibrated on the outputs of the already-quantized layers before it (GPTQ's
// sequential recipe).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "model/model.h"

namespace qs::quant {

class CalibrationRunner {
 public:
  // rows_per_chunk bounds the activations held at once (scratch grows with it).
  CalibrationRunner(const Model& model, std::vector<std::vector<int32_t>> sequences, int64_t rows_per_chunk = 4096);

  const Model& model() const { return model_; }
  int64_t total_rows() const { return total_rows_; }
  size_t sequences() const { return seqs_.size(); }

  // Runs decoder layer `l` with weights `w` over every sequence, chunk by chunk, calling `tap`
  // with each linear input. With advance = true the hidden states are replaced by the layer's
  // outputs.
  void run_layer(int l, const LayerView& w, const LinearTap* tap, bool advance);

  // Calls fn(state) for each chunk with st.x holding the chunk's hidden states entering layer
  // `l` (states are not advanced). A KV cache of one layer fitting the chunk is provided.
  void for_each_chunk(const std::function<void(PassState& st, KVCache& cache)>& fn, size_t max_sequences = 0);

  // The states entering the next layer to run, [total_rows, hidden].
  const std::vector<float>& states() const { return states_; }

 private:
  struct Chunk {
    size_t first, count;  // sequences
    int64_t row0, rows;
  };
  void setup(PassState& st, const Chunk& c) const;

  const Model& model_;
  std::vector<std::vector<int32_t>> seqs_;
  std::vector<int64_t> row_of_;  // first row of each sequence
  std::vector<Chunk> chunks_;
  std::vector<float> states_;
  int64_t total_rows_ = 0, max_len_ = 0;
};

}  // namespace qs::quant
