// Package peers holds the clients authrefresh is measured against that are
// not in its own module: resty (Go) and axios-auth-refresh (Node.js, driven as
// a child process). It is a separate module so that neither resty nor npm ever
// becomes a dependency of the library; run its benchmarks from this folder:
//
//	npm ci --prefix axios        # once: axios and axios-auth-refresh, pinned
//	go test -run '^$' -bench . -benchtime 1x
//
// Each peer is wired the way its own documentation and tracker show, with
// the most charitable choice where they leave one open; README.md says which.
package peers
