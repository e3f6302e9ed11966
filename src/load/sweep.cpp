#include "load/sweep.hpp"

#include <algorithm>
#include <cmath>

namespace ballast::load {

bool Sweep::close(double lo, double hi) const {
  double gap = hi - lo;
  return whole_ ? gap <= 1 : gap <= std::max(lo * 0.05, 0.01);
}

std::optional<double> Sweep::between(double lo, double hi) const {
  if (close(lo, hi)) return std::nullopt;
  double mid = (lo + hi) / 2;
  return whole_ ? std::floor(mid) : mid;
}

void Sweep::report(const Point& point) {
  auto at =
      std::find_if(points_.begin(), points_.end(), [&](const Point& p) { return p.load >= point.load; });
  if (at != points_.end() && at->load == point.load)
    *at = point;
  else
    points_.insert(at, point);
}

bool Sweep::acceptable(const Point& p) const {
  if (!p.within_slo) return false;
  if (goal_ == Goal::slo) return true;
  const Point& lightest = points_.front();
  return p.p50_ms <= kSlowdown * lightest.p50_ms;
}

std::optional<double> Sweep::next() const {
  if (points_.empty()) return start_;
  if (!acceptable(points_.front())) return std::nullopt;  // the first run already broke it
  return goal_ == Goal::slo ? next_slo() : next_throughput();
}

std::optional<double> Sweep::next_slo() const {
  // The highest run within the SLO and the lowest run above it that broke it.
  std::optional<double> good, bad;
  for (const Point& p : points_)
    if (p.within_slo) good = p.load;
  for (const Point& p : points_)
    if (!p.within_slo && p.load > *good) {
      bad = p.load;
      break;
    }
  if (!bad) return *good >= max_ ? std::nullopt : std::optional(std::min(max_, *good * 2));
  return between(*good, *bad);
}

std::optional<double> Sweep::next_throughput() const {
  // The highest acceptable run, the one below it, and the first unacceptable run above it.
  const Point* top = nullptr;
  const Point* below_top = nullptr;
  for (const Point& p : points_)
    if (acceptable(p)) {
      below_top = top;
      top = &p;
    }
  const Point* beyond = nullptr;
  for (const Point& p : points_)
    if (p.load > top->load && !acceptable(p)) {
      beyond = &p;
      break;
    }
  if (!beyond) {
    // Still doubling while throughput grows; at the largest load allowed, that load is the knee.
    bool growing = !below_top || top->throughput >= kGrowth * below_top->throughput;
    if (growing) return top->load < max_ ? std::optional(std::min(max_, top->load * 2)) : std::nullopt;
  } else if (beyond->throughput >= kGrowth * top->throughput) {
    // Latency or errors ended the doubling while throughput was still growing: find how far the
    // acceptable loads reach first.
    if (auto mid = between(top->load, beyond->load)) return mid;
  }
  // The smallest acceptable load at 95% of the best; bisect below it.
  auto knee = knee_throughput();
  const Point* under = nullptr;
  for (const Point& p : points_)
    if (p.load < *knee) under = &p;
  if (!under) return std::nullopt;
  return between(under->load, *knee);
}

std::optional<double> Sweep::knee_throughput() const {
  double best = 0;
  for (const Point& p : points_)
    if (acceptable(p)) best = std::max(best, p.throughput);
  for (const Point& p : points_)
    if (acceptable(p) && p.throughput >= kEnough * best) return p.load;
  return std::nullopt;
}

std::optional<double> Sweep::knee() const {
  if (points_.empty() || !acceptable(points_.front())) return std::nullopt;
  if (goal_ == Goal::throughput) return capped() ? points_.back().load : knee_throughput();
  std::optional<double> good;
  for (const Point& p : points_)
    if (p.within_slo) good = p.load;
  return good;
}

bool Sweep::capped() const {
  if (points_.empty() || !acceptable(points_.front())) return false;
  const Point& last = points_.back();
  if (last.load < max_ || !acceptable(last)) return false;
  if (goal_ == Goal::slo) return true;
  // Still growing at the largest load allowed.
  for (auto it = points_.rbegin() + 1; it != points_.rend(); ++it)
    if (acceptable(*it)) return last.throughput >= kGrowth * it->throughput;
  return true;
}

}  // namespace ballast::load
