#!/usr/bin/env bash
# Install faceattr with its test and training extras, then run the test suite.
# torch is pinned to the build this machine serves from disk; pip never pulls a newer one.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python3 -m pip install -q -e ".[train,serve,video,ray,test]"
python3 -m pytest -q "$@"
