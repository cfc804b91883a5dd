#include "cli/shared_paths.h"

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "core/files.h"

namespace qs::cli {

std::string find_shared_dir() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("QSTUDY_SHARED_DIR"); env && *env && is_directory(env)) return env;
  if (is_directory("../shared/tokenizers")) return fs::absolute("../shared").lexically_normal().string();
  if (is_directory("shared/tokenizers")) return fs::absolute("shared").lexically_normal().string();
  // The binary usually sits in <project>/build/; ../shared is beside <project>.
  char buf[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    buf[n] = 0;
    fs::path dir = fs::path(buf).parent_path();
    for (int up = 0; up < 4 && !dir.empty(); ++up, dir = dir.parent_path()) {
      fs::path candidate = dir.parent_path() / "shared";
      if (is_directory((candidate / "tokenizers").string())) return candidate.lexically_normal().string();
    }
  }
  return "";
}

}  // namespace qs::cli
