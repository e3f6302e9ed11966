// The limits every replica shares through Redis (redis: in the config; docs/scaling.md): an
// endpoint's max_in_flight as leases in a sorted set, and rpm/tpm as token buckets, each changed by
// one atomic Lua script. Redis is never waited on for long: every call has redis.timeout, and while
// Redis is away each replica keeps its share of every limit locally (EndpointPool::scope), so a
// request is never failed, nor held, because of it.
//
// A lease is held by the request that took it and renewed by this process every third of
// redis.lease_ttl, so a replica that dies leaves slots that expire by themselves. A slot freed
// anywhere is published, and the requests waiting for one here try again at once.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/time.hpp"
#include "common/wakeup.hpp"
#include "config/config.hpp"
#include "observability/endpoint_status.hpp"
#include "redis/client.hpp"

namespace ballast {

class SharedLimits {
  struct WatchEntry;

 public:
  explicit SharedLimits(const config::Redis& config);
  ~SharedLimits();
  SharedLimits(const SharedLimits&) = delete;  // its thread and the client's callbacks point here
  SharedLimits& operator=(const SharedLimits&) = delete;
  SharedLimits(SharedLimits&&) = delete;
  SharedLimits& operator=(SharedLimits&&) = delete;

  // Connects in the background: until Redis answers, the limits are local shares.
  void start();
  // Disconnects and stops the renewals: called once the workers have stopped, while the requests'
  // coroutines may still be torn down (they use this object, never Redis, then).
  void stop();

  // Whether Redis holds the shared limits now, and a number that changes each time that does: the
  // endpoints' state is rescoped (EndpointPool::scope) when it is seen to have moved.
  bool up() const { return in_force_.load(std::memory_order_acquire); }
  uint64_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  const config::Redis& config() const { return config_; }

  // Redis's names for an endpoint's slots and rate buckets, and a client key's buckets (the key
  // itself never goes to Redis: a hash of it does).
  std::string slots_key(std::string_view model, std::string_view endpoint) const;
  std::string bucket_key(std::string_view kind, std::string_view model, std::string_view endpoint) const;
  std::string client_bucket_key(std::string_view kind, std::string_view client_key) const;

  // Token buckets (per minute, holding ten seconds' worth, as TokenBucket) and what to take from
  // each.
  struct Charge {
    std::string key;
    double per_minute = 0;
    double amount = 0;
  };

  // A slot of `key`, if fewer than `limit` are held across the replicas, and with it `charges`, in
  // one call: `granted` (its lease in `lease`), `full` (nothing charged), `rate_limited` (no slot
  // taken; `rate_wait` says when the buckets would allow it), or `unavailable` (Redis did not
  // answer: the caller goes on under the local share, and `lease` still names what it holds, to
  // count once Redis is back).
  enum class Take { granted, full, rate_limited, unavailable };
  boost::asio::awaitable<Take> acquire(const std::string& key, int limit, std::string& lease,
                                       const std::vector<Charge>& charges, Millis& rate_wait);
  // The request holding `lease` ended: the slot is free for every replica (and published).
  void release(const std::string& key, const std::string& lease);

  // While one of these lives, `wake` is notified when a slot of `key` frees on any replica. One
  // waiter is woken per freed slot, oldest first.
  class Watch {
   public:
    Watch(SharedLimits& limits, const std::string& key, const boost::asio::any_io_executor& executor,
          Wakeup& wake);
    ~Watch();
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    Watch(Watch&&) = delete;
    Watch& operator=(Watch&&) = delete;

   private:
    SharedLimits& limits_;
    std::string key_;
    std::shared_ptr<WatchEntry> entry_;
  };

  // All of `charges` taken, or none (for rates without slots to go with). Returns nothing when
  // taken; else the wait until they would be; `unavailable` when Redis did not answer.
  struct Verdict {
    bool unavailable = false;
    std::optional<Millis> wait;
  };
  boost::asio::awaitable<Verdict> charge(std::vector<Charge> charges);
  // An earlier charge corrected by `amount` (positive gives back). Not waited for.
  void adjust(const Charge& correction);

  // For /ballast/status and /metrics.
  using View = SharedLimitsView;
  View view(TimePoint now) const;

 private:
  friend class Watch;
  void on_state(bool up, const std::string& why);
  void on_freed(std::string_view key);
  void renew();
  void release_unreleased();
  void schedule_renewal();

  config::Redis config_;
  std::string replica_;  // this process's part of every lease's name
  std::string channel_;  // where freed slots are published
  std::unique_ptr<redis::Client> client_;
  int acquire_ = 0, release_ = 0, renew_ = 0, charge_ = 0, adjust_ = 0;  // script handles
  std::atomic<bool> in_force_{false};
  std::atomic<uint64_t> epoch_{0};
  std::atomic<uint64_t> next_lease_{0};

  mutable std::mutex mu_;
  std::map<std::string, std::set<std::string>> held_;            // key → leases this process holds
  std::vector<std::pair<std::string, std::string>> unreleased_;  // (key, lease) ended while Redis was away
  std::map<std::string, std::list<std::shared_ptr<WatchEntry>>> watchers_;
  bool shared_ = false;
  std::string why_ = "not connected yet";
  bool told_ = false;  // the first state is logged whatever it is
  TimePoint since_ = Clock::now();
  uint64_t fallbacks_ = 0;

  // Renewal runs on a loop of its own.
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  boost::asio::steady_timer renewal_;
  std::thread thread_;
};

}  // namespace ballast
