// Meta's rotary layout -> Hugging Face's. llama2.c (and Meta's original) checkpoints rotate
// interleaved pairs (x[2i], x[2i+1]) of each head; transformers' Llama rotates halves
// (x[i], x[i + d/2]). transformers' convert_llama_weights_to_hf permutes the rows of q_proj and
// k_proj inside each head so that the same pairs meet: HF row h*d + t*(d/2) + i is Meta row
// h*d + 2i + t (t in {0, 1}, i < d/2). A layer in any storage is permuted by moving whole rows
// of its canonical pieces, so the written checkpoint computes the same q and k values in
// rotate-half order.
#pragma once

#include <memory>

#include "model/linear.h"

namespace qs::quant::files {

// `layer` ([n_heads * head_dim, in]) with its rows in Hugging Face's rotary order. Errors name the
// layer when its storage cannot move rows exactly (bitsandbytes blocks that span rows, nested
// statistics whose groups the permutation would cross, f16 dense weights).
std::unique_ptr<Linear> to_rotate_half_rows(const Linear& layer, int n_heads, int head_dim);

}  // namespace qs::quant::files
