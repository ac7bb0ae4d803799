#!/bin/sh
# tools/zw/report/npm-ci.sh NPM DIR - `npm ci` in DIR (package.json and package-lock.json copied
# there by cmake/report.cmake), with a message that says what to do when it fails.
npm=$1
dir=$2
cd "$dir" || exit 1
if ! "$npm" ci --no-audit --no-fund --loglevel=error; then
    echo "zw report: error: npm ci could not install the report's pinned libraries" \
        "(tools/zw/report/package-lock.json): is the npm registry reachable?" >&2
    echo "zw report: configure with -DZW_REPORT=OFF (make CMAKE_FLAGS=-DZW_REPORT=OFF) to build" \
        "zw without 'report'" >&2
    exit 1
fi
