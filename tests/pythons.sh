#!/usr/bin/env bash
# The unit tests on every Python >= 3.11 found here (scripts/find-python --all) other than
# the one of .venv (make test ran everything there): a venv each in .venv-X.Y, made by
# `make install`. Says which Pythons it found and ran.
set -euo pipefail
cd "$(dirname "$0")/.."
main=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
mapfile -t pythons < <(scripts/find-python --all)
echo "Pythons >= 3.11 found: $(for p in "${pythons[@]}"; do "$p" -c 'import sys; print(sys.version.split()[0], end=" ")'; done)(.venv: $main)"
seen=" $main "
for python in "${pythons[@]}"; do
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [[ "$seen" == *" $version "* ]] && continue
  seen+="$version "
  venv=".venv-$version"
  echo "== Python $version ($python): unit tests in $venv"
  make --no-print-directory install VENV="$venv" PYTHON="$python"  # as .venv is made
  "$venv/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider
done
