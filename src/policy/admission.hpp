// Admission to one endpoint: at most `limit` requests in flight, the rest in a bounded queue that
// is fair between client keys and aware of deadlines — a request that could not start before its
// deadline is refused at once, with a Retry-After worked out from the drain rate, instead of after
// waiting. The limit is fixed (max_in_flight: N) or adaptive (max_in_flight: auto): additive
// increase while busy, multiplicative decrease on overload (429, 503, timeouts) and when a time to
// first token rises well above the recent fastest one (the request waited in the upstream's queue).
//
// Pure and single-threaded: the caller holds its lock, passes the time, and wakes the waiters
// this names.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/time.hpp"

namespace ballast {

struct AdmissionPolicy {
  int max_in_flight = 0;         // 0: unbounded (no queue either)
  bool adaptive = false;         // max_in_flight: auto
  int queue_size = 1000;         // waiting requests; more are refused with queue_full
  Millis queue_timeout{30'000};  // the longest wait for a slot, and the longest Retry-After promised
  // The adaptive limit: where it starts, its range, how much one overload signal takes off, and how
  // far above its baseline time to first token may rise before that counts as overload.
  int initial_limit = 16;
  int min_limit = 1;
  int max_limit = 1000;
  double decrease = 0.8;
  double latency_tolerance = 2.0;
};

// By when a request must be served: its deadline for the whole answer (timeouts.total, or the one
// its client sent), and, when its client's patience bounds the wait for the first byte
// (x-stainless-read-timeout, or a learned patience), the latest that byte may reach the client.
struct Due {
  TimePoint deadline;
  TimePoint first_byte = TimePoint::max();
  bool stream = false;  // a stream's first byte is its first token, not its whole answer
  // A wait for a slot shorter than the queue timeout: for a client whose patience is unknown but
  // which comes back when told (see request_path).
  std::optional<Duration> queue_wait;
};

// What an ended request says about the endpoint's capacity.
enum class LoadSignal { neutral, success, overload };

class Admission {
 public:
  explicit Admission(const AdmissionPolicy& policy);

  enum class Decision { admitted, queued, queue_full, too_late };
  struct Arrival {
    Decision decision;
    uint64_t ticket = 0;            // queued: what the waiter holds
    Millis retry_after{0};          // refused: when trying again could succeed
    bool first_byte_bound = false;  // too_late only because of `Due::first_byte`
  };
  // A request for this endpoint arrives, to be served as `due` says.
  Arrival arrive(const std::string& key, TimePoint now, const Due& due);
  Arrival arrive(const std::string& key, TimePoint now, TimePoint deadline) {
    return arrive(key, now, Due{deadline});
  }

  // The latest a request arriving `now` may start and still be served as `due` says: an average
  // slot's time before its deadline, an average time to first byte (first token, for a stream)
  // before its first-byte bound, and never later than the queue timeout. Queued requests are held
  // to it with the averages as they are when a slot frees, not as they were when they arrived.
  TimePoint start_by(TimePoint now, const Due& due) const;
  TimePoint start_by(TimePoint now, TimePoint deadline) const { return start_by(now, Due{deadline}); }

  // What a change did to the queue: tickets now admitted, and tickets refused because they can no
  // longer start in time (with their Retry-After).
  struct Changes {
    std::vector<uint64_t> granted;
    std::vector<std::pair<uint64_t, Millis>> refused;
  };
  // An admitted request ended after holding its slot from `started` (for the drain rate) with what
  // it says about capacity (`first_token`: time to first token or first byte, when it got one).
  Changes finish(TimePoint now, TimePoint started, LoadSignal signal, std::optional<Duration> first_token,
                 bool stream = false);

  // A slot given back without a hold worth learning from: granted to a request whose client had
  // left by the time it could use it, or ended by the client leaving. Free again at once.
  Changes give_back(TimePoint now);

  // Whether a request admitted now can still be served as `due` says (its patience may have been
  // learned while it waited).
  bool in_time(TimePoint now, const Due& due) const;

