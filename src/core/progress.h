// Progress for long work, on stderr. On a terminal: a bar with count, rate and ETA redrawn
// in place. Otherwise (logs, CI): a plain line every ~10% or 10 seconds. Quiet mode prints
// nothing. Thread-safe add().
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

#include "core/timer.h"

namespace qs {

class Progress {
 public:
  // total <= 0: unknown total (no percentage or ETA). `unit` names what is counted.
  Progress(std::string label, int64_t total, std::string unit = "it");
  ~Progress();
  void add(int64_t n = 1);
  void set_total(int64_t total);
  // Final line with the totals; called by the destructor if not called before.
  void finish();

  static void set_quiet(bool quiet);  // process-wide, from --quiet
  static bool quiet();

 private:
  void draw(bool final);
  std::string label_, unit_;
  int64_t total_;
  std::atomic<int64_t> done_{0};
  Stopwatch clock_;
  double last_draw_ = -1;
  int last_decile_ = -1;
  bool finished_ = false;
  bool tty_;
  std::mutex mu_;
};

// "1.2 GiB", "350 MiB", "12 KiB", "512 B"
std::string format_bytes(double bytes);
// "1h02m", "3m05s", "12.3s"
std::string format_duration(double seconds);

}  // namespace qs
