#!/usr/bin/env bash
# Runs fuzz targets one after another, each for SECONDS on its committed corpus (fuzz/corpus/NAME).
# New inputs go to OUT/NAME/corpus and findings (crash-*, timeout-*, leak-*, oom-*) to OUT/NAME/,
# never into the committed corpus. Exits non-zero if any target found something.
#   fuzz/run.sh SECONDS OUT TARGET_BINARY...      (a target named fuzz_NAME reads fuzz/corpus/NAME)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ $# -lt 3 ]; then
  echo "usage: $0 SECONDS OUT TARGET_BINARY..." >&2
  exit 2
fi
seconds=$1 out=$2
shift 2

failed=0
for target in "$@"; do
  name=$(basename "$target")
  name=${name#fuzz_}
  corpus=$here/corpus/$name
  work=$out/$name
  mkdir -p "$work/corpus"
  dict=()
  [ -f "$here/dict/$name.dict" ] && dict=("-dict=$here/dict/$name.dict")
  # -timeout: an input that takes over 10 s is a hang. -rss_limit_mb: the machine is shared.
  if "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
    -artifact_prefix="$work/" "${dict[@]}" "$work/corpus" "$corpus" >"$work/log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
    echo "$name: ${runs:-?} inputs in ${seconds}s, nothing found ($(ls "$work/corpus" | wc -l) new in $work/corpus)"
  else
    failed=1
    echo "$name: FOUND SOMETHING, see $work/log; the input is in:" >&2
    ls -d "$work"/crash-* "$work"/timeout-* "$work"/leak-* "$work"/oom-* 2>/dev/null | sed 's/^/  /' >&2
    grep -m1 -A30 -E '^==[0-9]+==ERROR|runtime error|invariant broken|ERROR: libFuzzer' "$work/log" >&2
  fi
done
exit $failed
