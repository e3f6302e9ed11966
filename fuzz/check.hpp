// What the fuzz targets share: FUZZ_CHECK, an invariant that holds for every input (it aborts, so
// libFuzzer saves the input, whatever NDEBUG says), and a small deterministic random source for
// choices an input should not have to spell out (chunk splits).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

namespace ballast::fuzz {

// splitmix64: the same splits for the same input on every run, so a saved crash reproduces.
class Splits {
 public:
  explicit Splits(std::string_view seed) {
    for (unsigned char c : seed) state_ = (state_ ^ c) * 0x100000001b3ull;
  }
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // A number in [0, n); n > 0.
  uint64_t below(uint64_t n) { return next() % n; }

 private:
  uint64_t state_ = 0xcbf29ce484222325ull;
};

}  // namespace ballast::fuzz
