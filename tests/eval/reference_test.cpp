// Scoring against an independent reference: tests/eval/ref/lmeval_ref.py rebuilds ARC-Easy and
// Winogrande requests from the raw files with lm-eval's templates and HFLM's tokenization rules,
// scores them with a float64 PyTorch forward of stories260K, and must agree with qstudy's
// evaluator on every log-likelihood (1e-4) and every per-item choice.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval/evaluator.h"
#include "model/loader.h"
#include "testing/testing.h"

namespace qs::eval {
namespace {

struct Fixture {
  std::unique_ptr<Model> model = load_model(testing::shared_dir() + "/models/stories260K/stories260K.bin");
  std::unique_ptr<Tokenizer> tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  TaskRegistry tasks = TaskRegistry::load(testing::source_dir() + "/tasks");
};
Fixture& fx() {
  static Fixture f;
  return f;
}

void check_against_reference(const std::string& task, int limit, bool add_bos) {
  PrepareOptions po;
  po.data_dir = testing::shared_dir() + "/data";
  po.limit = limit;
  po.max_length = fx().model->config().max_position_embeddings;
  po.add_bos = add_bos;
  const PreparedTask p = prepare_task(fx().tasks.task(task), *fx().tok, po);
  const TaskRun run = run_task(p, *fx().model, *fx().tok, {}, task);

  const std::string cmd = testing::python() + " " + testing::source_dir() + "/tests/eval/ref/lmeval_ref.py --model " +
                          testing::shared_dir() + "/models/stories260K/stories260K.bin --tokenizer " +
                          testing::shared_dir() + "/models/stories260K/tok512.bin --data-dir " + po.data_dir +
                          " --task " + task + " --limit " + std::to_string(limit) + (add_bos ? " --add-bos" : "");
  const auto res = testing::run_command(cmd);
  ASSERT_EQ(res.exit_code, 0) << res.err;
  const auto ref = nlohmann::json::parse(res.out);
  ASSERT_EQ(ref.size(), run.docs.size());
  double max_diff = 0;
  int agree_acc = 0;
  for (size_t d = 0; d < ref.size(); ++d) {
    const DocResult& got = run.docs[d];
    const auto& want = ref[d];
    ASSERT_EQ(got.lls.size(), want["lls"].size()) << "doc " << d;
    for (size_t c = 0; c < got.lls.size(); ++c) {
      const double w = want["lls"][c].get<double>();
      max_diff = std::max(max_diff, std::fabs(got.lls[c] - w));
      EXPECT_NEAR(got.lls[c], w, 1e-4) << task << " doc " << d << " choice " << c;
      EXPECT_EQ(got.greedy[c], want["greedy"][c].get<bool>()) << task << " doc " << d << " choice " << c;
    }
    EXPECT_EQ(p.docs[d].gold, want["gold"].get<int>()) << "doc " << d;
    EXPECT_EQ(got.pred, want["pred"].get<int>()) << task << " doc " << d;
    EXPECT_EQ(got.pred_norm, want["pred_norm"].get<int>()) << task << " doc " << d;
    agree_acc += got.scores.at("acc") == want["acc"].get<double>();
  }
  EXPECT_EQ(agree_acc, static_cast<int>(ref.size()));
  std::printf("[ %s%s: %zu items, largest |ll difference| %.2e ]\n", task.c_str(), add_bos ? " (BOS)" : "", ref.size(),
              max_diff);
}

TEST(PyTorchReference, ArcEasyMatchesLmEvalConventions) { check_against_reference("arc_easy", 30, false); }
TEST(PyTorchReference, WinograndePartialScoringMatches) { check_against_reference("winogrande", 30, false); }
TEST(PyTorchReference, ArcEasyWithBosMatches) { check_against_reference("arc_easy", 6, true); }

}  // namespace
}  // namespace qs::eval
