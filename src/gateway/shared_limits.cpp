#include "gateway/shared_limits.hpp"

#include <unistd.h>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <random>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "policy/duration.hpp"

namespace ballast {

namespace asio = boost::asio;

namespace {

// Every script reads the time from Redis itself, so replicas whose clocks disagree still agree on
// when a lease expires and how full a bucket is.
constexpr std::string_view kNow = R"(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
)";

// KEYS[1]: the leases. ARGV: lease, channel. A slot really freed is published to every replica.
constexpr std::string_view kRelease = R"(
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[2], KEYS[1])
  return 1
end
return 0
)";

// KEYS[1]: the leases. ARGV: ttl ms, then the leases this replica holds. They are added if missing:
// after Redis restarts empty, what runs still counts.
constexpr std::string_view kRenew = R"(
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + ttl, ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return #ARGV - 1
)";

// A token bucket is a hash {l: level, t: last refill, ms}; it holds ten seconds' worth of its
// per-minute rate and starts full (as policy/admission's TokenBucket).
constexpr std::string_view kBucket = R"(
local function level_of(key, per_minute)
  local cap = math.max(1, per_minute / 6)
  local b = redis.call('HMGET', key, 'l', 't')
  local level, at = tonumber(b[1]), tonumber(b[2])
  if level == nil or at == nil then return cap, cap end
  if now > at then level = math.min(cap, level + (now - at) * per_minute / 60000) end
  return level, cap
end
local function store(key, level)
  redis.call('HSET', key, 'l', tostring(level), 't', now)
  redis.call('PEXPIRE', key, 120000)
end
)";

// charge(first): the buckets KEYS[first..], each with its per-minute rate and the amount to take
// at the same place in ARGV's pairs (ARGV[2i-1], ARGV[2i] for KEYS[i]). All are taken or none:
// returns 0, or the ms until all would fit. A take larger than a bucket passes when it is full,
// leaving a debt.
constexpr std::string_view kChargeFunction = R"(
local function charge(first)
  local levels, wait = {}, 0
  for i = first, #KEYS do
    local per_minute, n = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
    local level, cap = level_of(KEYS[i], per_minute)
    levels[i] = level
    if level < n and level < cap then
      wait = math.max(wait, math.ceil((math.min(n, cap) - level) * 60000 / per_minute))
    end
  end
  if wait > 0 then return math.min(wait, 86400000) end
  for i = first, #KEYS do store(KEYS[i], levels[i] - tonumber(ARGV[2 * i])) end
  return 0
end
)";

// KEYS: buckets; ARGV: per minute and amount for each.
constexpr std::string_view kCharge = R"(
return charge(1)
)";

// KEYS[1]: the endpoint's leases (member: lease, score: when it expires), then its buckets. ARGV:
// limit and lease (the pair for KEYS[1]), per minute and amount for each bucket, and last the lease's
// ttl in ms. Expired leases go first, so a dead replica's slots come back by
// themselves. Returns 1 (the slot taken and the buckets charged), 0 (no slot free: nothing charged,
// the request waits for one), or minus the ms until the buckets would allow it (nothing taken). One
// call per request, and its rates are charged when it is sent.
constexpr std::string_view kAcquire = R"(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local wait = charge(2)
if wait > 0 then return -wait end
local ttl = tonumber(ARGV[#ARGV])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return 1
)";

// KEYS[1]: a bucket. ARGV: per minute, amount (positive gives back).
constexpr std::string_view kAdjust = R"(
local per_minute = tonumber(ARGV[1])
local level, cap = level_of(KEYS[1], per_minute)
store(KEYS[1], math.min(cap, level + tonumber(ARGV[2])))
return 0
)";

std::string script(std::initializer_list<std::string_view> parts) {
  std::string s;
  for (auto p : parts) s += p;
  return s;
}

// FNV-1a: a stable name for a client key, which itself never leaves the process.
uint64_t fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string number(double v) {
  return fmt::format("{}", v);
}

redis::Options client_options(const config::Redis& c) {
  redis::Options o;
  o.host = c.host;
  o.port = c.port;
  o.db = c.db;
  o.password = c.password;
  o.timeout = c.timeout;
  return o;
}

}  // namespace

struct SharedLimits::WatchEntry {
  asio::any_io_executor executor;
  Wakeup* wake = nullptr;
  bool gone = false;  // written and read on the executor's thread only
};

