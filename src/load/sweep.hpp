// The sweep that finds the knee. Pure: each run's figures are reported, the next load is asked for.
//
// With an SLO (`Goal::slo`): double the load until a run breaks the SLO, then bisect between the
// last run within it and the first beyond it, until they are one step (concurrency) or 5% (rate)
// apart. The knee is the highest load within the SLO.
//
// Without one (`Goal::throughput`), the knee is where more load stops buying throughput: the
// smallest load whose throughput is at least 95% of the best seen, among the loads that are
// acceptable (error rate within bounds, p50 latency within 1.5 × the lightest load's). The load
// doubles while throughput still grows by 5% or more and runs stay acceptable; then it bisects
// below the first load at 95% of the best, down to one step or 5%. When latency or errors end the
// doubling while throughput was still growing, it first bisects up towards that run, so that the
// best throughput within bounds is known. Against a server that runs C generations at once
// (closed loop), every load up to C adds throughput in proportion and every load beyond it adds
// only waiting: the knee is C.
#pragma once

#include <optional>
#include <vector>

namespace ballast::load {

class Sweep {
 public:
  enum class Goal { slo, throughput };

  struct Point {
    double load = 0;
    bool within_slo = false;  // Goal::slo: the run met the SLO; Goal::throughput: errors within bounds
    double throughput = 0;    // successful answers per second
    double p50_ms = 0;
  };

  // `whole` for concurrency (whole numbers), false for rates.
  Sweep(double start, double max, bool whole, Goal goal = Goal::slo)
      : start_(start), max_(max), whole_(whole), goal_(goal) {}

  // The next load to run, or nothing when the knee is known.
  std::optional<double> next() const;
  void report(const Point& point);
  // The knee; nothing when even the first run was not acceptable.
  std::optional<double> knee() const;
  // True when the largest load allowed was still worth it: the knee is beyond it.
  bool capped() const;

  // The bounds Goal::throughput works with.
  static constexpr double kEnough = 0.95;   // of the best throughput seen
  static constexpr double kGrowth = 1.05;   // a doubling that adds less has stopped paying
  static constexpr double kSlowdown = 1.5;  // p50 against the lightest load's

 private:
  bool close(double lo, double hi) const;
  std::optional<double> between(double lo, double hi) const;
  bool acceptable(const Point& p) const;
  std::optional<double> next_slo() const;
  std::optional<double> next_throughput() const;
  std::optional<double> knee_throughput() const;

  double start_, max_;
  bool whole_;
  Goal goal_;
  std::vector<Point> points_;  // sorted by load
};

}  // namespace ballast::load
