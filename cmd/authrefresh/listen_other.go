//go:build !unix

package main

import (
	"errors"
	"net"
)

// listenUnix is unavailable where unix sockets with owner-only permissions
// cannot be created.
func listenUnix(string) (net.Listener, error) {
	return nil, errors.New("--listen unix:PATH needs a unix system")
}
