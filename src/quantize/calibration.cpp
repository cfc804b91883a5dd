#include "quantize/calibration.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace qs::quant {

CalibrationRunner::CalibrationRunner(const Model& model, std::vector<std::vector<int32_t>> sequences,
                                     int64_t rows_per_chunk)
    : model_(model), seqs_(std::move(sequences)) {
  require(!seqs_.empty(), "calibration: no sequences");
  const int64_t H = model.config().hidden_size;
  for (const auto& s : seqs_) {
    require(!s.empty(), "calibration: empty sequence");
    require(static_cast<int64_t>(s.size()) <= model.config().max_position_embeddings, "calibration: sequence of ",
            s.size(), " tokens exceeds the model's context of ", model.config().max_position_embeddings);
    row_of_.push_back(total_rows_);
    total_rows_ += static_cast<int64_t>(s.size());
    max_len_ = std::max<int64_t>(max_len_, static_cast<int64_t>(s.size()));
  }
  // Chunks of whole sequences, at most rows_per_chunk rows (at least one sequence).
  for (size_t i = 0; i < seqs_.size();) {
    Chunk c{i, 0, row_of_[i], 0};
    while (i < seqs_.size() && (c.count == 0 || c.rows + static_cast<int64_t>(seqs_[i].size()) <= rows_per_chunk)) {
      c.rows += static_cast<int64_t>(seqs_[i].size());
      ++c.count, ++i;
    }
    chunks_.push_back(c);
  }
  states_.resize(static_cast<size_t>(total_rows_ * H));
  for (size_t i = 0; i < seqs_.size(); ++i) model.embed(seqs_[i], states_.data() + row_of_[i] * H);
}

void CalibrationRunner::setup(PassState& st, const Chunk& c) const {
  st.segments.clear();
  for (size_t j = 0; j < c.count; ++j)
    st.segments.push_back({static_cast<int>(j), static_cast<int64_t>(seqs_[c.first + j].size()), 0});
  st.rows = c.rows;
  model_.prepare_pass(st);
  const int64_t H = model_.config().hidden_size;
  std::memcpy(st.x.data(), states_.data() + c.row0 * H, static_cast<size_t>(c.rows * H) * 4);
}

void CalibrationRunner::run_layer(int l, const LayerView& w, const LinearTap* tap, bool advance) {
  const int64_t H = model_.config().hidden_size;
  PassState st;
  for (const Chunk& c : chunks_) {
    setup(st, c);
    KVCache cache(model_.config(), static_cast<int>(c.count), max_len_, 1);
    model_.run_layer(l, w, st, cache, 0, default_pool(), tap);
    if (advance) std::memcpy(states_.data() + c.row0 * H, st.x.data(), static_cast<size_t>(c.rows * H) * 4);
  }
}

void CalibrationRunner::for_each_chunk(const std::function<void(PassState&, KVCache&)>& fn, size_t max_sequences) {
  PassState st;
  size_t used = 0;
  for (const Chunk& c : chunks_) {
    if (max_sequences && used >= max_sequences) break;
    Chunk part = c;
    if (max_sequences && used + c.count > max_sequences) {
      part.count = max_sequences - used;
      part.rows = 0;
      for (size_t j = 0; j < part.count; ++j) part.rows += static_cast<int64_t>(seqs_[c.first + j].size());
    }
    setup(st, part);
    KVCache cache(model_.config(), static_cast<int>(part.count), max_len_, 1);
    fn(st, cache);
    used += part.count;
  }
}

}  // namespace qs::quant
