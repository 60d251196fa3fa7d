#!/usr/bin/env bash
# Puts the project's Node.js (24 LTS, pinned) first on PATH, installing it from the npm registry's
# node-linux-<arch> package when the machine's node is older. Native addons (better-sqlite3) build against its
# headers through npm_config_nodedir.
#   source scripts/use-node24.sh         # this shell uses Node 24 from now on
#   scripts/use-node24.sh npm test       # one command on Node 24
STREAMGATE_NODE_VERSION=24.22.3

streamgate_use_node24() {
  local current
  current=$(node --version 2>/dev/null || echo v0)
  if [ "${current%%.*}" = "v24" ]; then return 0; fi
  local arch
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "use-node24: no node-linux package for $(uname -m); install Node ${STREAMGATE_NODE_VERSION} yourself" >&2; return 1 ;;
  esac
  local home="${STREAMGATE_NODE_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/streamgate}/node-v${STREAMGATE_NODE_VERSION}-${arch}"
  local dir="$home/node_modules/node-linux-${arch}"
  if [ ! -x "$dir/bin/node" ]; then
    echo "use-node24: installing node-linux-${arch}@${STREAMGATE_NODE_VERSION} into $home" >&2
    mkdir -p "$home" || return 1
    npm install --prefix "$home" --no-save --no-audit --no-fund --no-package-lock \
      "node-linux-${arch}@${STREAMGATE_NODE_VERSION}" >&2 || return 1
  fi
  export PATH="$dir/bin:$PATH"
  export npm_config_nodedir="$dir"
  hash -r
  echo "use-node24: $(node --version) at $dir/bin/node" >&2
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  streamgate_use_node24
  if [ $# -gt 0 ]; then exec "$@"; fi
else
  streamgate_use_node24
fi
