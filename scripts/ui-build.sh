#!/bin/sh
# Assembles the web interface the Oracle serves at /ui/ (issue 13): the pages of ui/pages (plain
# HTML, CSS and ES modules, no build step) and, under vendor/, the npm assets they use, taken
# from ui/node_modules as `npm ci` installed them from ui/package-lock.json (pinned by version and
# integrity; never a CDN). Usage: scripts/ui-build.sh OUT_DIR
set -eu
out=${1:?usage: ui-build.sh OUT_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
nm=$here/ui/node_modules
for f in @xterm/xterm/lib/xterm.mjs @xterm/addon-attach/lib/addon-attach.mjs @xterm/addon-fit/lib/addon-fit.mjs \
         uplot/dist/uPlot.esm.js @novnc/novnc/core/rfb.js; do
        [ -f "$nm/$f" ] || { echo "ui-build: $nm/$f is missing: run make deps (npm ci in ui/)" >&2; exit 1; }
done
tmp=$out.tmp.$$
rm -rf "$tmp"
mkdir -p "$tmp/vendor/xterm" "$tmp/vendor/uplot" "$tmp/vendor/novnc"
cp -R "$here/ui/pages/." "$tmp/"
cp "$nm/@xterm/xterm/lib/xterm.mjs" "$nm/@xterm/xterm/css/xterm.css" \
   "$nm/@xterm/addon-attach/lib/addon-attach.mjs" "$nm/@xterm/addon-fit/lib/addon-fit.mjs" "$tmp/vendor/xterm/"
cp "$nm/uplot/dist/uPlot.esm.js" "$nm/uplot/dist/uPlot.min.css" "$tmp/vendor/uplot/"
cp -R "$nm/@novnc/novnc/core" "$nm/@novnc/novnc/vendor" "$tmp/vendor/novnc/"
# what the Oracle does not serve (ui_path_ok: known types only) stays out of the tree
find "$tmp" -name '*.map' -delete
rm -rf "$out"
mv "$tmp" "$out"
