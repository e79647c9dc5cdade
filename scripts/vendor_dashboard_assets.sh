#!/usr/bin/env bash
# Vendor the dashboard's browser assets into src/suanwang/service/static/ (no CDN at run time).
#   - ECharts 5 (Apache-2.0): dist/echarts.min.js from npm echarts@5
#   - China map GeoJSON (Apache-2.0, shipped with ECharts 4.9.0): map/json/china.json from npm echarts@4.9.0
# The map has no 审图号 (map review number); the dashboard footer says so. Rerun to upgrade; commit the result.
set -euo pipefail

ECHARTS_VERSION="${ECHARTS_VERSION:-5}"
MAP_VERSION="4.9.0"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
static="$here/src/suanwang/service/static"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "echarts@${ECHARTS_VERSION}" >/dev/null
npm pack --silent "echarts@${MAP_VERSION}" >/dev/null
new="$(ls echarts-5.*.tgz)"
mkdir e5 e4
tar xzf "$new" -C e5 package/dist/echarts.min.js package/LICENSE package/NOTICE
tar xzf "echarts-${MAP_VERSION}.tgz" -C e4 package/map/json/china.json

cp e5/package/dist/echarts.min.js "$static/echarts.min.js"
cp e4/package/map/json/china.json "$static/china.json"
{
  echo "Vendored by scripts/vendor_dashboard_assets.sh on $(date -u +%Y-%m-%d)."
  echo "echarts.min.js: npm ${new%.tgz} (Apache-2.0)"
  echo "china.json: npm echarts-${MAP_VERSION} map/json/china.json (Apache-2.0); no 审图号 (map review number)."
  echo
  cat e5/package/NOTICE
  echo
  cat e5/package/LICENSE
} >"$static/THIRD_PARTY_LICENSES.txt"
echo "vendored into $static:"
ls -l "$static/echarts.min.js" "$static/china.json" "$static/THIRD_PARTY_LICENSES.txt"
