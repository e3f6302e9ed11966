#include "policy/patience.hpp"

#include <algorithm>
#include <cmath>

namespace ballast {

PatienceBook::PatienceBook(const PatiencePolicy& policy) : policy_(policy) {}

PatienceBook::Entry& PatienceBook::entry(const std::string& client, const std::string& model, TimePoint now) {
  auto it = entries_.find(Key{client, model});
  if (it == entries_.end()) {
    if (entries_.size() >= policy_.max_entries) {
      // Bounded whatever the number of addresses that give up: the entry untouched longest goes.
      auto stalest = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
        return a.second.touched < b.second.touched;
      });
      entries_.erase(stalest);
    }
    it = entries_.emplace(Key{client, model}, Entry{}).first;
  }
  it->second.touched = now;
  return it->second;
}

void PatienceBook::expire(Entry& e, TimePoint now) const {
  while (!e.samples.empty() && now - e.samples.front().at > policy_.expiry) e.samples.pop_front();
}

void PatienceBook::gave_up(const std::string& client, const std::string& model, Duration waited,
                           TimePoint now) {
  Entry& e = entry(client, model, now);
  e.samples.push_back({waited, now});
  while (e.samples.size() > policy_.window) e.samples.pop_front();
  expire(e, now);
}

void PatienceBook::outlasted(const std::string& client, const std::string& model, Duration waited,
                             TimePoint now) {
  auto it = entries_.find(Key{client, model});
  if (it == entries_.end()) return;
  // Clearly shorter only: a client that gave up at 10 s may still be answered at 10.01 s, its
  // going not yet seen.
  std::erase_if(it->second.samples,
                [&](const Sample& s) { return s.waited * (1 + policy_.tolerance) < waited; });
  expire(it->second, now);
}

std::optional<PatienceBook::Learned> PatienceBook::judge(const Entry& e) const {
  if (e.samples.size() < policy_.agree) return std::nullopt;
  std::vector<Duration> waits;
  waits.reserve(e.samples.size());
  for (const auto& s : e.samples) waits.push_back(s.waited);
  std::sort(waits.begin(), waits.end());
  const Duration newest = e.samples.back().waited;
  // Each run of agreeing waits starts at some wait and takes every one up to `tolerance` above it.
  // The run the latest give-up belongs to wins when it is large enough (a changed patience takes
  // over as soon as it agrees with itself), else the largest; a lone outlier is never a run.
  size_t best = 0, best_count = 0;
  bool best_recent = false;
  for (size_t i = 0, j = 0; i < waits.size(); ++i) {
    j = std::max(j, i);
    while (j + 1 < waits.size() && waits[j + 1] <= waits[i] * (1 + policy_.tolerance)) ++j;
    const size_t count = j - i + 1;
    const bool recent = waits[i] <= newest && newest <= waits[j];
    if (count < policy_.agree) continue;
    if (std::pair(recent, count) > std::pair(best_recent, best_count)) {
      best = i;
      best_count = count;
      best_recent = recent;
    }
  }
  if (best_count == 0) return std::nullopt;
  // Nearest rank, at least the first: with fewer than ten waits, the shortest of them.
  const auto rank = static_cast<size_t>(std::ceil(policy_.percentile * static_cast<double>(best_count)));
  const size_t at = best + std::max<size_t>(rank, 1) - 1;
  return Learned{waits[at], waits[best + best_count - 1], best_count};
}

std::optional<PatienceBook::Learned> PatienceBook::learned(const std::string& client,
                                                           const std::string& model, TimePoint now) {
  auto it = entries_.find(Key{client, model});
  if (it == entries_.end()) return std::nullopt;
  expire(it->second, now);
  return judge(it->second);
}

bool PatienceBook::take_probe(const std::string& client, const std::string& model, TimePoint now) {
  auto it = entries_.find(Key{client, model});
  if (it == entries_.end()) return false;
  Entry& e = it->second;
  if (e.last_probe != TimePoint{} && now - e.last_probe < policy_.probe_every) return false;
  e.last_probe = now;
  return true;
}

Duration PatienceBook::probe_wait(const Learned& learned) const {
  // Past the longest agreeing give-up by the tolerance and a little more, so that outlasting it
  // forgets every one of them.
  return std::chrono::duration_cast<Duration>(learned.highest * (1 + policy_.tolerance)) + Millis(100);
}

std::vector<PatienceBook::View> PatienceBook::view(TimePoint now) {
  std::vector<View> out;
  for (auto it = entries_.begin(); it != entries_.end();) {
    expire(it->second, now);
    if (it->second.samples.empty() && now - it->second.touched > policy_.expiry) {
      it = entries_.erase(it);
      continue;
    }
    View v;
    v.client = it->first.first;
    v.model = it->first.second;
    v.give_ups = it->second.samples.size();
    if (!it->second.samples.empty()) v.since_last = now - it->second.samples.back().at;
    if (auto l = judge(it->second)) {
      v.patience = l->patience;
      v.agreeing = l->agreeing;
    }
    out.push_back(std::move(v));
    ++it;
  }
  return out;
}

}  // namespace ballast
