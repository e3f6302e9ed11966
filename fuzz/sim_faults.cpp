// The simulator's fault specs (sim/faults), as --fault and the x-sim-fault header give them. What
// parses is in range and reads the same again from its own spelling; planning a few requests with
// the faults never lets a #N fault hit more than N of them.
#include <cstddef>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "check.hpp"
#include "sim/faults.hpp"

namespace {

using ballast::sim::Fault;

bool same(const Fault& a, const Fault& b) {
  return a.kind == b.kind && a.value == b.value && a.retry_after == b.retry_after &&
         a.error_code == b.error_code && a.probability == b.probability && a.times == b.times &&
         a.spec == b.spec;
}

void check_fault(const Fault& f) {
  FUZZ_CHECK(f.probability >= 0 && f.probability <= 1);
  FUZZ_CHECK(f.times == -1 || (f.times >= 1 && f.times <= 1'000'000));
  FUZZ_CHECK(f.retry_after >= -1 && f.retry_after <= 86400);
  FUZZ_CHECK(f.value >= 0 && f.value <= 3'600'000);
  if (f.kind == ballast::sim::FaultKind::status) FUZZ_CHECK(f.value >= 100 && f.value <= 599);
  auto again = ballast::sim::parse_fault(f.spec);
  FUZZ_CHECK(again.fault && same(f, *again.fault));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto one = ballast::sim::parse_fault(text);
  FUZZ_CHECK(one.fault.has_value() == one.error.empty());
  if (one.fault) check_fault(*one.fault);

  auto list = ballast::sim::parse_fault_list(text);
  FUZZ_CHECK(list.error.empty() || list.faults.empty());
  for (const auto& f : list.faults) check_fault(f);

  std::vector<Fault> faults = list.faults;
  std::vector<int> hits(faults.size(), 0);
  std::mt19937_64 rng(size);
  for (int request = 0; request < 8; ++request) {
    std::vector<Fault> before = faults;
    auto plan = ballast::sim::plan_faults(faults, rng);
    for (size_t i = 0; i < faults.size(); ++i) {
      int was = before[i].times;
      FUZZ_CHECK(faults[i].times == was || (was > 0 && faults[i].times == was - 1));
      if (faults[i].times != was) ++hits[i];
    }
    if (plan.status) FUZZ_CHECK(*plan.status >= 100 && *plan.status <= 599);
    FUZZ_CHECK(plan.slow_headers_ms >= 0);
  }
  for (size_t i = 0; i < faults.size(); ++i) {
    if (list.faults[i].times > 0) FUZZ_CHECK(hits[i] <= list.faults[i].times);
  }
  return 0;
}
