// Data readers and bad input: every problem names FILE:LINE; --strict stops at the first,
// otherwise the record is skipped and counted; whole-file problems are errors.
#include "eval/dataset.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "eval/requests.h"
#include "eval/task.h"
#include "testing/testing.h"
#include "tokenizer/tokenizer.h"

namespace qs::eval {
namespace {

using json = nlohmann::json;

SourceSpec spec(const std::string& format, json extra = json::object()) {
  extra["path"] = "x";
  extra["format"] = format;
  return parse_source_spec(extra, "test");
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Dataset, JsonlSkipsAndCountsMalformedLines) {
  const std::string text = "{\"a\": 1}\n\n{\"a\": 2, }\n[1, 2]\n{\"a\": 3}\r\n";
  ReadResult r = read_source_bytes(spec("jsonl"), text, "d.jsonl", false);
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[1].doc["a"], 3);
  EXPECT_EQ(r.records[1].origin, "d.jsonl:5");
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0].origin, "d.jsonl:3");
  EXPECT_NE(r.skipped[0].message.find("malformed JSON line"), std::string::npos);
  EXPECT_EQ(r.skipped[1].origin, "d.jsonl:4");
  const std::string m = error_of([&] { read_source_bytes(spec("jsonl"), text, "d.jsonl", true); });
  EXPECT_EQ(m.rfind("d.jsonl:3: malformed JSON line", 0), 0u) << m;
  EXPECT_NE(m.find("--strict"), std::string::npos);
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST(Dataset, FieldTemplatesMissingFieldsAreIssues) {
  SourceSpec s = spec("jsonl", {{"fields", {{"q", "{{ question.stem }}"}}}});
  ReadResult r = read_source_bytes(s, "{\"question\": {\"stem\": \"Why?\"}}\n{\"question\": {}}\n", "f.jsonl", false);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].doc["q"], "Why?");
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].text(), "f.jsonl:2: field 'q': field 'stem' is undefined");
}

TEST(Dataset, CsvWithQuotesAndBadRows) {
  const std::string text =
      "question,choice0,answer\n"
      "\"Say \"\"hi\"\", twice\",x,1\n"
      "\"multi\nline\",y,0\n"
      "short,row\n"
      "last,z,2\n";
  ReadResult r = read_source_bytes(spec("csv"), text, "m.csv", false);
  ASSERT_EQ(r.records.size(), 3u);
  EXPECT_EQ(r.records[0].doc["question"], "Say \"hi\", twice");
  EXPECT_EQ(r.records[1].doc["question"], "multi\nline");
  EXPECT_EQ(r.records[2].origin, "m.csv:6");
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].origin, "m.csv:5");
  EXPECT_NE(error_of([&] { read_source_bytes(spec("csv"), "a,b\n\"open,1\n", "u.csv", false); }).find("unterminated"),
            std::string::npos);
  EXPECT_NE(error_of([&] { read_source_bytes(spec("csv"), "", "e.csv", false); }).find("empty CSV"), std::string::npos);
}

TEST(Dataset, JsonArrayAndLineGroups) {
  ReadResult r = read_source_bytes(spec("json"), "[{\"a\": 1}, 5, {\"a\": 2}]", "a.json", false);
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.skipped.at(0).origin, "a.json:record 2");
  const std::string m = error_of([&] { read_source_bytes(spec("json"), "[{\"a\": 1},\n{\"a\" 2}]", "b.json", false); });
  EXPECT_EQ(m.rfind("b.json:2: malformed JSON", 0), 0u) << m;
  ReadResult l = read_source_bytes(spec("lines", {{"lines_per_record", 3}}), "a\nb\nc\nd\ne\n", "h.txt", false);
  ASSERT_EQ(l.records.size(), 1u);
  EXPECT_EQ(l.records[0].doc["lines"], json({"a", "b", "c"}));
  ASSERT_EQ(l.skipped.size(), 1u);
  EXPECT_EQ(l.skipped[0].origin, "h.txt:4");
  EXPECT_THROW(read_source_bytes(spec("lines", {{"lines_per_record", 3}}), "a\nb\nc\nd\n", "h.txt", true), Error);
}

