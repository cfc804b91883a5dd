#include "eval/task.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/files.h"

namespace qs::eval {

using json = nlohmann::json;

const char* output_type_name(OutputType t) {
  switch (t) {
    case OutputType::MultipleChoice: return "multiple_choice";
    case OutputType::Loglikelihood: return "loglikelihood";
    case OutputType::LoglikelihoodRolling: return "loglikelihood_rolling";
    case OutputType::GenerateUntil: return "generate_until";
  }
  return "?";
}

namespace {

const std::set<std::string> kTaskKeys = {
    "task", "version", "about", "output_type", "dataset", "fewshot_dataset", "fewshot_sampler", "num_fewshot",
    "process_docs", "description", "doc_to_text", "doc_to_choice", "doc_to_target", "multiple_input",
    "target_delimiter", "fewshot_delimiter", "metrics", "primary_metric", "generation_kwargs", "filter_list",
    "exact_match", "units_text", "engine_perplexity", "lm_eval", "notes"};

std::string str_field(const json& j, const char* key, const std::string& file, const std::string& dflt, bool required = false) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) fail(file, ": missing key '", key, "'");
    return dflt;
  }
  if (!it->is_string()) fail(file, ": key '", key, "' must be a string");
  return it->get<std::string>();
}

Template template_field(const json& j, const char* key, const std::string& file, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) fail(file, ": missing key '", key, "'");
    return {};
  }
  if (it->is_array()) {
    // lm-eval also writes a list of templates (doc_to_choice: ["{{answerA}}", ...]) or of
    // literal choices (["no", "yes"]): one template producing the list.
    std::string expr = "{{ [";
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) fail(file, ": ", key, "[", i, "] must be a string");
      const std::string s = (*it)[i].get<std::string>();
      if (i) expr += ", ";
      if (s.size() >= 4 && s.compare(0, 2, "{{") == 0 && s.compare(s.size() - 2, 2, "}}") == 0) {
        expr += "(" + s.substr(2, s.size() - 4) + ")";
      } else {
        std::string lit = "'";
        for (char c : s) {
          if (c == '\\' || c == '\'') lit += '\\';
          lit += c;
        }
        expr += lit + "'";
      }
    }
    return Template::compile(expr + "] }}", file + ": " + key);
  }
  if (!it->is_string()) fail(file, ": key '", key, "' must be a template string");
  return Template::compile(it->get<std::string>(), file + ": " + key);
}

std::vector<SourceSpec> sources_field(const json& j, const char* key, const std::string& file, bool required) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) fail(file, ": missing key '", key, "'");
    return {};
  }
  std::vector<SourceSpec> out;
  if (it->is_object()) {
    out.push_back(parse_source_spec(*it, file + ": " + key));
  } else if (it->is_array() && !it->empty()) {
    for (size_t i = 0; i < it->size(); ++i) out.push_back(parse_source_spec((*it)[i], file + ": " + key + "[" + std::to_string(i) + "]"));
  } else {
    fail(file, ": '", key, "' must be a source object or a non-empty list of them");
  }
  return out;
}

bool metric_allowed(OutputType t, const std::string& m) {
  switch (t) {
    case OutputType::MultipleChoice: return m == "acc" || m == "acc_norm";
    case OutputType::Loglikelihood: return m == "acc" || m == "perplexity";
    case OutputType::LoglikelihoodRolling: return m == "word_perplexity" || m == "byte_perplexity" || m == "bits_per_byte";
    case OutputType::GenerateUntil: return m == "exact_match";
  }
  return false;
}

// Replaces ${name} placeholders in every string of a JSON value.
json substitute(const json& j, const std::map<std::string, std::string>& vars) {
  if (j.is_string()) {
    std::string s = j.get<std::string>();
    for (const auto& [k, v] : vars) s = py_replace(s, "${" + k + "}", v);
    return s;
  }
  if (j.is_array()) {
    json out = json::array();
    for (const auto& x : j) out.push_back(substitute(x, vars));
    return out;
  }
  if (j.is_object()) {
    json out = json::object();
    for (auto it = j.begin(); it != j.end(); ++it) out[it.key()] = substitute(it.value(), vars);
    return out;
  }
  return j;
}

}  // namespace

