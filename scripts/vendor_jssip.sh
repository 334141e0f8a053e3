#!/bin/sh
# Rebuilds the web phone's copy of JsSIP (src/sipline/server/ops/static/phone/jssip.min.js)
# and its LICENSES.txt from npm: JsSIP ships no browser bundle, so esbuild makes one
# (window.JsSIP). Needs node and npm, and the network, once; the package then carries it.
# Usage: scripts/vendor_jssip.sh [VERSION]   (default 3.13.8)
set -eu
version=${1:-3.13.8}
out=$(cd "$(dirname "$0")/.." && pwd)/src/sipline/server/ops/static/phone
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund "jssip@$version" esbuild@0.24 >/dev/null
echo 'window.JsSIP = require("jssip");' > entry.js
node_modules/.bin/esbuild entry.js --bundle --minify --format=iife --target=es2019 \
    --legal-comments=none --outfile="$out/jssip.min.js"
{
    echo "The web phone bundles JsSIP $version (https://jssip.net, npm \"jssip\") and the"
    echo "packages it depends on, built into jssip.min.js with esbuild by"
    echo "scripts/vendor_jssip.sh. Their licences follow."
    for pkg in jssip debug events ms sdp-transform; do
        dir=node_modules/$pkg
        v=$(node -p "require('./$dir/package.json').version")
        printf '\n================================================================\n'
        printf '%s %s\n' "$pkg" "$v"
        printf '================================================================\n'
        cat "$dir"/[Ll][Ii][Cc][Ee][Nn][Ss][Ee]*
    done
} > "$out/LICENSES.txt"
echo "JsSIP $version -> $out"
