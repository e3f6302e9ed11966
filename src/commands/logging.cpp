#include <cstdio>
#include <mutex>

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include "commands/commands.hpp"
#include "observability/access_log.hpp"

namespace ballast {

namespace {

// The server log on stderr. A line that cannot be written (the reader went away: SIGPIPE is
// ignored, so the write fails with EPIPE) is counted and dropped; serving goes on.
class StderrSink : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t line;
    formatter_->format(msg, line);
    if (std::fwrite(line.data(), 1, line.size(), stderr) != line.size() || std::fflush(stderr) != 0) {
      server_log_lines_dropped.fetch_add(1, std::memory_order_relaxed);
      std::clearerr(stderr);
    }
  }
  void flush_() override { std::fflush(stderr); }
};

}  // namespace

void setup_logging(const std::string& level) {
  auto logger = std::make_shared<spdlog::logger>("ballast", std::make_shared<StderrSink>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(level));
}

}  // namespace ballast
