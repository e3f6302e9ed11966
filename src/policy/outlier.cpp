#include "policy/outlier.hpp"

#include <algorithm>

namespace ballast {

OutlierState::State OutlierState::state(TimePoint now) const {
  if (!is_ejected_) return State::healthy;
  return now < until_ ? State::ejected : State::half_open;
}

bool OutlierState::available(TimePoint now) const {
  switch (state(now)) {
    case State::healthy:
      return true;
    case State::ejected:
      return false;
    case State::half_open:
      return !probing_;
  }
  return true;
}

void OutlierState::on_send(TimePoint now) {
  if (state(now) == State::half_open) probing_ = true;
}

int64_t OutlierState::slot_index(TimePoint now) const {
  auto width = std::max<int64_t>(1, policy_->window.count() / static_cast<int64_t>(kSlots));
  return std::chrono::duration_cast<Millis>(now.time_since_epoch()).count() / width;
}

void OutlierState::count(TimePoint now, bool failed) {
  int64_t index = slot_index(now);
  Slot& s = slots_[static_cast<size_t>(index) % kSlots];
  if (s.index != index) s = Slot{index, 0, 0};
  ++s.requests;
  if (failed) ++s.failures;
}

int OutlierState::window_sum(TimePoint now, int Slot::*field) const {
  int64_t index = slot_index(now);
  int n = 0;
  for (const auto& s : slots_)
    if (s.index > index - static_cast<int64_t>(kSlots) && s.index <= index) n += s.*field;
  return n;
}

int OutlierState::window_requests(TimePoint now) const {
  return window_sum(now, &Slot::requests);
}

int OutlierState::window_failures(TimePoint now) const {
  return window_sum(now, &Slot::failures);
}

bool OutlierState::rate_exceeded(TimePoint now) const {
  int requests = window_requests(now);
  return requests >= policy_->min_requests &&
         window_failures(now) >= policy_->failure_rate * static_cast<double>(requests);
}

HealthEvent OutlierState::eject(TimePoint now) {
  // A healthy stretch as long as the longest ejection forgives the earlier ones.
  if (ejections_ > 0 && !is_ejected_ && now - readmitted_at_ >= policy_->max_ejection) ejections_ = 0;
  ++ejections_;
  last_ejection_ = std::min(policy_->base_ejection * ejections_, policy_->max_ejection);
  until_ = now + last_ejection_;
  is_ejected_ = true;
  probing_ = false;
  failures_ = 0;
  // The traffic that led here has been acted on; what comes after readmission is judged afresh.
  slots_ = {};
  return HealthEvent::ejected;
}

HealthEvent OutlierState::readmit(TimePoint now) {
  is_ejected_ = false;
  probing_ = false;
  readmitted_at_ = now;
  return HealthEvent::readmitted;
}

HealthEvent OutlierState::report_failure(TimePoint now, bool may_eject) {
  if (is_ejected_) {
    // The half-open probe failed: eject again, for longer. A request sent before the ejection that
    // fails only now says nothing new.
    return probing_ ? eject(now) : HealthEvent::none;
  }
  ++failures_;
  count(now, true);
  if ((failures_ >= policy_->consecutive_failures || rate_exceeded(now)) && may_eject) return eject(now);
  return HealthEvent::none;
}

HealthEvent OutlierState::report_success(TimePoint now) {
  if (is_ejected_) {
    // The probe succeeded: readmitted. A success of a request sent before the ejection proves
    // nothing about now.
    if (probing_ && state(now) == State::half_open) {
      failures_ = 0;
      return readmit(now);
    }
    return HealthEvent::none;
  }
  failures_ = 0;
  count(now, false);
  return HealthEvent::none;
}

HealthEvent OutlierState::check_passed(TimePoint now) {
  if (state(now) != State::half_open || probing_) return HealthEvent::none;
  return readmit(now);
}

void OutlierState::report_neutral() {
  probing_ = false;
}

}  // namespace ballast
