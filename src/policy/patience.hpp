// What ballast learns of a client's patience when the client never says it. Per client (its key,
// else its address) and model: how long requests waited without receiving a byte before their
// client gave up. Once enough of those give-ups agree, that is the client's patience, and
// admission treats it as the deadline for the first byte, as it would a deadline the client sent.
//
// Pure and single-threaded: the caller holds its lock and passes the time.
#pragma once

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/time.hpp"

namespace ballast {

struct PatiencePolicy {
  size_t window = 20;                          // the latest give-ups kept per client and model
  size_t agree = 5;                            // how many of them must agree before anything is learned
  double tolerance = 0.2;                      // agreeing: the longest wait at most 20% above the shortest
  double percentile = 0.10;                    // the patience is this low percentile of the agreeing waits
  Duration expiry = std::chrono::minutes(10);  // a give-up older than this is forgotten
  Duration probe_every = std::chrono::seconds(15);  // see take_probe
  size_t max_entries = 10'000;  // clients × models remembered; the longest untouched go first
};

// Until a client's patience is known (sent, read or learned), ballast does not bet a slot on it:
// a client that comes back when told (an OpenAI SDK with a retry left) waits at most this long
// for a slot and is otherwise told when to return; its timeout never runs while it waits in the
// queue long enough for the upstream's answer to reach nobody. Clients that may not come back are
// held for the whole queue timeout.
inline constexpr Millis kUnknownPatienceWait{5'000};

class PatienceBook {
 public:
  explicit PatienceBook(const PatiencePolicy& policy = {});

  // A request of `client` for `model` waited `waited` without receiving a byte, and its client
  // gave up (closed the connection).
  void gave_up(const std::string& client, const std::string& model, Duration waited, TimePoint now);
  // A request waited `waited` for its first byte and its client was still there: any give-up
  // clearly shorter than that is not this client's patience (any more), and is forgotten.
  void outlasted(const std::string& client, const std::string& model, Duration waited, TimePoint now);

  struct Learned {
    Duration patience{};  // a low percentile of the agreeing give-ups
    Duration highest{};   // the longest of them
    size_t agreeing = 0;
  };
  std::optional<Learned> learned(const std::string& client, const std::string& model, TimePoint now);

  // A request about to be refused because of its learned patience may test that patience instead,
  // once per probe_every per client and model: it is held, outside every queue, for probe_wait.
  // If its client leaves first, that is one more give-up; if not, outlasted() forgets the value
  // and the request goes on as one whose patience is unknown. This is how a longer patience (a
  // redeploy with a longer timeout) is noticed: requests refused early never wait long enough to show it.
  bool take_probe(const std::string& client, const std::string& model, TimePoint now);
  Duration probe_wait(const Learned& learned) const;

  struct View {
    std::string client;
    std::string model;
    std::optional<Duration> patience;  // none while the give-ups are too few or do not agree
    size_t give_ups = 0;               // remembered (the latest, within the expiry)
    size_t agreeing = 0;
    Duration since_last{};  // since the latest give-up
  };
  std::vector<View> view(TimePoint now);

 private:
  struct Sample {
    Duration waited;
    TimePoint at;
  };
  struct Entry {
    std::deque<Sample> samples;  // oldest first
    TimePoint last_probe{};
    TimePoint touched{};
  };
  using Key = std::pair<std::string, std::string>;
  Entry& entry(const std::string& client, const std::string& model, TimePoint now);
  void expire(Entry& e, TimePoint now) const;
  std::optional<Learned> judge(const Entry& e) const;

  PatiencePolicy policy_;
  std::map<Key, Entry> entries_;
};

}  // namespace ballast
