#!/usr/bin/env bash
# Install faceattr (with the training extras) and run the main job on the example photo.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python3 -m pip install -q -e ".[train,test]"
faceattr predict examples/astronaut.png
