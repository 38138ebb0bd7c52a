#!/usr/bin/env bash
# Install faceattr with its test and training extras, then run the test suite.
# torch is pinned to the build this machine serves from disk; pip never pulls a newer one.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
python3 -m pip install -q -e ".[train,serve,video,ray,onnx,test]"
# The page's tests drive a real headless Chromium: Debian's, as browser builds cannot be downloaded.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) \
            || echo "chromium could not be installed: the page's browser tests will skip, saying so" >&2
    else
        echo "chromium and chromium-driver are missing (apt-get install chromium chromium-driver): the page's browser tests will skip" >&2
    fi
fi
python3 -m pytest -q "$@"