SharedLimits::SharedLimits(const config::Redis& config)
    : config_(config),
      channel_(config.prefix + "freed"),
      client_(std::make_unique<redis::Client>(client_options(config))),
      guard_(io_.get_executor()),
      renewal_(io_) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  replica_ = fmt::format("{}:{}:{:x}", host, getpid(), std::random_device{}());
  acquire_ = client_->add_script(script({kNow, kBucket, kChargeFunction, kAcquire}));
  release_ = client_->add_script(std::string(kRelease));
  renew_ = client_->add_script(script({kNow, kRenew}));
  charge_ = client_->add_script(script({kNow, kBucket, kChargeFunction, kCharge}));
  adjust_ = client_->add_script(script({kNow, kBucket, kAdjust}));
  client_->subscribe(channel_, [this](std::string_view key) { on_freed(key); });
  client_->on_state([this](bool up, const std::string& why) { on_state(up, why); });
}

SharedLimits::~SharedLimits() {
  stop();
}

void SharedLimits::stop() {
  // The renewals first (they call the client), then the client, whose thread calls into this object.
  guard_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
  client_.reset();
}

void SharedLimits::start() {
  thread_ = std::thread([this] { io_.run(); });
  asio::post(io_, [this] { schedule_renewal(); });
  client_->start();
}

// The model's name is preceded by its length: models and endpoints may have '/' or ':' in their
// names ("meta-llama/Llama-3.1-8B"), and two of them must never meet on one key.
std::string SharedLimits::slots_key(std::string_view model, std::string_view endpoint) const {
  return fmt::format("{}slots:{}:{}/{}", config_.prefix, model.size(), model, endpoint);
}

std::string SharedLimits::bucket_key(std::string_view kind, std::string_view model,
                                     std::string_view endpoint) const {
  return fmt::format("{}{}:{}:{}/{}", config_.prefix, kind, model.size(), model, endpoint);
}

std::string SharedLimits::client_bucket_key(std::string_view kind, std::string_view client_key) const {
  return fmt::format("{}{}:key:{:016x}", config_.prefix, kind, fnv1a(client_key));
}

void SharedLimits::on_state(bool up, const std::string& why) {
  {
    std::lock_guard lock(mu_);
    if (up == shared_ && told_) return;
    // Local from the start counts too: an alert on the counter sees an outage that began first.
    if (!up) ++fallbacks_;
    told_ = true;
    shared_ = up;
    why_ = up ? "" : why;
    since_ = Clock::now();
  }
  in_force_.store(up, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  if (up) {
    spdlog::info("redis {}: the shared limits are in force (redis.replicas {})", config_.url,
                 config_.replicas);
    // What runs now counts against the shared limits, Redis restarted empty or not, and what ended
    // while it was away is given back.
    asio::post(io_, [this] {
      renew();
      release_unreleased();
    });
  } else {
    spdlog::warn(
        "redis {}: {}; until it is back, this replica keeps its share of every shared limit (the limit / "
        "redis.replicas {}), and no request waits for Redis",
        config_.url, why, config_.replicas);
  }
}

asio::awaitable<SharedLimits::Take> SharedLimits::acquire(const std::string& key, int limit,
                                                          std::string& lease,
                                                          const std::vector<Charge>& charges,
                                                          Millis& rate_wait) {
  lease = fmt::format("{}:{}", replica_, next_lease_.fetch_add(1, std::memory_order_relaxed));
  Take take = Take::unavailable;
  if (client_->up()) {
    // Named, not braced in the co_await: GCC 12 cannot keep an initializer list across a suspension.
    std::vector<std::string> keys{key};
    std::vector<std::string> args{std::to_string(limit), lease};
    for (const Charge& c : charges) {
      keys.push_back(c.key);
      args.push_back(number(c.per_minute));
      args.push_back(number(c.amount));
    }
    args.push_back(std::to_string(config_.lease_ttl.count()));
    redis::Reply r = co_await redis::eval(*client_, acquire_, std::move(keys), std::move(args));
    if (r.kind == redis::Reply::Kind::integer) {
      take = r.integer == 1 ? Take::granted : r.integer == 0 ? Take::full : Take::rate_limited;
      if (take == Take::rate_limited) rate_wait = Millis(-r.integer);
    } else if (!r.unavailable()) {
      spdlog::warn("redis {}: the slot script failed: {}", config_.url, r.str);
    }
  }
  if (take == Take::full || take == Take::rate_limited) {
    lease.clear();
    co_return take;
  }
  // Granted, or going on under the local share: held either way (an unanswered call may even have
  // taken the slot), renewed, and released when the request ends.
  std::lock_guard lock(mu_);
  held_[key].insert(lease);
  co_return take;
}

void SharedLimits::release(const std::string& key, const std::string& lease) {
  if (lease.empty()) return;
  {
    std::lock_guard lock(mu_);
    auto it = held_.find(key);
    if (it != held_.end()) {
      it->second.erase(lease);
      if (it->second.empty()) held_.erase(it);
    }
  }
  if (client_->up()) {
    client_->eval(release_, {key}, {lease, channel_}, [](const redis::Reply&) {});
    return;
  }
  // Redis is away, perhaps only cut off with the lease still in it: it is released when Redis is
  // back, rather than holding a slot until it expires. (More than this many are left to expire.)
  constexpr size_t kMostUnreleased = 100'000;
  std::lock_guard lock(mu_);
  if (unreleased_.size() < kMostUnreleased) unreleased_.emplace_back(key, lease);
}

SharedLimits::Watch::Watch(SharedLimits& limits, const std::string& key,
                           const asio::any_io_executor& executor, Wakeup& wake)
    : limits_(limits), key_(key), entry_(std::make_shared<WatchEntry>()) {
  entry_->executor = executor;
  entry_->wake = &wake;
  std::lock_guard lock(limits_.mu_);
  limits_.watchers_[key_].push_back(entry_);
}

SharedLimits::Watch::~Watch() {
  std::lock_guard lock(limits_.mu_);
  entry_->gone = true;
  auto it = limits_.watchers_.find(key_);
  if (it == limits_.watchers_.end()) return;
  it->second.remove(entry_);
  if (it->second.empty()) limits_.watchers_.erase(it);
}

void SharedLimits::on_freed(std::string_view key) {
  std::lock_guard lock(mu_);
  auto it = watchers_.find(std::string(key));
  if (it == watchers_.end() || it->second.empty()) return;
  // The oldest waiter tries first; it moves to the back, so the next slot freed wakes the next one.
  std::shared_ptr<WatchEntry> e = it->second.front();
  it->second.splice(it->second.end(), it->second, it->second.begin());
  asio::post(e->executor, [e] {
    if (!e->gone) e->wake->notify();
  });
}

void SharedLimits::schedule_renewal() {
  renewal_.expires_after(config_.lease_ttl / 3);
  renewal_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    renew();
    schedule_renewal();
  });
}

