#include "eval/scorer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"

namespace qs::eval {

namespace {

// One scored row: the row's position within its node, the request, the token it predicts.
struct Target {
  int64_t row;
  uint32_t request;
  int32_t token;
};

// A run of tokens shared by every request whose input passes through it. Positions are absolute
// (the same in every such request), so node [start, end) continues its parent's [.., start).
struct Node {
  int parent = -1;
  int64_t start = 0, end = 0;
  const int32_t* base = nullptr;  // base[p] = token at position p
  std::vector<int> children;
  std::vector<Target> targets;
  int slot = -1;
};

// An input sequence and its scored part.
struct Input {
  std::vector<int32_t> tokens;   // the truncated (context + continuation), length L + 1
  int64_t length = 0;            // L: tokens run (the last token is only predicted)
  int64_t first_scored = 0;      // first row whose logits are scored
};

Input make_input(const LLRequest& r, int64_t max_length) {
  Input in;
  const int64_t total = static_cast<int64_t>(r.context.size() + r.continuation.size());
  const int64_t keep = std::min(total, max_length + 1);
  in.tokens.reserve(static_cast<size_t>(keep));
  const int64_t skip = total - keep;  // left truncation
  for (int64_t i = skip; i < total; ++i)
    in.tokens.push_back(i < static_cast<int64_t>(r.context.size()) ? r.context[i] : r.continuation[i - r.context.size()]);
  in.length = keep - 1;
  in.first_scored = in.length - static_cast<int64_t>(r.continuation.size());
  return in;
}

class Trie {
 public:
  Trie() { nodes_.emplace_back(); }
  size_t size() const { return nodes_.size() - 1; }
  std::vector<Node>& nodes() { return nodes_; }

  // Inserts positions [0, len) of `seq`, with forced node boundaries at `splits` (ascending).
  void insert(const int32_t* seq, int64_t len, const std::vector<int64_t>& splits) {
    int cur = 0;
    int64_t pos = 0;
    size_t si = 0;
    auto next_split = [&](int64_t p) {
      while (si < splits.size() && splits[si] <= p) ++si;
      return si < splits.size() ? splits[si] : std::numeric_limits<int64_t>::max();
    };
    while (pos < len) {
      int child = -1;
      for (int c : nodes_[cur].children)
        if (nodes_[c].base[nodes_[c].start] == seq[pos]) {
          child = c;
          break;
        }
      if (child < 0) {
        while (pos < len) {
          const int64_t e = std::min(len, next_split(pos));
          const int id = static_cast<int>(nodes_.size());
          Node n;
          n.parent = cur;
          n.start = pos;
          n.end = e;
          n.base = seq;
          nodes_.push_back(std::move(n));
          nodes_[cur].children.push_back(id);
          cur = id;
          pos = e;
        }
        return;
      }
      int64_t m = pos;
      const int64_t c_end = nodes_[child].end;
      const int32_t* cb = nodes_[child].base;
      while (m < c_end && m < len && cb[m] == seq[m]) ++m;
      m = std::min(m, next_split(pos));
      if (m < c_end) split(child, m);
      cur = child;
      pos = m;
    }
  }

  // The nodes along the path of `seq` (after every insertion).
  std::vector<int> path(const int32_t* seq, int64_t len) const {
    std::vector<int> out;
    int cur = 0;
    int64_t pos = 0;
    while (pos < len) {
      int next = -1;
      for (int c : nodes_[cur].children)
        if (nodes_[c].base[nodes_[c].start] == seq[pos]) {
          next = c;
          break;
        }
      out.push_back(next);
      cur = next;
      pos = nodes_[cur].end;
    }
    return out;
  }

 private:
  void split(int id, int64_t at) {
    const int tail = static_cast<int>(nodes_.size());
    Node n;
    n.parent = id;
    n.start = at;
    n.end = nodes_[id].end;
    n.base = nodes_[id].base;
    n.children = std::move(nodes_[id].children);
    nodes_.push_back(std::move(n));
    for (int c : nodes_[tail].children) nodes_[c].parent = tail;
    nodes_[id].end = at;
    nodes_[id].children = {tail};
  }
  std::vector<Node> nodes_;  // [0] is the empty root
};

struct RowStat {
  double lse = 0;
  int32_t argmax = 0;
};

RowStat row_stat(const float* x, int64_t n) {
  float best = x[0];
  int32_t arg = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > best) {  // strict: the first index wins ties, as torch.argmax
      best = x[i];
      arg = static_cast<int32_t>(i);
    }
  const double m = best;
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - m);
  return {m + std::log(sum), arg};
}

class Runner {
 public:
  Runner(const Model& model, int64_t capacity, int max_slots, int64_t max_rows)
      : model_(model), cache_(model.config(), max_slots, capacity), max_rows_(max_rows), vocab_(model.config().vocab_size) {
    free_.resize(static_cast<size_t>(max_slots));
    std::iota(free_.rbegin(), free_.rend(), 0);
  }

