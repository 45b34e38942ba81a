#!/usr/bin/env bash
# What a new user gets who installs from the README today: a fresh clone of the committed tree,
# a fresh virtual environment with the newest releases pyproject.toml's ranges allow (no
# .ci/constraints.txt), then the docs site built strictly and the test suite. CI installs the
# pinned versions; run this now and then to learn early what the next refresh will bring.
#     bash scripts/check_latest.sh
set -euo pipefail
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
git clone --quiet "$top" "$dir/clone"
cd "$dir/clone"
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
pip install --quiet --upgrade --no-cache-dir -e ".[test,docs]"
pip list 2>/dev/null | grep -iE "^(jax|jaxlib|numpy|flax|optax|pandas|pyarrow|matplotlib|mkdocs|mkdocs-material|mkdocstrings|mkdocstrings-python) "
mkdocs build --strict --quiet
CI=true pytest -q
