#include "policy/deadline.hpp"

#include <algorithm>
#include <string_view>

namespace ballast {

Duration client_margin(Duration client_timeout) {
  return std::min<Duration>(client_timeout / 20, Millis(500));
}

RequestDeadline plan_deadline(TimePoint start, Millis total, std::optional<Duration> client_timeout) {
  RequestDeadline d;
  d.start = start;
  d.at = start + total;
  if (client_timeout && start + *client_timeout - client_margin(*client_timeout) < d.at) {
    d.at = start + *client_timeout - client_margin(*client_timeout);
    d.from_client = true;
    d.client_timeout = *client_timeout;
  }
  d.budget = d.at - start;
  if (client_timeout) d.source = DeadlineSource::sent;
  return d;
}

void bound_first_byte(RequestDeadline& deadline, Duration patience, DeadlineSource source) {
  deadline.first_byte_by = deadline.start + patience - client_margin(patience);
  deadline.source = source;
  deadline.patience = patience;
}

void bound_silence(RequestDeadline& deadline, Duration read_timeout) {
  bound_first_byte(deadline, read_timeout, DeadlineSource::read);
  deadline.read_gap = read_timeout - client_margin(read_timeout);
}

TimePoint answer_by(const RequestDeadline& deadline) {
  return deadline.read_gap > Duration::zero() ? std::min(deadline.at, deadline.first_byte_by) : deadline.at;
}

std::string_view source_name(DeadlineSource source) {
  switch (source) {
    case DeadlineSource::sent:
      return "sent";
    case DeadlineSource::read:
      return "read";
    case DeadlineSource::learned:
      return "learned";
    case DeadlineSource::none:
      break;
  }
  return "none";
}

Bound next_bound(const RequestDeadline& deadline, const PhaseBounds& bounds, const AttemptClock& clock,
                 AttemptPhase phase) {
  Bound own{};
  switch (phase) {
    case AttemptPhase::connecting:
      own = {clock.start + bounds.connect + kConnectBackstop, ErrorCode::connect_timeout};
      break;
    case AttemptPhase::awaiting_headers:
      own = {clock.sent + bounds.first_byte, ErrorCode::first_byte_timeout};
      break;
    case AttemptPhase::awaiting_first_token:
      own = {clock.start + bounds.first_token, ErrorCode::first_token_timeout};
      break;
    case AttemptPhase::relaying:
      own = {clock.last_activity + bounds.stream_idle, ErrorCode::stream_idle_timeout};
      break;
  }
  Bound bound = own;
  if (deadline.read_gap > Duration::zero()) {
    // Nothing sent yet: the wait counts from the request's arrival. A begun stream: from the
    // latest chunk. Either way the cut is named after the phase it ended.
    Bound read{clock.last_write ? *clock.last_write + deadline.read_gap : deadline.first_byte_by, own.code,
               true};
    if (phase == AttemptPhase::relaying && !clock.last_write) read.code = ErrorCode::first_byte_timeout;
    if (read.at < bound.at) bound = read;
  }
  // On a tie the phase's own bound names the cause: it is the more specific one.
  if (deadline.at < bound.at) return {deadline.at, ErrorCode::deadline_exceeded};
  return bound;
}

Millis connect_bound(const RequestDeadline& deadline, const PhaseBounds& bounds, TimePoint now) {
  auto left = std::chrono::duration_cast<Millis>(answer_by(deadline) - now);
  return std::max(Millis(1), std::min(bounds.connect, left));
}

}  // namespace ballast