  // The waiter gave up (timeout or client gone). True if it was still waiting and is now removed;
  // false if it was granted or refused meanwhile (the caller then owns that result).
  bool cancel(uint64_t ticket);

  // The endpoint's settings changed (a reload). What it holds and has learned stays: the requests
  // in flight and queued, the drain rate, and the adaptive limit while it stays adaptive (clamped
  // to the new range). A higher limit may admit waiters at once.
  Changes retune(const AdmissionPolicy& policy, TimePoint now);

  // The process is shutting down: nothing may hold a slot past `until` (the end of its shutdown
  // grace). Every request's deadline is capped by it from now on, so those queued that can no
  // longer start and finish before it are refused now, with when to come back, instead of waiting
  // for a slot until the process ends under them; those that can still make it keep their place.
  Changes drain(TimePoint until, TimePoint now);
  bool draining() const { return drain_until_ != TimePoint::max(); }

  // When a request refused now could try again: time for the queue ahead of it, and the requests
  // refused before it, to drain; never more than the queue timeout or the time its client has left
  // before `deadline`.
  Millis retry_after(TimePoint now, TimePoint deadline);

  int limit() const;
  int in_flight() const { return in_flight_; }
  int queued() const { return static_cast<int>(tickets_.size()); }
  bool bounded() const { return policy_.max_in_flight > 0 || policy_.adaptive; }
  std::optional<Duration> mean_hold() const { return mean_hold_; }

 private:
  struct Ticket {
    std::string key;
    TimePoint arrived;
    Due due;  // its start_by is computed anew with each change of the averages
  };
  std::optional<Duration> estimated_wait(size_t position) const;  // position 0: next to start
  Changes settle(TimePoint now);
  Millis come_back(TimePoint now, Duration estimate, TimePoint deadline);

  AdmissionPolicy policy_;
  double limit_;
  int in_flight_ = 0;
  uint64_t next_ticket_ = 1;
  std::map<uint64_t, Ticket> tickets_;  // waiting, in arrival order
  // Fairness: each key's waiting tickets, and the keys in the order they are next served.
  std::map<std::string, std::deque<uint64_t>> by_key_;
  std::deque<std::string> turn_;
  std::optional<Duration> mean_hold_;                // how long a slot is held, moving average
  std::optional<Duration> mean_stream_first_token_;  // a stream's time to its first token, moving average
  std::optional<Duration> current_min_ttft_, previous_min_ttft_;
  TimePoint window_start_{};
  TimePoint last_decrease_{};
  // The return time promised to the latest refused request. The next one is promised a slot's time
  // later, so a burst refused together comes back at the drain rate; it never stands further ahead
  // than the queue timeout, and is forgotten once the queue drains.
  TimePoint last_promise_{};
  TimePoint drain_until_ = TimePoint::max();  // drain(): every deadline is capped by it
};

// A token bucket for requests or tokens per minute. It holds ten seconds' worth, so a burst is
// allowed but not a whole minute's at once (providers enforce their per-minute limits over shorter
// windows too). A single take larger than the bucket passes when it is full, leaving a debt.
class TokenBucket {
 public:
  TokenBucket() = default;
  TokenBucket(double per_minute, TimePoint now);

  bool enabled() const { return rate_per_s_ > 0; }
  // Takes `n` and returns nothing, or takes nothing and returns how long until `n` would fit.
  std::optional<Millis> take(double n, TimePoint now);
  // What take() would say, taking nothing.
  std::optional<Millis> wait_for(double n, TimePoint now);
  // Corrects an earlier take by `n` (positive gives back, negative charges more).
  void adjust(double n, TimePoint now);
  double level(TimePoint now);
  // A new rate (a reload): what was spent stays spent; 0 disables.
  void retune(double per_minute, TimePoint now);
  double capacity() const { return capacity_; }

 private:
  void refill(TimePoint now);
  double rate_per_s_ = 0;
  double capacity_ = 0;
  double level_ = 0;
  TimePoint updated_{};
};

}  // namespace ballast