TaskSpec parse_task_spec(const json& j, const std::string& file) {
  if (!j.is_object()) fail(file, ": expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kTaskKeys.count(it.key())) fail(file, ": unknown key ", quote(it.key()), " (see tasks/README.md for the keys)");
  TaskSpec t;
  t.file = file;
  t.name = str_field(j, "task", file, "", true);
  if (t.name.empty()) fail(file, ": 'task' is empty");
  if (auto it = j.find("version"); it != j.end()) t.version = it->is_string() ? it->get<std::string>() : it->dump();
  t.about = str_field(j, "about", file, "");
  const std::string type = str_field(j, "output_type", file, "", true);
  if (type == "multiple_choice") t.output_type = OutputType::MultipleChoice;
  else if (type == "loglikelihood") t.output_type = OutputType::Loglikelihood;
  else if (type == "loglikelihood_rolling") t.output_type = OutputType::LoglikelihoodRolling;
  else if (type == "generate_until") t.output_type = OutputType::GenerateUntil;
  else fail(file, ": 'output_type' is ", quote(type), ", expected multiple_choice, loglikelihood, loglikelihood_rolling or generate_until");
  t.dataset = sources_field(j, "dataset", file, true);
  t.fewshot_dataset = sources_field(j, "fewshot_dataset", file, false);
  t.fewshot_sampler = str_field(j, "fewshot_sampler", file, "random");
  if (t.fewshot_sampler != "random" && t.fewshot_sampler != "first_n")
    fail(file, ": 'fewshot_sampler' is ", quote(t.fewshot_sampler), ", expected random or first_n");
  if (auto it = j.find("num_fewshot"); it != j.end()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > 1000)
      fail(file, ": 'num_fewshot' must be an integer in 0..1000");
    t.num_fewshot = it->get<int>();
  }
  if (auto it = j.find("process_docs"); it != j.end()) {
    if (!it->is_object()) fail(file, ": 'process_docs' must be an object of field -> template");
    for (auto f = it->begin(); f != it->end(); ++f) {
      if (!f->is_string()) fail(file, ": process_docs.", f.key(), " must be a template string");
      t.process_docs.emplace_back(f.key(), Template::compile(f->get<std::string>(), file + ": process_docs." + f.key()));
    }
  }
  t.description = template_field(j, "description", file, false);
  t.doc_to_text = template_field(j, "doc_to_text", file, t.output_type != OutputType::LoglikelihoodRolling);
  t.doc_to_target = template_field(j, "doc_to_target", file, true);
  t.doc_to_choice = template_field(j, "doc_to_choice", file, t.output_type == OutputType::MultipleChoice);
  if (auto it = j.find("multiple_input"); it != j.end()) {
    if (!it->is_boolean()) fail(file, ": 'multiple_input' must be true or false");
    t.multiple_input = it->get<bool>();
  }
  t.target_delimiter = str_field(j, "target_delimiter", file, " ");
  t.fewshot_delimiter = str_field(j, "fewshot_delimiter", file, "\n\n");
  if (auto it = j.find("metrics"); it != j.end()) {
    if (!it->is_array() || it->empty()) fail(file, ": 'metrics' must be a non-empty list");
    for (const auto& m : *it) {
      if (!m.is_string() || !metric_allowed(t.output_type, m.get<std::string>()))
        fail(file, ": metric ", quote(m.is_string() ? m.get<std::string>() : m.dump()), " is not available for ",
             output_type_name(t.output_type), " tasks");
      t.metrics.push_back(m.get<std::string>());
    }
  } else {
    switch (t.output_type) {
      case OutputType::MultipleChoice: t.metrics = {"acc", "acc_norm"}; break;
      case OutputType::Loglikelihood: t.metrics = {"perplexity", "acc"}; break;
      case OutputType::LoglikelihoodRolling: t.metrics = {"word_perplexity", "byte_perplexity", "bits_per_byte"}; break;
      case OutputType::GenerateUntil: t.metrics = {"exact_match"}; break;
    }
  }
  t.primary_metric = str_field(j, "primary_metric", file, t.metrics.front() == "perplexity" && t.metrics.size() > 1 ? "acc" : t.metrics.front());
  if (std::find(t.metrics.begin(), t.metrics.end(), t.primary_metric) == t.metrics.end())
    fail(file, ": 'primary_metric' ", quote(t.primary_metric), " is not one of the task's metrics");
  if (auto it = j.find("generation_kwargs"); it != j.end()) {
    if (!it->is_object()) fail(file, ": 'generation_kwargs' must be an object");
    for (auto g = it->begin(); g != it->end(); ++g) {
      if (g.key() == "until") {
        if (!g->is_array()) fail(file, ": generation_kwargs.until must be a list of strings");
        for (const auto& s : *g) {
          if (!s.is_string() || s.get<std::string>().empty()) fail(file, ": generation_kwargs.until holds a non-string or empty stop sequence");
          t.until.push_back(s.get<std::string>());
        }
      } else if (g.key() == "max_gen_toks") {
        if (!g->is_number_integer() || g->get<int64_t>() < 1 || g->get<int64_t>() > 100000)
          fail(file, ": generation_kwargs.max_gen_toks must be an integer in 1..100000");
        t.max_gen_toks = g->get<int>();
      } else if (g.key() == "do_sample") {
        if (!g->is_boolean() || g->get<bool>()) fail(file, ": generation_kwargs.do_sample: only greedy decoding (false) is supported");
      } else if (g.key() != "temperature") {
        fail(file, ": generation_kwargs: unknown key ", quote(g.key()));
      }
    }
  }
  if (auto it = j.find("filter_list"); it != j.end()) {
    if (!it->is_array()) fail(file, ": 'filter_list' must be a list");
    for (size_t i = 0; i < it->size(); ++i) {
      const json& f = (*it)[i];
      const std::string where = file + ": filter_list[" + std::to_string(i) + "]";
      if (!f.is_object()) fail(where, ": expected an object with 'name' and 'regex_pattern'");
      FilterSpec fs;
      fs.name = str_field(f, "name", where, "", true);
      fs.pattern = str_field(f, "regex_pattern", where, "", true);
      fs.regex = PyRegex::compile(fs.pattern, where + ".regex_pattern");
      fs.fallback = str_field(f, "fallback", where, "[invalid]");
      if (auto g = f.find("group_select"); g != f.end()) {
        if (!g->is_number_integer()) fail(where, ": 'group_select' must be an integer");
        fs.group_select = g->get<int>();
      }
      t.filters.push_back(std::move(fs));
    }
  }
  if (auto it = j.find("exact_match"); it != j.end()) {
    if (!it->is_object()) fail(file, ": 'exact_match' must be an object");
    t.exact_match.ignore_case = it->value("ignore_case", false);
    t.exact_match.ignore_punctuation = it->value("ignore_punctuation", false);
    if (auto r = it->find("regexes_to_ignore"); r != it->end()) {
      if (!r->is_array()) fail(file, ": exact_match.regexes_to_ignore must be a list");
      for (const auto& p : *r) {
        if (!p.is_string()) fail(file, ": exact_match.regexes_to_ignore holds a non-string");
        t.exact_match.regex_sources.push_back(p.get<std::string>());
        t.exact_match.regexes_to_ignore.push_back(PyRegex::compile(p.get<std::string>(), file + ": exact_match.regexes_to_ignore"));
      }
    }
  }
  t.units_text = template_field(j, "units_text", file, false);
  if (auto it = j.find("engine_perplexity"); it != j.end()) {
    if (!it->is_boolean()) fail(file, ": 'engine_perplexity' must be true or false");
    t.engine_perplexity = it->get<bool>();
  }
  if (t.output_type == OutputType::GenerateUntil && t.filters.empty()) {
    FilterSpec none;
    none.name = "none";
    t.filters.push_back(std::move(none));
  }
  return t;
}