void SharedLimits::release_unreleased() {
  std::vector<std::pair<std::string, std::string>> unreleased;
  {
    std::lock_guard lock(mu_);
    unreleased.swap(unreleased_);
  }
  for (auto& [key, lease] : unreleased)
    client_->eval(release_, {key}, {lease, channel_}, [](const redis::Reply&) {});
}

void SharedLimits::renew() {
  if (!client_->up()) return;
  std::vector<std::pair<std::string, std::vector<std::string>>> held;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, leases] : held_)
      held.emplace_back(key, std::vector<std::string>(leases.begin(), leases.end()));
  }
  constexpr size_t kPerCall = 256;
  for (const auto& [key, leases] : held) {
    for (size_t i = 0; i < leases.size(); i += kPerCall) {
      std::vector<std::string> args{std::to_string(config_.lease_ttl.count())};
      args.insert(args.end(), leases.begin() + static_cast<std::ptrdiff_t>(i),
                  leases.begin() + static_cast<std::ptrdiff_t>(std::min(leases.size(), i + kPerCall)));
      client_->eval(renew_, {key}, std::move(args), [](const redis::Reply&) {});
    }
  }
}

asio::awaitable<SharedLimits::Verdict> SharedLimits::charge(std::vector<Charge> charges) {
  if (!client_->up() || charges.empty()) co_return Verdict{!client_->up(), std::nullopt};
  std::vector<std::string> keys, args;
  for (auto& c : charges) {
    keys.push_back(std::move(c.key));
    args.push_back(number(c.per_minute));
    args.push_back(number(c.amount));
  }
  redis::Reply r = co_await redis::eval(*client_, charge_, std::move(keys), std::move(args));
  if (r.kind != redis::Reply::Kind::integer) {
    if (!r.unavailable()) spdlog::warn("redis {}: the rate script failed: {}", config_.url, r.str);
    co_return Verdict{true, std::nullopt};
  }
  if (r.integer <= 0) co_return Verdict{};
  co_return Verdict{false, Millis(r.integer)};
}

void SharedLimits::adjust(const Charge& correction) {
  if (!client_->up() || correction.amount == 0) return;
  client_->eval(adjust_, {correction.key}, {number(correction.per_minute), number(correction.amount)},
                [](const redis::Reply&) {});
}

SharedLimits::View SharedLimits::view(TimePoint now) const {
  std::lock_guard lock(mu_);
  View v;
  v.url = config_.url;
  v.shared = shared_;
  v.why = why_;
  v.for_how_long = now - since_;
  v.replicas = config_.replicas;
  v.fallbacks = fallbacks_;
  return v;
}

}  // namespace ballast
