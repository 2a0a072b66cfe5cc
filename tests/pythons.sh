#!/usr/bin/env bash
# The unit tests on every Python >= 3.11 found here (scripts/find-python --all) other than
# the one of .venv (make test ran everything there): a venv each in .venv-X.Y, installed
# as `make install` does. Says which Pythons it found and ran.
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
  if [[ ! -f "$venv/.installed" || pyproject.toml -nt "$venv/.installed" || constraints.txt -nt "$venv/.installed" ]]; then
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
    "$venv/bin/python" -m pip install --quiet -c constraints.txt -e '.[pystan,cmdstan,dev]'
    touch "$venv/.installed"
  fi
  "$venv/bin/python" -m pytest -q -m "not slow" -p no:cacheprovider
done
