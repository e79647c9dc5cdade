#!/usr/bin/env bash
# Vendors the report's offline assets into src/suanwang/report/assets/ from the npm registry:
#   echarts.min.js  - Apache ECharts 5.6.0, dist/echarts.min.js (Apache-2.0)
#   china.json      - the China province map shipped in Apache ECharts 4.9.0, map/json/china.json (Apache-2.0
#                     package; coordinates compressed with the "UTF8Encoding" scheme, which ECharts 5 still decodes)
# Run from the repository root: bash scripts/vendor_assets.sh   (needs npm and sha256sum)
set -euo pipefail

ECHARTS_VERSION=5.6.0
MAP_ECHARTS_VERSION=4.9.0
DEST="$(pwd)/src/suanwang/report/assets"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cd "$WORK"
npm pack --silent "echarts@${ECHARTS_VERSION}" "echarts@${MAP_ECHARTS_VERSION}" >/dev/null
mkdir new old
tar xzf "echarts-${ECHARTS_VERSION}.tgz" -C new
tar xzf "echarts-${MAP_ECHARTS_VERSION}.tgz" -C old

cp new/package/dist/echarts.min.js "$DEST/echarts.min.js"
cp old/package/map/json/china.json "$DEST/china.json"
cp new/package/LICENSE "$DEST/LICENSE-echarts.txt"

# The page inlines both files inside <script> elements: neither may contain a closing script tag.
if grep -qi "</script" "$DEST/echarts.min.js" "$DEST/china.json"; then
  echo "vendored asset contains </script: the inline page would break" >&2
  exit 1
fi
(cd "$DEST" && sha256sum echarts.min.js china.json LICENSE-echarts.txt)
