#!/usr/bin/env bash
# Installs what building and testing ballast needs on Debian 12, and nothing that is already there.
#   scripts/install-deps.sh build   — compiler, CMake and the libraries (building and running need no Node.js)
#   scripts/install-deps.sh fuzz    — the above, plus clang and libFuzzer's runtime (make fuzz)
#   scripts/install-deps.sh test    — all of the above, plus the test tools, clang-tidy, the Node clients (npm ci)
#                                     and the Python clients (.venv, from tests/python/requirements.txt; those on
#                                     openai-python 2.x in .venv-openai2, from tests/python/openai2/requirements.txt)
#   scripts/install-deps.sh bench   — the above, plus the peers measured in bench/ (wrk, haproxy, nginx, valgrind, and
#                                     LiteLLM's proxy in bench/out/litellm-venv, from bench/litellm/requirements.txt)
set -euo pipefail
cd "$(dirname "$0")/.."

what=${1:-build}
packages=(g++ cmake make ninja-build pkg-config ccache
  libboost1.81-dev libcurl4-openssl-dev libssl-dev libsimdjson-dev libyaml-cpp-dev
  libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev)
# -fsanitize=fuzzer comes with clang's runtime libraries, in a package of their own on Debian 12.
fuzz_packages=(clang libclang-rt-14-dev)
case "$what" in
  build) ;;
  fuzz) packages+=("${fuzz_packages[@]}") ;;
  test) packages+=(curl openssl python3 python3-venv nginx tinyproxy redis-server clang-tidy chromium "${fuzz_packages[@]}") ;;
  bench) packages+=(curl openssl python3 python3-venv nginx tinyproxy redis-server clang-tidy wrk haproxy valgrind) ;;
  *) echo "usage: $0 build|fuzz|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  # libboost1.81-dev conflicts with the unversioned libboost-*-dev (1.74): apt names the conflict if there is one.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$what" != build ] && [ "$what" != fuzz ]; then
  # The Node clients need Node 20 or newer; Debian's nodejs (18) is too old, so it is never installed from here.
  if ! command -v node >/dev/null 2>&1; then
    echo "error: node is not installed; the integration tests need Node.js 20 or newer with npm" >&2
    exit 1
  fi
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "error: node $(node --version) is too old; the integration tests need Node.js 20 or newer" >&2
    exit 1
  fi
  lock=tests/integration/package-lock.json
  stamp=tests/integration/node_modules/.installed-lock
  if ! cmp -s "$lock" "$stamp" 2>/dev/null; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "error: npm is not installed; the integration tests need it (with Node.js 20 or newer) for their clients" >&2
      exit 1
    fi
    (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error)
    cp "$lock" "$stamp"
  fi
  scripts/python-venv.sh .venv tests/python/requirements.txt
  scripts/python-venv.sh .venv-openai2 tests/python/openai2/requirements.txt
fi
if [ "$what" = bench ]; then
  scripts/python-venv.sh bench/out/litellm-venv bench/litellm/requirements.txt
fi
