// `ballast load`: one closed- or open-loop run, or a sweep that finds the knee; a line per run, the
// knee and the limits to set, and optionally the JSON and HTML reports.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <random>

#include <fmt/format.h>

#include "commands/commands.hpp"
#include "common/json_writer.hpp"
#include "load/generator.hpp"
#include "load/report.hpp"
#include "load/report_parts.hpp"
#include "load/sweep.hpp"
#include "policy/url.hpp"

namespace ballast {

namespace {

// About `tokens` tokens of ordinary words (a token is ~4 characters of English), from `seed`.
std::string prompt(int tokens, uint64_t seed) {
  static constexpr const char* kWords[] = {
      "the",   "model",   "answers", "a",   "question", "about", "load", "under", "steady", "traffic",
      "while", "clients", "wait",    "for", "tokens",   "and",   "time", "outs",  "matter", "most"};
  std::mt19937_64 rng(seed);
  std::string out;
  for (int i = 0; i < tokens; ++i) {
    if (i) out += ' ';
    out += kWords[rng() % std::size(kWords)];
  }
  return out;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

// Now, UTC, as ISO 8601 to the second.
std::string utc_now() {
  std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char out[32];
  std::strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return out;
}

// The longest window a sweep chooses by itself.
constexpr Millis kLongestWindow{120'000};

}  // namespace

std::string command_line(int argc, const char* const* argv) {
  std::string line;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i) line += ' ';
    bool plain = !arg.empty() && arg.find_first_not_of(
                                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789_./:=,@%+-") == std::string_view::npos;
    if (plain) {
      line += arg;
      continue;
    }
    line += '\'';
    for (char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

int run_load(const LoadArgs& a) {
  load::Request req;
  std::string url_error;
  auto target = parse_url(a.target, &url_error);
  if (!target || target->host.empty()) {
    std::fprintf(stderr,
                 "ballast load: --target %s: %s (a base URL, as a client's base_url: http://HOST:PORT/v1)\n",
                 redact_credentials(a.target).c_str(), url_error.empty() ? "no host" : url_error.c_str());
    return 2;
  }
  // The path goes before any query the base URL carries (Azure's api-version, say).
  req.url = fmt::format("{}://{}:{}{}/chat/completions{}{}", target->scheme, target->host, target->port,
                        target->path, target->query.empty() ? "" : "?", target->query);
  req.headers.push_back("Content-Type: application/json");
  if (!a.api_key_env.empty()) {
    const char* key = std::getenv(a.api_key_env.c_str());
    if (!key || !*key) {
      std::fprintf(stderr, "ballast load: %s is not set\n", a.api_key_env.c_str());
      return 2;
    }
    req.headers.push_back(fmt::format("Authorization: Bearer {}", key));
  }
  JsonWriter body;
  body.begin_object().field("model", a.model).key("messages").begin_array();
  body.begin_object().field("role", "user").field("content", prompt(a.prompt_tokens, a.seed)).end_object();
  body.end_array().field("max_tokens", a.max_tokens).field("stream", a.stream);
  body.end_object();
  req.body = body.take();
  req.stream = a.stream;
  req.timeout = Millis(static_cast<int64_t>(std::llround(a.timeout_s * 1000)));

  load::Report rep;
  rep.command = a.command;
  rep.version = a.version;
  rep.started = utc_now();
  rep.target = a.target;
  rep.model = a.model;
  rep.stream = a.stream;
  rep.sweep = a.sweep;
  rep.slo = {a.slo_ttft_ms, a.slo_latency_ms, a.max_error_rate};
  const bool open = a.rate > 0;
  const bool progress = ::isatty(STDERR_FILENO) != 0;
  load::RunSpec spec;
  spec.open = open;
  spec.seed = a.seed;
  spec.progress = progress;
  spec.respect_retry_after = a.respect_retry_after;
  spec.duration = Millis(static_cast<int64_t>(std::llround((a.duration_s > 0 ? a.duration_s
                                                            : a.sweep        ? 5
                                                                             : 10) *
                                                           1000)));

  const auto began = Clock::now();
  auto one = [&](double load_value) {
    spec.load = load_value;
    spec.seed = a.seed + rep.runs.size();  // each run its own arrivals, the same for the same --seed
    load::RunStats r = load::run(req, spec);
    std::string breach = load::slo_breach(r, rep.slo);
    std::printf("%s\n", load::run_line(r, breach).c_str());
    std::fflush(stdout);
    rep.runs.push_back(std::move(r));
    rep.breaches.push_back(breach);
    return breach.empty();
  };

  if (!a.sweep) {
    one(open ? a.rate : a.concurrency);
  } else {
    double start = open ? a.rate : (a.concurrency > 0 ? a.concurrency : 1);
    // With an SLO, the knee is the highest load within it; without one, where more load stops
    // buying throughput (load/sweep.hpp).
    const bool own_slo = rep.slo.ttft_ms > 0 || rep.slo.latency_ms > 0;
    rep.knee_rule = own_slo ? "slo" : "throughput";
    load::Sweep sweep(start, open ? 100000 : 1024, !open,
                      own_slo ? load::Sweep::Goal::slo : load::Sweep::Goal::throughput);
    if (!own_slo)
      std::printf(
          "(no --slo-ttft or --slo-latency: the knee is the smallest load that reaches 95%% of the best "
          "throughput, with p50 latency within 1.5× the lightest load's and errors ≤ %.1f%%)\n",
          rep.slo.max_error_rate * 100);
    bool lengthened = false;
    while (auto next = sweep.next()) {
      bool within = one(*next);
      if (rep.runs.size() == 1 && a.duration_s <= 0 && !lengthened) {
        lengthened = true;
        // Each run should hold a good number of answers per worker, or its figures shake by a
        // whole round: windows of at least ten answers at the lightest load's latency.
        auto needed =
            Millis(static_cast<int64_t>(std::ceil(10 * load::ms(rep.runs[0].latency.percentile(50)))));
        if (needed > spec.duration) {
          spec.duration = std::min(needed, kLongestWindow);
          std::printf(
              "(an answer takes %.1f s: the runs last %.0f s, about ten answers each; --duration sets it)\n",
              load::ms(rep.runs[0].latency.percentile(50)) / 1000,
              std::chrono::duration<double>(spec.duration).count());
          rep.runs.clear();
          rep.breaches.clear();
          sweep = load::Sweep(start, open ? 100000 : 1024, !open,
                              own_slo ? load::Sweep::Goal::slo : load::Sweep::Goal::throughput);
          continue;
        }
      }
      const load::RunStats& r = rep.runs.back();
      sweep.report({*next, within, r.sustained_throughput(), load::ms(r.latency.percentile(50))});
    }
    rep.knee = sweep.knee();
    rep.knee_capped = sweep.capped();
    std::printf("\n%s", load::summary(rep).c_str());
  }
  for (const auto& r : rep.runs) {
    if (r.mode == "closed" && r.ok > 0 && r.ok_in_window < 3 * static_cast<uint64_t>(r.load)) {
      std::printf(
          "note: at %s the window held fewer than three answers per worker; its figures are coarse. A longer "
          "--duration makes them firm.\n",
          load::load_name(r).c_str());
      break;
    }
  }
  rep.wall_s = std::chrono::duration<double>(Clock::now() - began).count();
  if (!a.json_file.empty() && !write_file(a.json_file, load::to_json(rep) + "\n")) return 2;
  if (!a.html_file.empty() && !write_file(a.html_file, load::to_html(rep))) return 2;
  // A run that broke its SLO, or a sweep that found no load within it, is a failure a script sees.
  if (!a.sweep && !rep.breaches.front().empty()) return 1;
  if (a.sweep && !rep.knee) return 1;
  return 0;
}

}  // namespace ballast
