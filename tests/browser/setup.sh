#!/usr/bin/env bash
# Installs what tests/browser/test_browser.py needs (used by `tox -e browser`):
#   - Chromium: the Debian package `chromium`, with apt-get, when $CHROMIUM
#     (default /usr/bin/chromium) is missing; needs root (or sudo);
#   - the npm packages of package.json (autobahn-browser, playwright-core) into
#     tests/browser/node_modules, with `npm ci` (exact versions of package-lock.json).
# Node.js (>= 20) and npm must be installed already.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
chromium="${CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$chromium" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        sudo=(sudo)
    else
        echo "setup.sh: $chromium is missing and apt-get needs root: install the Debian" \
            "package chromium (or set CHROMIUM to a Chromium executable)" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "setup.sh: $chromium is missing and there is no apt-get: install Chromium" \
            "and set CHROMIUM to its executable" >&2
        exit 1
    fi
    echo "setup.sh: installing Chromium (apt-get install chromium)"
    export DEBIAN_FRONTEND=noninteractive
    # The package lists may be missing or stale: refresh them if the first try fails.
    if ! "${sudo[@]}" apt-get install -y chromium; then
        "${sudo[@]}" apt-get update
        "${sudo[@]}" apt-get install -y chromium
    fi
    if [ ! -x "$chromium" ]; then
        echo "setup.sh: apt-get installed chromium but $chromium is still missing" >&2
        exit 1
    fi
fi
"$chromium" --version

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "setup.sh: $tool is missing: install Node.js 20 or later (with npm)" >&2
        exit 1
    fi
done
echo "setup.sh: node $(node --version); installing npm packages in $here"
cd "$here"
npm ci --no-audit --no-fund
node -e 'for (const name of ["autobahn-browser", "playwright-core"]) {
  console.log(name + " " + require("./node_modules/" + name + "/package.json").version);
}'
