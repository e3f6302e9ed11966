#!/usr/bin/env bash
# clang-tidy (.clang-tidy) over ballast's own sources (src/), with the compile commands of a CMake build
# directory, several files at once. Prints only what it finds, then one line; fails on any finding.
# tests/unit is left out: its GoogleTest files would add two thirds to the run (measured: src/ about
# 3.5 minutes on 2 cores, tests/unit 2 more).
#   scripts/lint.sh [BUILD_DIR [JOBS]]   — defaults: build, one file per core
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build}
jobs=${2:-$(nproc)}
if ! command -v clang-tidy >/dev/null 2>&1; then
  echo "error: clang-tidy is not installed; scripts/install-deps.sh test installs it" >&2
  exit 1
fi
if [ ! -f "$build/compile_commands.json" ]; then
  echo "error: $build/compile_commands.json is missing; configure the build first (make build)" >&2
  exit 1
fi

# A finding in a header is reported by every file that includes it: each is shown once, with its notes.
dedupe() {
  awk 'BEGIN { show = 1 }
    /^(Error while processing|Found compiler error)/ { print; next }
    /^[^ ].*:[0-9]+:[0-9]+: (warning|error): / { show = !seen[$0]++ }
    show'
}

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
started=$SECONDS
mapfile -t files < <(find src -name '*.cpp' | sort)
# Each file's findings go to a file of their own, so parallel runs never interleave their lines.
# clang-tidy counts the warnings it filtered out of Boost and the standard library ("N warnings
# generated."): that line says nothing here and is dropped.
printf '%s\n' "${files[@]}" | xargs -P "$jobs" -I{} sh -c '
  log="$3/$(echo "$2" | tr / _).log"
  clang-tidy -p "$1" --quiet "$2" >"$log" 2>&1 || touch "$log.failed"
' lint "$build" {} "$out"

for f in "${files[@]}"; do
  grep -Ev '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$' "$out/$(echo "$f" | tr / _).log" || true
done | dedupe
failed=$(find "$out" -name '*.failed' | wc -l)
elapsed=$((SECONDS - started))
if ((failed)); then
  echo "clang-tidy: findings in $failed of ${#files[@]} files (${elapsed}s, $jobs at once)" >&2
  exit 1
fi
echo "clang-tidy: ${#files[@]} files clean (${elapsed}s, $jobs at once)"
