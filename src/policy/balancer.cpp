#include "policy/balancer.hpp"

#include <climits>
#include <vector>

namespace ballast {

namespace {

// One weighted random choice among `pool` (indices into candidates).
size_t weighted(std::span<const Candidate> c, const std::vector<int>& pool, double r) {
  double total = 0;
  for (int i : pool) total += c[static_cast<size_t>(i)].weight;
  double x = r * total;
  for (size_t k = 0; k < pool.size(); ++k) {
    x -= c[static_cast<size_t>(pool[k])].weight;
    if (x < 0) return k;
  }
  return pool.size() - 1;
}

int choose(std::span<const Candidate> c, std::vector<int> pool, const std::function<double()>& unit) {
  if (pool.size() == 1) return pool[0];
  size_t first = weighted(c, pool, unit());
  int a = pool[first];
  pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(first));
  int b = pool[weighted(c, pool, unit())];
  // Least outstanding per unit of weight; the first draw wins a tie, so weights still decide
  // when both are idle.
  auto load = [&](int i) {
    const Candidate& x = c[static_cast<size_t>(i)];
    return (x.outstanding + 1) / x.weight;
  };
  return load(b) < load(a) ? b : a;
}

}  // namespace

int pick_among(std::span<const Candidate> candidates, const std::function<bool(size_t)>& eligible,
               const std::function<double()>& unit) {
  std::vector<int> pool;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const auto& c = candidates[i];
    if (c.available && c.weight > 0 && eligible(i)) pool.push_back(static_cast<int>(i));
  }
  if (pool.empty()) return -1;
  return choose(candidates, std::move(pool), unit);
}

int pick_endpoint(std::span<const Candidate> candidates, const std::function<double()>& unit) {
  int tier = INT_MAX;
  for (const auto& c : candidates) {
    if (c.available && c.weight > 0 && c.priority < tier) tier = c.priority;
  }
  if (tier == INT_MAX) return -1;
  return pick_among(
      candidates, [&](size_t i) { return candidates[i].priority == tier; }, unit);
}

}  // namespace ballast