  // Runs one chunk's tree and adds the scored rows into `results`.
  void run(Trie& trie, std::vector<ScoreResult>& results, ScoreStats& stats) {
    std::vector<Node>& nodes = trie.nodes();
    std::vector<int> level = nodes[0].children;
    while (!level.empty()) {
      for (int id : level) {
        Node& n = nodes[id];
        if (n.parent == 0) {
          n.slot = alloc();
          cache_.clear(n.slot);
        } else {
          Node& p = nodes[n.parent];
          if (p.children.back() == id) {
            n.slot = p.slot;  // the last branch continues in the parent's cache
          } else {
            n.slot = alloc();
            cache_.copy_prefix(p.slot, n.slot, p.end);
          }
        }
      }
      // Forward calls of at most max_rows_ logits rows.
      size_t b = 0;
      while (b < level.size()) {
        size_t e = b;
        int64_t rows = 0;
        while (e < level.size()) {
          const Node& n = nodes[level[e]];
          const int64_t r = n.targets.empty() ? 0 : n.end - n.start;
          if (e > b && rows + r > max_rows_) break;
          rows += r;
          ++e;
        }
        run_batch(nodes, std::span<const int>(level.data() + b, e - b), results, stats);
        b = e;
      }
      std::vector<int> next;
      for (int id : level) {
        const Node& n = nodes[id];
        if (n.children.empty()) release(n.slot);
        next.insert(next.end(), n.children.begin(), n.children.end());
      }
      level = std::move(next);
    }
  }

  int64_t slots_in_use() const { return cache_.n_seqs() - static_cast<int64_t>(free_.size()); }

 private:
  int alloc() {
    require(!free_.empty(), "scorer: out of KV cache slots (internal sizing error)");
    const int s = free_.back();
    free_.pop_back();
    return s;
  }
  void release(int s) { free_.push_back(s); }

  void run_batch(std::vector<Node>& nodes, std::span<const int> ids, std::vector<ScoreResult>& results, ScoreStats& stats) {
    inputs_.clear();
    for (int id : ids) {
      const Node& n = nodes[id];
      SeqInput in;
      in.seq = n.slot;
      in.tokens = std::span<const int32_t>(n.base + n.start, static_cast<size_t>(n.end - n.start));
      in.outputs = n.targets.empty() ? Outputs::None : Outputs::All;
      inputs_.push_back(in);
      stats.model_tokens += n.end - n.start;
    }
    model_.forward(inputs_, cache_, out_);
    ++stats.forward_calls;
    // Row statistics of every scored row, in parallel; then the sums in a fixed order.
    rows_.clear();
    for (size_t i = 0; i < ids.size(); ++i) {
      const Node& n = nodes[ids[i]];
      for (const Target& t : n.targets) rows_.push_back(out_.first_row[i] + t.row);
    }
    std::sort(rows_.begin(), rows_.end());
    rows_.erase(std::unique(rows_.begin(), rows_.end()), rows_.end());
    row_stats_.resize(rows_.size());
    const int64_t V = vocab_;
    default_pool().parallel_for(static_cast<int64_t>(rows_.size()), [&](int64_t b, int64_t e) {
      for (int64_t k = b; k < e; ++k) row_stats_[k] = row_stat(out_.logits_row(rows_[k]), V);
    });
    for (size_t i = 0; i < ids.size(); ++i) {
      const Node& n = nodes[ids[i]];
      for (const Target& t : n.targets) {
        const int64_t row = out_.first_row[i] + t.row;
        const size_t k = static_cast<size_t>(std::lower_bound(rows_.begin(), rows_.end(), row) - rows_.begin());
        ScoreResult& r = results[t.request];
        r.logprob += static_cast<double>(out_.logits_row(row)[t.token]) - row_stats_[k].lse;
        r.greedy = r.greedy && row_stats_[k].argmax == t.token;
        ++r.tokens;
      }
    }
  }

  const Model& model_;
  KVCache cache_;
  int64_t max_rows_;
  int64_t vocab_;
  std::vector<int> free_;
  std::vector<SeqInput> inputs_;
  ForwardOutput out_;
  std::vector<int64_t> rows_;
  std::vector<RowStat> row_stats_;
};

}  // namespace

