// Process memory as the kernel reports it.
#pragma once

#include <cstdint>

namespace qs {

// Peak resident set size of this process so far (VmHWM), in bytes.
int64_t peak_rss_bytes();
// Current resident set size (VmRSS), in bytes.
int64_t current_rss_bytes();
// Total physical memory (MemTotal), in bytes.
int64_t total_memory_bytes();

}  // namespace qs
