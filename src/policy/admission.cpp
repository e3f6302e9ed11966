#include "policy/admission.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

namespace ballast {

namespace {

// Moving averages weigh the latest sample this much: quick enough to follow a change of load
// within a few requests, slow enough that one outlier does not swing the estimate.
constexpr double kAlpha = 0.2;
constexpr Duration kBaselineWindow = std::chrono::seconds(30);

Duration ewma(std::optional<Duration> avg, Duration sample) {
  if (!avg) return sample;
  return std::chrono::duration_cast<Duration>(*avg * (1 - kAlpha) + sample * kAlpha);
}

Millis ms_ceil(Duration d) {
  return std::max(Millis(1), std::chrono::ceil<Millis>(d));
}

// When a refused request should come back: once the queue ahead of it has drained far enough that,
// arriving with the same budget, it would wait about half of it. Half, not all: requests refused
// together come back together, and one that returned right at the edge would be refused again.
Duration come_back_after(Duration wait, Duration budget) {
  return wait - std::max(Duration(0), budget) / 2;
}

}  // namespace

Admission::Admission(const AdmissionPolicy& policy)
    : policy_(policy), limit_(policy.adaptive ? policy.initial_limit : policy.max_in_flight) {}

int Admission::limit() const {
  if (policy_.adaptive) return std::max(policy_.min_limit, static_cast<int>(limit_));
  return policy_.max_in_flight > 0 ? policy_.max_in_flight : INT_MAX;
}

std::optional<Duration> Admission::estimated_wait(size_t position) const {
  if (!mean_hold_) return std::nullopt;
  return *mean_hold_ * static_cast<int64_t>(position + 1) / limit();
}

Millis Admission::come_back(TimePoint now, Duration estimate, TimePoint deadline) {
  // Never more than the queue timeout, nor past the client's own deadline: a promise longer than
  // the client would wait is a hang made by the gateway, and SDKs obey it.
  const Duration bound =
      std::max<Duration>(Millis(1), std::min<Duration>(policy_.queue_timeout, deadline - now));
  if (tickets_.empty() && in_flight_ < limit()) {
    // Nothing waits and a slot is free (refused for its deadline or a rate limit): no backlog to
    // space the promise behind, and the earlier promises are forgotten.
    last_promise_ = now;
    return ms_ceil(std::min(bound, mean_hold_.value_or(Millis(1000))));
  }
  // Requests refused together must not come back together: each is promised a later time than the
  // one refused before it, by one slot's time (the rate at which the queue drains). A run of
  // refusals that would reach past the bound starts again from the earliest time: clients that
  // ignore Retry-After and re-send at once can not push everyone's return further out.
  const Duration slot = mean_hold_ ? *mean_hold_ / limit() : Duration(0);
  const TimePoint earliest = now + std::min(bound, std::max({estimate, slot, Duration(0)}));
  TimePoint at = std::max(earliest, last_promise_ + slot);
  if (at > now + bound) at = earliest;
  last_promise_ = at;
  return ms_ceil(at - now);
}

Millis Admission::retry_after(TimePoint now, TimePoint deadline) {
  auto wait = estimated_wait(tickets_.size());
  return come_back(now, wait.value_or(Millis(1000)), deadline);
}

TimePoint Admission::start_by(TimePoint now, const Due& due) const {
  const Duration hold = mean_hold_.value_or(Duration(0));
  const Duration queue_wait =
      std::min<Duration>(policy_.queue_timeout, due.queue_wait.value_or(Duration::max()));
  TimePoint latest = std::min(now + queue_wait, std::min(due.deadline, drain_until_) - hold);
  if (due.first_byte != TimePoint::max()) {
    // A non-streamed answer's first byte is its last: the whole hold. A stream's is its first token.
    const Duration first_byte = due.stream ? mean_stream_first_token_.value_or(hold) : hold;
    latest = std::min(latest, due.first_byte - first_byte);
  }
  return latest;
}

Admission::Arrival Admission::arrive(const std::string& key, TimePoint now, const Due& due) {
  const TimePoint deadline = due.deadline;
  if (!bounded() || (in_flight_ < limit() && tickets_.empty())) {
    ++in_flight_;
    return {Decision::admitted};
  }
  if (static_cast<int>(tickets_.size()) >= policy_.queue_size) {
    return {Decision::queue_full, 0, retry_after(now, deadline)};
  }
  const TimePoint latest = start_by(now, due);
  auto wait = estimated_wait(tickets_.size());
  auto hopeless = [&](TimePoint by) { return by <= now || (wait && now + *wait > by); };
  if (hopeless(latest)) {
    // It would wait only to be refused: say so now, and when the queue will have room for it.
    Arrival refused{Decision::too_late, 0,
                    come_back(now, come_back_after(wait.value_or(Duration(0)), latest - now), deadline)};
    Due without_first_byte = due;
    without_first_byte.first_byte = TimePoint::max();
    refused.first_byte_bound = !hopeless(start_by(now, without_first_byte));
    return refused;
  }
  uint64_t id = next_ticket_++;
  tickets_.emplace(id, Ticket{key, now, due});
  auto& mine = by_key_[key];
  if (mine.empty()) turn_.push_back(key);
  mine.push_back(id);
  return {Decision::queued, id};
}

bool Admission::cancel(uint64_t ticket) {
  auto it = tickets_.find(ticket);
  if (it == tickets_.end()) return false;
  auto queue = by_key_.find(it->second.key);
  if (queue != by_key_.end()) {
    std::erase(queue->second, ticket);
    if (queue->second.empty()) {
      std::erase(turn_, queue->first);
      by_key_.erase(queue);
    }
  }
  tickets_.erase(it);
  return true;
}

bool Admission::in_time(TimePoint now, const Due& due) const {
  return now <= start_by(now, due);
}

Admission::Changes Admission::give_back(TimePoint now) {
  in_flight_ = std::max(0, in_flight_ - 1);
  return settle(now);
}

Admission::Changes Admission::finish(TimePoint now, TimePoint started, LoadSignal signal,
                                     std::optional<Duration> first_token, bool stream) {
  const int was_in_flight = in_flight_;
  in_flight_ = std::max(0, in_flight_ - 1);
  mean_hold_ = ewma(mean_hold_, now - started);
  if (stream && first_token) mean_stream_first_token_ = ewma(mean_stream_first_token_, *first_token);
  if (policy_.adaptive) {
    // One decrease per congestion episode: requests that started before the last decrease were
    // sent under the old limit and say nothing new about the current one.
    bool fresh = started >= last_decrease_;
    auto decrease = [&] {
      limit_ = std::max<double>(policy_.min_limit, limit_ * policy_.decrease);
      last_decrease_ = now;
    };
    if (signal == LoadSignal::overload && fresh) {
      decrease();
    } else if (signal == LoadSignal::success) {
      bool queueing_upstream = false;
      if (first_token) {
        // The baseline is the fastest first token of the last 30 to 60 s: what the endpoint does
        // when nothing waits ahead of the request. Windows let it follow a lasting change (longer
        // prompts, another model) instead of holding on to one lucky sample forever.
        if (now - window_start_ >= kBaselineWindow) {
          previous_min_ttft_ = current_min_ttft_;
          current_min_ttft_.reset();
          window_start_ = now;
        }
        if (!current_min_ttft_ || *first_token < *current_min_ttft_) current_min_ttft_ = *first_token;
        Duration baseline =
            previous_min_ttft_ ? std::min(*previous_min_ttft_, *current_min_ttft_) : *current_min_ttft_;
        // One request that waited upstream is enough: at the right limit none does.
        queueing_upstream = *first_token > baseline * policy_.latency_tolerance;
      }
      if (queueing_upstream) {
        if (fresh) decrease();
      } else if (was_in_flight >= limit_ / 2) {
        // Additive increase, about one per `limit` successes, and only while the limit is in use.
        limit_ = std::min<double>(policy_.max_limit, limit_ + 1.0 / limit_);
      }
    }
  }
  return settle(now);
}

Admission::Changes Admission::retune(const AdmissionPolicy& policy, TimePoint now) {
  const bool stays_adaptive = policy.adaptive && policy_.adaptive;
  policy_ = policy;
  if (stays_adaptive)
    limit_ = std::clamp<double>(limit_, policy_.min_limit, policy_.max_limit);
  else
    limit_ = policy_.adaptive ? policy_.initial_limit : policy_.max_in_flight;
  return settle(now);
}

Admission::Changes Admission::drain(TimePoint until, TimePoint now) {
  drain_until_ = std::min(drain_until_, until);
  return settle(now);
}

Admission::Changes Admission::settle(TimePoint now) {
  Changes out;
  while (in_flight_ < limit() && !turn_.empty()) {
    std::string key = std::move(turn_.front());
    turn_.pop_front();
    auto queue = by_key_.find(key);
    uint64_t id = queue->second.front();
    queue->second.pop_front();
    if (queue->second.empty())
      by_key_.erase(queue);
    else
      turn_.push_back(std::move(key));
    auto ticket = tickets_.extract(id);
    const Ticket& t = ticket.mapped();
    // A slot is no use to a request that can no longer be served in time: it queued before the
    // averages knew how long an answer takes, or they grew since. It is told when to come back,
    // and the slot goes to the next in line instead of to work nobody will read.
    if (const TimePoint latest = start_by(t.arrived, t.due); mean_hold_ && now > latest) {
      out.refused.emplace_back(
          id, come_back(now, come_back_after(*estimated_wait(0), latest - t.arrived), t.due.deadline));
      continue;
    }
    ++in_flight_;
    out.granted.push_back(id);
  }
  if (!mean_hold_) return out;
  // Those that can no longer start in time are told now, with when the queue will have room.
  size_t position = 0;
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    Duration wait = *estimated_wait(position);
    const Ticket& t = it->second;
    const TimePoint latest = start_by(t.arrived, t.due);
    if (now + wait <= latest) {
      ++position;
      ++it;
      continue;
    }
    out.refused.emplace_back(it->first,
                             come_back(now, come_back_after(wait, latest - t.arrived), t.due.deadline));
    uint64_t id = it->first;
    ++it;
    cancel(id);
  }
  return out;
}

