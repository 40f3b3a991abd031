#!/usr/bin/env bash
# Fine-tune the sentiment task on its embedded sample data with the packaged MiniLM model, then
# classify two sentences. Needs no network once scripts/setup.sh has installed the packages.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh

.venv/bin/taskforge finetune --task sentiment --output-dir outputs/sentiment-demo --overwrite

.venv/bin/taskforge predict --model-dir outputs/sentiment-demo \
    "The battery lasts all day and the screen is gorgeous." \
    "It broke after two days and support never answered."