std::vector<ScoreResult> score_requests(const Model& model, std::span<const LLRequest> requests, const ScoreOptions& o,
                                        ScoreStats* stats_out, const std::function<void(int64_t)>& on_done) {
  const ModelConfig& cfg = model.config();
  const int64_t max_length = o.max_length > 0 ? std::min(o.max_length, cfg.max_position_embeddings) : cfg.max_position_embeddings;
  ScoreStats stats;
  Stopwatch clock;
  std::vector<ScoreResult> results(requests.size());
  if (requests.empty()) return results;
  require(requests.size() < std::numeric_limits<uint32_t>::max(), "scorer: too many requests");

  std::vector<Input> inputs(requests.size());
  int64_t capacity = 1;
  for (size_t i = 0; i < requests.size(); ++i) {
    const LLRequest& r = requests[i];
    require(!r.context.empty() && !r.continuation.empty(), "scorer: request ", i, " has an empty context or continuation");
    require(static_cast<int64_t>(r.continuation.size()) <= max_length, "scorer: a continuation of ", r.continuation.size(),
            " tokens does not fit the context of ", max_length);
    for (int32_t t : r.context) require(t >= 0 && t < cfg.vocab_size, "scorer: token id ", t, " is outside the vocabulary");
    for (int32_t t : r.continuation) require(t >= 0 && t < cfg.vocab_size, "scorer: token id ", t, " is outside the vocabulary");
    inputs[i] = make_input(r, max_length);
    capacity = std::max(capacity, inputs[i].length);
    stats.request_tokens += inputs[i].length;
  }
  stats.requests = static_cast<int64_t>(requests.size());

  // Units: a document's consecutive requests. Longest first.
  std::vector<std::pair<size_t, size_t>> units;  // [begin, end) of requests
  for (size_t i = 0; i < requests.size();) {
    size_t j = i + 1;
    while (o.share_prefixes && j < requests.size() && requests[j].doc == requests[i].doc) ++j;
    units.emplace_back(i, j);
    i = j;
  }
  auto unit_len = [&](const std::pair<size_t, size_t>& u) {
    int64_t m = 0;
    for (size_t i = u.first; i < u.second; ++i) m = std::max(m, inputs[i].length);
    return m;
  };
  std::vector<int64_t> lens(units.size());
  for (size_t u = 0; u < units.size(); ++u) lens[u] = unit_len(units[u]);
  std::vector<size_t> order(units.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lens[a] > lens[b]; });

  // Budgets: KV slots of `capacity` tokens; logits rows per forward call.
  const int64_t slot_bytes = int64_t{2} * cfg.num_hidden_layers * cfg.num_key_value_heads * capacity * cfg.head_dim *
                             static_cast<int64_t>(sizeof(float));
  const int max_slots = static_cast<int>(std::clamp<int64_t>(o.kv_budget_bytes / std::max<int64_t>(1, slot_bytes), 2, 8192));
  const int64_t max_rows = std::max<int64_t>(
      64, o.logits_budget_bytes / std::max<int64_t>(1, cfg.vocab_size * static_cast<int64_t>(sizeof(float))));
  // A request's scored rows are cut into pieces of at most max_rows (bounded logits memory), and
  // a node boundary is forced at its first scored row (rows before it need no logits).
  auto splits_of = [&](const Input& in) {
    std::vector<int64_t> s;
    for (int64_t p = std::max<int64_t>(in.first_scored, 0); p < in.length; p += max_rows) s.push_back(p);
    return s;
  };
  auto nodes_bound = [&](size_t u) {
    int64_t n = 0;
    for (size_t i = units[u].first; i < units[u].second; ++i) n += 2 + 2 * static_cast<int64_t>(splits_of(inputs[i]).size());
    return n;
  };

  // A unit larger than the budget still runs alone; the cache grows to what it needs.
  int64_t worst_unit = 0;
  for (size_t u = 0; u < units.size(); ++u) worst_unit = std::max(worst_unit, nodes_bound(u));
  const int cache_slots = static_cast<int>(std::max<int64_t>(max_slots, worst_unit + 1));
  Runner runner(model, capacity, cache_slots, max_rows);

  size_t next = 0;
  while (next < order.size()) {
    Trie trie;
    std::vector<size_t> members;  // request indices in this chunk
    int64_t bound = 0;
    while (next < order.size()) {
      const size_t u = order[next];
      const int64_t b = nodes_bound(u);
      if (!members.empty() && (bound + b > max_slots || !o.share_prefixes)) break;
      bound += b;
      for (size_t i = units[u].first; i < units[u].second; ++i) {
        trie.insert(inputs[i].tokens.data(), inputs[i].length, splits_of(inputs[i]));
        members.push_back(i);
      }
      ++next;
    }
    // Scored rows go to the nodes that hold them.
    std::vector<Node>& nodes = trie.nodes();
    for (size_t i : members) {
      const Input& in = inputs[i];
      const std::vector<int> path = trie.path(in.tokens.data(), in.length);
      size_t k = 0;
      for (int64_t row = std::max<int64_t>(in.first_scored, 0); row < in.length; ++row) {
        while (nodes[path[k]].end <= row) ++k;
        Node& n = nodes[path[k]];
        n.targets.push_back({row - n.start, static_cast<uint32_t>(i), in.tokens[row + 1]});
      }
    }
    runner.run(trie, results, stats);
    ++stats.chunks;
    if (on_done) on_done(static_cast<int64_t>(members.size()));
  }
  stats.seconds = clock.seconds();
  if (stats_out) *stats_out = stats;
  return results;
}

}  // namespace qs::eval
