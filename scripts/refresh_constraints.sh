#!/usr/bin/env bash
# Refresh .ci/constraints.txt, the versions CI installs: today's releases of everything
# `pip install -e ".[test,docs]"` pulls in, resolved in a fresh virtual environment. Run it from
# the project root, then run ../.ci/run (or `bash .ci/run` in a fresh clone) before committing:
#     bash scripts/refresh_constraints.sh
set -euo pipefail
cd "$(dirname "$0")/.."
env=$(mktemp -d)
trap 'rm -rf "$env"' EXIT
python3 -m venv "$env"
"$env/bin/python" -m pip install --quiet --upgrade pip setuptools
"$env/bin/pip" install --quiet --upgrade -e ".[test,docs]"
{
  echo "# The versions CI installs (pip install -c .ci/constraints.txt), resolved on $(date -u +%F)"
  echo "# with $("$env/bin/python" --version). Users install the ranges of pyproject.toml."
  echo "# Refresh: bash scripts/refresh_constraints.sh; check today's releases without pins:"
  echo "# bash scripts/check_latest.sh"
  "$env/bin/pip" freeze --all --exclude-editable
} > .ci/constraints.txt
echo "wrote .ci/constraints.txt ($(grep -vc '^#' .ci/constraints.txt) pins)"
