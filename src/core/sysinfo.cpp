#include "core/sysinfo.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace qs {

namespace {
// Reads "Key:   123 kB" from a /proc file; returns bytes or -1.
int64_t read_kb_field(const char* file, const char* key) {
  std::ifstream in(file);
  std::string line;
  const size_t klen = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, klen, key) == 0 && line.size() > klen && line[klen] == ':') {
      long long kb = 0;
      if (std::sscanf(line.c_str() + klen + 1, "%lld", &kb) == 1) return static_cast<int64_t>(kb) * 1024;
    }
  }
  return -1;
}
}  // namespace

int64_t peak_rss_bytes() { return read_kb_field("/proc/self/status", "VmHWM"); }
int64_t current_rss_bytes() { return read_kb_field("/proc/self/status", "VmRSS"); }
int64_t total_memory_bytes() { return read_kb_field("/proc/meminfo", "MemTotal"); }

}  // namespace qs
