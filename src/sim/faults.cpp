#include "sim/faults.hpp"

#include <charconv>

namespace ballast::sim {

namespace {

std::optional<int> whole(std::string_view s, int min, int max) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || v < min || v > max) return std::nullopt;
  return v;
}

}  // namespace

FaultParse parse_fault(std::string_view spec) {
  FaultParse out;
  Fault f;
  f.spec = std::string(spec);
  std::string_view body = spec;
  if (size_t hash = body.rfind('#'); hash != std::string_view::npos) {
    auto n = whole(body.substr(hash + 1), 1, 1'000'000);
    if (!n) {
      out.error = "'" + std::string(spec) + "': the count after # must be a whole number from 1 to 1000000";
      return out;
    }
    f.times = *n;
    body = body.substr(0, hash);
  }
  if (size_t at = body.rfind('@'); at != std::string_view::npos) {
    std::string_view p = body.substr(at + 1);
    double prob = -1;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prob);
    // Written so that NaN ("nan" reads as one) fails too: it would make the fault hit every request.
    if (ec != std::errc() || end != p.data() + p.size() || !(prob >= 0 && prob <= 1)) {
      out.error = "'" + std::string(spec) + "': the probability after @ must be a number from 0 to 1";
      return out;
    }
    f.probability = prob;
    body = body.substr(0, at);
  }
  std::string_view name = body.substr(0, body.find('='));
  std::string_view arg = body.size() > name.size() ? body.substr(name.size() + 1) : std::string_view();
  auto needs = [&](int min, int max, const char* what) -> bool {
    auto v = whole(arg, min, max);
    if (!v) {
      out.error = "'" + std::string(spec) + "': " + std::string(name) + " takes " + what;
      return false;
    }
    f.value = *v;
    return true;
  };
  auto takes_none = [&]() -> bool {
    if (arg.empty() && body.find('=') == std::string_view::npos) return true;
    out.error = "'" + std::string(spec) + "': " + std::string(name) + " takes no value";
    return false;
  };
  bool ok = false;
  if (name == "status") {
    f.kind = FaultKind::status;
    std::string_view code = arg.substr(0, arg.find(','));
    std::string_view rest = arg.size() > code.size() ? arg.substr(code.size() + 1) : std::string_view();
    arg = code;
    // Not 1xx: an interim status is no answer, and a client would wait on for the real one.
    ok = needs(200, 599, "an HTTP status from 200 to 599, e.g. status=503");
    while (ok && !rest.empty()) {
      std::string_view option = rest.substr(0, rest.find(','));
      rest = rest.size() > option.size() ? rest.substr(option.size() + 1) : std::string_view();
      std::optional<int> ra;
      if (option.starts_with("retry-after=") && (ra = whole(option.substr(12), 0, 86400))) {
        f.retry_after = *ra;
      } else if (option.starts_with("code=") && option.size() > 5) {
        f.error_code = std::string(option.substr(5));
      } else {
        out.error =
            "'" + std::string(spec) + "': after the status only retry-after=SECONDS and code=NAME may follow";
        ok = false;
      }
    }
  } else if (name == "blackhole") {
    f.kind = FaultKind::blackhole;
    ok = takes_none();
  } else if (name == "reset") {
    f.kind = FaultKind::reset;
    ok = takes_none();
  } else if (name == "malformed") {
    f.kind = FaultKind::malformed;
    ok = takes_none();
  } else if (name == "malformed-at") {
    f.kind = FaultKind::malformed_at;
    ok = needs(0, 1'000'000, "a token count");
  } else if (name == "no-done") {
    f.kind = FaultKind::no_done;
    ok = takes_none();
  } else if (name == "error-event") {
    f.kind = FaultKind::error_event;
    ok = needs(0, 1'000'000, "a token count");
  } else if (name == "keepalive-only") {
    f.kind = FaultKind::keepalive_only;
    ok = takes_none();
  } else if (name == "slow-headers") {
    f.kind = FaultKind::slow_headers;
    ok = needs(0, 3'600'000, "milliseconds");
  } else if (name == "slow-first-token") {
    f.kind = FaultKind::slow_first_token;
    ok = needs(0, 3'600'000, "milliseconds");
  } else if (name == "stall-after") {
    f.kind = FaultKind::stall_after;
    ok = needs(0, 1'000'000, "a token count");
  } else if (name == "cut-after") {
    f.kind = FaultKind::cut_after;
    ok = needs(0, 1'000'000, "a token count");
  } else {
    out.error = "'" + std::string(spec) +
                "': unknown fault (expected status=CODE, blackhole, reset, slow-headers=MS, "
                "slow-first-token=MS, stall-after=K, cut-after=K, malformed, malformed-at=K, no-done, "
                "error-event=K, keepalive-only)";
  }
  if (ok) out.fault = std::move(f);
  return out;
}

FaultListParse parse_fault_list(std::string_view specs) {
  FaultListParse out;
  size_t i = 0;
  while (i < specs.size()) {
    size_t end = specs.find_first_of("; ", i);
    if (end == std::string_view::npos) end = specs.size();
    std::string_view one = specs.substr(i, end - i);
    i = end + 1;
    if (one.empty()) continue;
    auto p = parse_fault(one);
    if (!p.fault) {
      out.error = p.error;
      out.faults.clear();
      return out;
    }
    out.faults.push_back(std::move(*p.fault));
  }
  return out;
}

bool FaultPlan::any() const {
  return status || blackhole || reset || malformed || keepalive_only || slow_headers_ms > 0 ||
         slow_first_token_ms || stall_after || cut_after || malformed_at || no_done || error_event;
}

FaultPlan plan_faults(std::vector<Fault>& faults, std::mt19937_64& rng) {
  FaultPlan plan;
  for (auto& f : faults) {
    if (f.times == 0) continue;
    if (f.probability < 1.0) {
      // 53 random bits → [0,1): the same sequence on every platform for a given seed.
      double roll = static_cast<double>(rng() >> 11) * 0x1.0p-53;
      if (roll >= f.probability) continue;
    }
    if (f.times > 0) --f.times;
    switch (f.kind) {
      case FaultKind::status:
        if (!plan.status) {
          plan.status = f.value;
          plan.retry_after = f.retry_after;
          plan.error_code = f.error_code;
        }
        break;
      case FaultKind::blackhole:
        plan.blackhole = true;
        break;
      case FaultKind::reset:
        plan.reset = true;
        break;
      case FaultKind::malformed:
        plan.malformed = true;
        break;
      case FaultKind::keepalive_only:
        plan.keepalive_only = true;
        break;
      case FaultKind::malformed_at:
        plan.malformed_at = f.value;
        break;
      case FaultKind::no_done:
        plan.no_done = true;
        break;
      case FaultKind::error_event:
        plan.error_event = f.value;
        break;
      case FaultKind::slow_headers:
        plan.slow_headers_ms = f.value;
        break;
      case FaultKind::slow_first_token:
        plan.slow_first_token_ms = f.value;
        break;
      case FaultKind::stall_after:
        plan.stall_after = f.value;
        break;
      case FaultKind::cut_after:
        plan.cut_after = f.value;
        break;
    }
  }
  return plan;
}

}  // namespace ballast::sim
