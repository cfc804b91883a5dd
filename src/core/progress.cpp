#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace qs {

namespace {
std::atomic<bool> g_quiet{false};
}

void Progress::set_quiet(bool quiet) { g_quiet = quiet; }
bool Progress::quiet() { return g_quiet; }

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() { finish(); }

void Progress::set_total(int64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ = total;
}

void Progress::add(int64_t n) {
  done_.fetch_add(n, std::memory_order_relaxed);
  if (g_quiet) return;
  std::unique_lock<std::mutex> lock(mu_, std::try_to_lock);
  if (!lock.owns_lock() || finished_) return;
  double t = clock_.seconds();
  if (tty_) {
    if (t - last_draw_ >= 0.1) draw(false);
  } else {
    int decile = total_ > 0 ? static_cast<int>(10 * done_.load() / total_) : -1;
    if (decile != last_decile_ || t - last_draw_ >= 10.0) {
      last_decile_ = decile;
      draw(false);
    }
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (!g_quiet) draw(true);
}

void Progress::draw(bool final) {
  last_draw_ = clock_.seconds();
  const int64_t done = done_.load();
  const double t = clock_.seconds();
  const double rate = t > 0 ? done / t : 0;
  // Byte counts read better as sizes.
  const bool bytes = unit_ == "B";
  auto count = [&](int64_t v) { return bytes ? format_bytes(static_cast<double>(v)) : std::to_string(v); };
  char rate_buf[64];
  if (bytes) std::snprintf(rate_buf, sizeof rate_buf, "%s/s", format_bytes(rate).c_str());
  else std::snprintf(rate_buf, sizeof rate_buf, rate >= 100 ? "%.0f %s/s" : "%.2f %s/s", rate, unit_.c_str());
  std::string line = label_;
  if (total_ > 0) {
    double frac = std::min(1.0, static_cast<double>(done) / total_);
    if (tty_) {
      const int width = 30;
      int fill = static_cast<int>(frac * width);
      line += " [" + std::string(fill, '#') + std::string(width - fill, '.') + "]";
    }
    char buf[160];
    std::snprintf(buf, sizeof buf, " %s/%s (%3.0f%%)", count(done).c_str(), count(total_).c_str(), 100 * frac);
    line += buf;
    line += " ";
    line += rate_buf;
    if (final) line.append(", ").append(format_duration(t));
    else if (rate > 0) line.append(", ETA ").append(format_duration((total_ - done) / rate));
  } else {
    line += " ";
    line += count(done);
    if (!bytes) line.append(" ").append(unit_);
    line.append(", ").append(rate_buf);
    if (final) line.append(", ").append(format_duration(t));
  }
  if (tty_) std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024 && u < 4) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

std::string format_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  return buf;
}

}  // namespace qs
