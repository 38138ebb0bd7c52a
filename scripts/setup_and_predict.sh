#!/usr/bin/env bash
# Install faceattr the way a user does (a built package, not an editable clone), with the
# training extras, and run the main job on the example photo from outside the clone.
# torch is pinned to the build this project's machines serve from disk; pip never pulls a newer one.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
python3 -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python3 -m pip install -q ".[train]"
cd "${TMPDIR:-/tmp}"
faceattr predict "$repo/examples/astronaut.png"
