#!/usr/bin/env bash
# Builds Ory Hydra v2.3.0 for the interop tests: `go install` refuses its
# module (replace directives), and its module zip lacks the nested client
# module its go.mod points at. So: copy the downloaded module source, use
# the published hydra-client-go instead of the missing directory, keep its
# pop fork, build with cgo and SQLite (the in-memory DSN). Usage: build.sh OUT
set -euo pipefail
out=$1
version=v2.3.0
src=$(go mod download -json "github.com/ory/hydra/v2@$version" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src/." "$work/"
chmod -R u+w "$work"
cd "$work"
sed -i '\#replace github.com/ory/hydra-client-go/v2 => ./internal/httpclient#d' go.mod
go get github.com/ory/hydra-client-go/v2@v2.2.1 >/dev/null 2>&1
CGO_ENABLED=1 go build -tags sqlite -o "$out" .
