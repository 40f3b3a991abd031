#!/usr/bin/env bash
# Install the project with scripts/setup.sh, then run the test suite offline. Arguments go to
# pytest, for example: bash scripts/test.sh -k config
# The exit code is pytest's, so a run that collects no tests fails with code 5.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

HF_HUB_OFFLINE=1 exec .venv/bin/python -m pytest -q "$@"
