#!/usr/bin/env bash
# Makes VENV_DIR a virtual environment holding exactly what REQUIREMENTS_FILE pins, every package checked
# against its hash, and does nothing when it already does (a copy of the file inside the venv says so).
#   scripts/python-venv.sh VENV_DIR REQUIREMENTS_FILE
# REQUIREMENTS_FILE must pin every dependency with its hashes (pip-compile --generate-hashes makes one).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 VENV_DIR REQUIREMENTS_FILE" >&2
  exit 2
fi
venv=$1
requirements=$2
if [ ! -f "$requirements" ]; then
  echo "error: $requirements: no such file" >&2
  exit 2
fi
stamp=$venv/installed-requirements.txt

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c '' 2>/dev/null && cmp -s "$requirements" "$stamp"; then
  exit 0
fi

# Like npm ci, a changed file gets a fresh venv, so a package dropped from it does not linger. Only a
# directory that is a venv (pyvenv.cfg) is ever removed.
if [ -e "$venv" ]; then
  if [ ! -f "$venv/pyvenv.cfg" ]; then
    echo "error: $venv exists and is not a virtual environment; move it away" >&2
    exit 1
  fi
  rm -rf "$venv"
fi

if ! command -v python3 >/dev/null 2>&1; then
  echo "error: python3 is not installed" >&2
  exit 1
fi
echo "creating $venv with $(python3 --version) from $requirements"
if ! python3 -m venv "$venv"; then
  rm -rf "$venv"
  echo "error: python3 -m venv failed; on Debian it needs the package python3-venv" >&2
  exit 1
fi
# --no-deps: the file already pins every dependency, so pip installs those and nothing it resolves itself.
if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
  --require-hashes --no-deps -r "$requirements"; then
  rm -rf "$venv"
  echo "error: installing $requirements into $venv failed" >&2
  exit 1
fi
if ! broken=$("$venv/bin/python" -m pip check --disable-pip-version-check); then
  rm -rf "$venv"
  echo "error: $requirements does not pin a consistent set:" >&2
  echo "$broken" >&2
  exit 1
fi
cp "$requirements" "$stamp"
