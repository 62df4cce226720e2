#!/usr/bin/env bash
# Create .venv with the pinned CPU torch first, so pip never resolves a CUDA build, then the project.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
.venv/bin/pip install -q -e ".[test,sd]"
# Upscaler models: spandrel without its torchvision requirement (see the [upscale] extra in pyproject.toml).
.venv/bin/pip install -q einops==0.8.2
.venv/bin/pip install -q --no-deps spandrel==0.4.2
# The server (python -m studio serve) and its client: ray[serve] and aiohttp, no torch among their requirements.
.venv/bin/pip install -q -e ".[serve,client]"
