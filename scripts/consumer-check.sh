#!/usr/bin/env bash
# Builds and runs a package that depends on swift-distill as a user's package would: from a git
# URL, by version (`.package(url:from:)`). SwiftPM refuses such a dependency when any product
# uses unsafeFlags, and the run trains a few steps through the public API (Tests/Consumer).
# Uses a clone of this repository's HEAD (or of REV: scripts/consumer-check.sh [REV]), tagged
# 1.0.0, in a temporary folder. CI runs it.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/swift-distill"
if [ -n "${1:-}" ]; then git -C "$work/swift-distill" checkout -q "$1"; fi
git -C "$work/swift-distill" -c user.name=ci -c user.email=ci@localhost tag -a 1.0.0 -m "consumer check"
mkdir -p "$work/consumer"
cp -R "$repo/Tests/Consumer/Sources" "$work/consumer/"
sed "s|DISTILL_URL|file://$work/swift-distill|" "$repo/Tests/Consumer/Package.swift.template" \
  > "$work/consumer/Package.swift"
swift build --package-path "$work/consumer" -c release
"$work/consumer/.build/release/Consumer"
echo "consumer-check: swift-distill works as a versioned dependency"