TokenBucket::TokenBucket(double per_minute, TimePoint now)
    : rate_per_s_(per_minute / 60),
      capacity_(std::max(1.0, per_minute / 6)),
      level_(capacity_),
      updated_(now) {}

void TokenBucket::refill(TimePoint now) {
  if (now <= updated_) return;
  level_ = std::min(capacity_, level_ + std::chrono::duration<double>(now - updated_).count() * rate_per_s_);
  updated_ = now;
}

std::optional<Millis> TokenBucket::wait_for(double n, TimePoint now) {
  refill(now);
  if (level_ >= n || level_ >= capacity_) return std::nullopt;
  double missing = std::min(n, capacity_) - level_;
  // Clamped before the conversion: a debt left by an enormous take must not overflow into a
  // negative wait. A day is past every bound a refusal's Retry-After is cut to anyway.
  double ms = std::min(std::ceil(missing / rate_per_s_ * 1000), 86'400'000.0);
  return Millis(std::max<int64_t>(1, static_cast<int64_t>(ms)));
}

std::optional<Millis> TokenBucket::take(double n, TimePoint now) {
  auto wait = wait_for(n, now);
  if (!wait) level_ -= n;
  return wait;
}

void TokenBucket::adjust(double n, TimePoint now) {
  refill(now);
  level_ = std::min(capacity_, level_ + n);
}

void TokenBucket::retune(double per_minute, TimePoint now) {
  if (per_minute <= 0) {
    *this = TokenBucket();
    return;
  }
  if (!enabled()) {
    *this = TokenBucket(per_minute, now);
    return;
  }
  refill(now);
  const double spent = capacity_ - level_;
  rate_per_s_ = per_minute / 60;
  capacity_ = std::max(1.0, per_minute / 6);
  level_ = capacity_ - spent;
}

double TokenBucket::level(TimePoint now) {
  refill(now);
  return level_;
}

}  // namespace ballast
