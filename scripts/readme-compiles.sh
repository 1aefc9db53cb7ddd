#!/usr/bin/env bash
# The README's Quick start compiles as written: its first Go block is built
# (and vetted) as a program of this module.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=_readme_quickstart
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"
awk '/^## Quick start/ {q=1} q && /^```go$/ {g=1; next} g && /^```$/ {exit} g {print}' README.md >"$dir/main.go"
test -s "$dir/main.go" || { echo "no Go block under '## Quick start' in README.md" >&2; exit 1; }
go vet "./$dir"
go build -o /dev/null "./$dir"
echo "README Quick start compiles"
