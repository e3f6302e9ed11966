// The sweep that finds the knee: double the load until a run breaks the SLO, then bisect between
// the last run within it and the first beyond it, until they are one step (concurrency) or 5%
// (rate) apart. The knee is the highest load that stayed within the SLO. Pure: runs are reported.
#pragma once

#include <optional>

namespace ballast::load {

class Sweep {
 public:
  // `whole` for concurrency (whole numbers), false for rates.
  Sweep(double start, double max, bool whole) : start_(start), max_(max), whole_(whole) {}

  // The next load to run, or nothing when the knee is known.
  std::optional<double> next() const;
  void report(double load, bool within_slo);
  // The highest load within the SLO; nothing when even the first run broke it.
  std::optional<double> knee() const { return good_; }
  // True when the largest load allowed still met the SLO: the knee is beyond it.
  bool capped() const { return good_ && !bad_ && *good_ >= max_; }

 private:
  double start_, max_;
  bool whole_;
  std::optional<double> good_, bad_;
};

}  // namespace ballast::load