void TaskRegistry::add_file(const std::string& path) {
  const json j = read_json_file(path);
  if (!j.is_object()) fail(path, ": expected a JSON object (a task or a group definition)");
  auto add_task = [&](std::unique_ptr<TaskSpec> t) {
    if (tasks_.count(t->name) || groups_.count(t->name))
      fail(path, ": task ", quote(t->name), " is already defined (", tasks_.count(t->name) ? tasks_[t->name]->file : "a group", ")");
    order_.push_back(t->name);
    tasks_[t->name] = std::move(t);
  };
  if (!j.contains("group")) {
    add_task(std::make_unique<TaskSpec>(parse_task_spec(j, path)));
    return;
  }
  GroupSpec g;
  g.file = path;
  g.name = str_field(j, "group", path, "", true);
  g.about = str_field(j, "about", path, "");
  if (tasks_.count(g.name) || groups_.count(g.name)) fail(path, ": group ", quote(g.name), " is already defined");
  const std::string prefix = str_field(j, "task_prefix", path, g.name + "_");
  auto subtasks = j.find("subtasks");
  if (subtasks == j.end() || !subtasks->is_object() || subtasks->empty())
    fail(path, ": a group needs 'subtasks': {name: category, ...}");
  auto tmpl = j.find("task_template");
  if (tmpl == j.end() || !tmpl->is_object()) fail(path, ": a group needs 'task_template': {...}");
  std::map<std::string, std::string> category_groups;
  if (auto c = j.find("category_groups"); c != j.end()) {
    if (!c->is_object()) fail(path, ": 'category_groups' must be an object of category -> group name");
    for (auto it = c->begin(); it != c->end(); ++it) {
      if (!it->is_string()) fail(path, ": category_groups.", it.key(), " must be a string");
      category_groups[it.key()] = it->get<std::string>();
    }
  }
  for (auto it = subtasks->begin(); it != subtasks->end(); ++it) {
    if (!it->is_string()) fail(path, ": subtasks.", it.key(), " must be a category name (string)");
    const std::string subject = it.key(), category = it->get<std::string>();
    std::string words = py_replace(subject, "_", " ");
    json spec = substitute(*tmpl, {{"subject", subject}, {"subject_words", words}, {"category", category}});
    spec["task"] = prefix + subject;
    auto t = std::make_unique<TaskSpec>(parse_task_spec(spec, path + " (" + prefix + subject + ")"));
    t->groups.push_back(g.name);
    g.tasks.push_back(t->name);
    if (auto cg = category_groups.find(category); cg != category_groups.end()) {
      t->groups.push_back(cg->second);
      g.subgroups[cg->second].push_back(t->name);
    } else if (!category_groups.empty()) {
      fail(path, ": subtasks.", subject, ": category ", quote(category), " has no entry in 'category_groups'");
    }
    add_task(std::move(t));
  }
  for (const auto& [sub, members] : g.subgroups) {
    if (tasks_.count(sub) || groups_.count(sub)) fail(path, ": group ", quote(sub), " is already defined");
    GroupSpec sg;
    sg.name = sub;
    sg.file = path;
    sg.tasks = members;
    groups_[sub] = sg;
  }
  groups_[g.name] = std::move(g);
}