TEST(Dataset, SourceSpecsAreValidated) {
  EXPECT_NE(error_of([] { parse_source_spec(json{{"path", "x"}}, "tasks/t.json: dataset"); }).find("missing key 'format'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_source_spec(json{{"path", "x"}, {"format", "xml"}}, "t"); }).find("expected jsonl"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_source_spec(json{{"path", "x"}, {"format", "lines"}}, "t"); }).find("lines_per_record"),
            std::string::npos);
}

// A whole task over a temporary data directory with bad records and definitions.
struct TempTask {
  std::string dir = testing::make_temp_dir("evaltask");
  std::unique_ptr<Tokenizer> tok = Tokenizer::load(testing::shared_dir() + "/models/stories260K/tok512.bin");
  TaskSpec define(const std::string& data) {
    testing::write_text(dir + "/d.jsonl", data);
    json t = {{"task", "tiny"},
              {"output_type", "multiple_choice"},
              {"dataset", {{{"path", "d.jsonl"}, {"format", "jsonl"}}}},
              {"doc_to_text", "Q: {{q}}\nA:"},
              {"doc_to_choice", "{{choices}}"},
              {"doc_to_target", "{{gold}}"}};
    return parse_task_spec(t, dir + "/tiny.json");
  }
  PreparedTask prepare(const TaskSpec& s, bool strict = false) {
    PrepareOptions o;
    o.data_dir = dir;
    o.max_length = 512;
    o.strict = strict;
    return prepare_task(s, *tok, o);
  }
};

TEST(Dataset, TaskLevelBadInput) {
  TempTask t;
  const TaskSpec s = t.define(
      "{\"q\": \"one\", \"choices\": [\"a\", \"b\"], \"gold\": 1}\n"
      "{\"q\": \"two\", \"choices\": [\"a\", \"b\"]}\n"            // missing gold
      "{\"q\": \"three\", \"choices\": [\"a\", \"b\"], \"gold\": 5}\n"  // gold out of range
      "{\"q\": \"four\", \"choices\": [\"a\", \"b\"], \"gold\": 0\n");  // malformed
  const PreparedTask p = t.prepare(s);
  ASSERT_EQ(p.docs.size(), 1u);
  ASSERT_EQ(p.skipped.size(), 3u);
  EXPECT_NE(p.skipped[0].text().find("d.jsonl:4: malformed JSON line"), std::string::npos) << p.skipped[0].text();
  EXPECT_NE(p.skipped[1].text().find("d.jsonl:2: doc_to_target: field 'gold' is undefined"), std::string::npos)
      << p.skipped[1].text();
  EXPECT_NE(p.skipped[2].text().find("d.jsonl:3: doc_to_target: gold index 5 is out of range for 2 choices"), std::string::npos)
      << p.skipped[2].text();
  const std::string strict = error_of([&] { t.prepare(s, true); });
  EXPECT_NE(strict.find("d.jsonl:4: malformed JSON line"), std::string::npos) << strict;
  // Empty task: a clear error.
  const TaskSpec empty = t.define("\n");
  EXPECT_NE(error_of([&] { t.prepare(empty); }).find("task tiny: no usable documents"), std::string::npos);
  // Missing data file: the paths tried.
  json def = {{"task", "gone"}, {"output_type", "multiple_choice"}, {"dataset", {{{"path", "nope.jsonl"}, {"format", "jsonl"}}}},
              {"doc_to_text", "x"}, {"doc_to_choice", "{{c}}"}, {"doc_to_target", "0"}};
  const TaskSpec gone = parse_task_spec(def, "gone.json");
  EXPECT_NE(error_of([&] { t.prepare(gone); }).find("no data file found (tried " + t.dir + "/nope.jsonl)"), std::string::npos);
}

TEST(Dataset, TaskDefinitionsAreValidated) {
  auto err = [](json j) { return error_of([&] { parse_task_spec(j, "tasks/bad.json"); }); };
  json ok = {{"task", "t"}, {"output_type", "multiple_choice"}, {"dataset", {{"path", "x"}, {"format", "jsonl"}}},
             {"doc_to_text", "x"}, {"doc_to_choice", "{{c}}"}, {"doc_to_target", "0"}};
  EXPECT_EQ(err(ok), "no error");
  json j = ok;
  j["output_type"] = "ranking";
  EXPECT_NE(err(j).find("'output_type' is 'ranking'"), std::string::npos);
  j = ok;
  j["metrics"] = {"bleu"};
  EXPECT_NE(err(j).find("metric 'bleu' is not available for multiple_choice tasks"), std::string::npos);
  j = ok;
  j["doc_to_txet"] = "typo";
  EXPECT_NE(err(j).find("unknown key 'doc_to_txet'"), std::string::npos);
  j = ok;
  j["doc_to_text"] = "{{ q ";
  EXPECT_NE(err(j).find("tasks/bad.json: doc_to_text"), std::string::npos);
  j = ok;
  j.erase("dataset");
  EXPECT_NE(err(j).find("missing key 'dataset'"), std::string::npos);
}

}  // namespace
}  // namespace qs::eval
