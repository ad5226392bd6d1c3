#!/usr/bin/env bash
# Run the bgpsvc command from a fresh checkout: sets up .venv on first use, then runs `bgpsvc ARGS`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BGPSVC_EXTRAS=${BGPSVC_EXTRAS-} "$here/scripts/bootstrap"
exec "$here/.venv/bin/bgpsvc" "$@"