TaskRegistry TaskRegistry::load(const std::string& dir) {
  require(is_directory(dir), dir, ": task directory not found (pass --task-dir)");
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  TaskRegistry r;
  for (const auto& f : files) r.add_file(f);
  return r;
}

bool TaskRegistry::has(const std::string& name) const { return tasks_.count(name) || groups_.count(name); }

std::vector<std::string> TaskRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, t] : tasks_) out.push_back(n);
  for (const auto& [n, g] : groups_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

const TaskSpec& TaskRegistry::task(const std::string& name) const {
  auto it = tasks_.find(name);
  if (it == tasks_.end()) fail("unknown task ", quote(name));
  return *it->second;
}

std::vector<const TaskSpec*> TaskRegistry::resolve(const std::vector<std::string>& names) {
  std::vector<const TaskSpec*> out;
  std::set<std::string> seen;
  auto push = [&](const std::string& n) {
    if (seen.insert(n).second) out.push_back(tasks_.at(n).get());
  };
  for (const auto& raw : names) {
    const std::string name = py_strip(raw);
    if (name.empty()) continue;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".json") == 0) {
      const size_t before = order_.size();
      add_file(name);
      for (size_t i = before; i < order_.size(); ++i) push(order_[i]);
      continue;
    }
    if (auto g = groups_.find(name); g != groups_.end()) {
      for (const auto& t : g->second.tasks) push(t);
      continue;
    }
    if (tasks_.count(name)) {
      push(name);
      continue;
    }
    // Keep the list short: tasks outside groups, then the groups.
    std::string known;
    std::set<std::string> grouped;
    for (const auto& [gn, g] : groups_) grouped.insert(g.tasks.begin(), g.tasks.end());
    for (const auto& n : order_)
      if (!grouped.count(n)) known += (known.empty() ? "" : ", ") + n;
    for (const auto& [gn, g] : groups_) known += ", " + gn;
    fail("unknown task ", quote(name), "; known tasks: ", known, " (and mmlu_SUBJECT for each MMLU subject)");
  }
  if (out.empty()) fail("--tasks: no task given");
  return out;
}

std::string find_tasks_dir() {
  namespace fs = std::filesystem;
  auto ok = [](const fs::path& p) { return file_exists((p / "arc_easy.json").string()); };
  if (const char* env = std::getenv("QSTUDY_TASKS_DIR"); env && *env && is_directory(env)) return env;
  if (ok("tasks")) return fs::absolute("tasks").lexically_normal().string();
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = 0;
    fs::path dir = fs::path(buf).parent_path();
    for (int up = 0; up < 5 && !dir.empty(); ++up, dir = dir.parent_path())
      if (ok(dir / "tasks")) return (dir / "tasks").lexically_normal().string();
  }
#ifdef QSTUDY_SOURCE_TASKS_DIR
  if (ok(QSTUDY_SOURCE_TASKS_DIR)) return QSTUDY_SOURCE_TASKS_DIR;
#endif
  return "";
}

}  // namespace qs::eval
