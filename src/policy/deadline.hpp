// Deadline planning: the request's overall deadline (the total bound, capped by the client's own
// deadline) and, for each attempt, which bound governs the wait in each phase.
#pragma once

#include <optional>
#include <string_view>

#include "common/time.hpp"
#include "policy/error_code.hpp"

namespace ballast {

struct PhaseBounds {
  Millis connect{5'000};       // TCP connect including TLS
  Millis first_byte{60'000};   // request sent (connection ready) → response headers
  Millis first_token{60'000};  // attempt start → first SSE event carrying content (streams)
  Millis stream_idle{30'000};  // gap between events once the response flows
  Millis total{600'000};       // the whole request, every attempt included
};

// Where a request's client deadline comes from (the access log's client_timeout_source): a total
// the client sent (x-ballast-timeout, x-stainless-timeout), its read timeout
// (x-stainless-read-timeout, openai-python), the patience ballast learned from its give-ups, or nothing.
enum class DeadlineSource { none, sent, read, learned };
std::string_view source_name(DeadlineSource source);

struct RequestDeadline {
  TimePoint start;
  TimePoint at;               // min(start + total, start + client timeout - client margin)
  bool from_client = false;   // the client's header, not timeouts.total, set `at`
  Duration budget{};          // at - start, for messages
  Duration client_timeout{};  // what the client asked for, when it did
  // The latest the first response byte may reach the client (its read timeout or learned
  // patience, met early by the client margin); max() when neither applies.
  TimePoint first_byte_by = TimePoint::max();
  DeadlineSource source = DeadlineSource::none;
  Duration patience{};  // the read timeout or learned patience behind first_byte_by
  // The client's read timeout less the client margin, when it sent one (x-stainless-read-timeout):
  // the longest the client may receive nothing, from its request's arrival to the first byte and
  // between the chunks of a stream. Zero when it sent none: a learned patience shapes admission but
  // never cuts an attempt.
  Duration read_gap{};
};

// A client's deadline is met a little early — 5% of it, at most 500 ms — so that ballast's answer,
// which names the cause, reaches the client before the client's own generic timeout fires.
Duration client_margin(Duration client_timeout);

RequestDeadline plan_deadline(TimePoint start, Millis total, std::optional<Duration> client_timeout);

// The client waits at most `patience` for its first byte (read or learned): bound that wait.
void bound_first_byte(RequestDeadline& deadline, Duration patience, DeadlineSource source);

// The client's read timeout (x-stainless-read-timeout): a bound on every silence it sees. ballast
// answers before it runs out from the request's arrival, and a stream never goes that long between
// the chunks ballast sends.
void bound_silence(RequestDeadline& deadline, Duration read_timeout);

// The latest an answer, ballast's own or the upstream's headers, may start: the deadline, or sooner
// the client's read timeout. Another attempt is worth making only before it.
TimePoint answer_by(const RequestDeadline& deadline);

enum class AttemptPhase {
  connecting,            // DNS, TCP, TLS, proxy CONNECT: nothing sent yet
  awaiting_headers,      // sent; no response headers yet
  awaiting_first_token,  // a stream's headers arrived; no content event yet
  relaying,              // content flows (stream events or a body)
};

struct Bound {
  TimePoint at;
  ErrorCode code{};          // what firing at `at` means
  bool client_read = false;  // the client's read timeout set `at`, not ballast's own bound
};

// When each milestone of an attempt happened, as far as it got.
struct AttemptClock {
  TimePoint start;          // the attempt began (connecting)
  TimePoint sent;           // the request went out (only read from awaiting_headers on)
  TimePoint last_activity;  // the latest bytes received
  // The end of ballast's latest write to the client in this attempt that carried data (a relayed
  // keep-alive comment does not count); none before the first.
  std::optional<TimePoint> last_write;
};

// curl enforces the connect bound itself; ballast's own timer for that phase waits this much
// longer, as a backstop that never pre-empts curl's more precise verdict.
constexpr Millis kConnectBackstop{50};

// The bound that ends the current wait: the earliest of the phase's own bound, the client's read
// timeout (from the request's arrival until the first write, then from the latest write) and the
// request deadline. The read timeout, firing, names the phase it cut: connect_timeout,
// first_byte_timeout (no headers yet, or a non-streamed body not complete), first_token_timeout,
// stream_idle_timeout.
Bound next_bound(const RequestDeadline& deadline, const PhaseBounds& bounds, const AttemptClock& clock,
                 AttemptPhase phase);

// The connect bound curl is given: never past the request deadline or the client's read timeout. At least 1
// ms, since 0 means "default".
Millis connect_bound(const RequestDeadline& deadline, const PhaseBounds& bounds, TimePoint now);

}  // namespace ballast
