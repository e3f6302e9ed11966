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

HealthEvent OutlierState::eject(TimePoint now) {
  // A healthy stretch as long as the longest ejection forgives the earlier ones.
  if (ejections_ > 0 && !is_ejected_ && now - readmitted_at_ >= policy_->max_ejection) ejections_ = 0;
  ++ejections_;
  last_ejection_ = std::min(policy_->base_ejection * ejections_, policy_->max_ejection);
  until_ = now + last_ejection_;
  is_ejected_ = true;
  probing_ = false;
  failures_ = 0;
  return HealthEvent::ejected;
}

HealthEvent OutlierState::report_failure(TimePoint now, bool may_eject) {
  if (is_ejected_) {
    // The half-open probe failed: eject again, for longer. A request sent before the ejection that
    // fails only now says nothing new.
    return probing_ ? eject(now) : HealthEvent::none;
  }
  ++failures_;
  if (failures_ >= policy_->consecutive_failures && may_eject) return eject(now);
  return HealthEvent::none;
}

HealthEvent OutlierState::report_success(TimePoint now) {
  failures_ = 0;
  if (is_ejected_ && state(now) == State::half_open) {
    is_ejected_ = false;
    probing_ = false;
    readmitted_at_ = now;
    return HealthEvent::readmitted;
  }
  return HealthEvent::none;
}

HealthEvent OutlierState::check_passed(TimePoint now) {
  failures_ = 0;
  if (!is_ejected_) return HealthEvent::none;
  is_ejected_ = false;
  probing_ = false;
  readmitted_at_ = now;
  return HealthEvent::readmitted;
}

void OutlierState::report_neutral() {
  probing_ = false;
}

}  // namespace ballast
