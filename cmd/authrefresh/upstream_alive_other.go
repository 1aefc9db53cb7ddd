//go:build !unix

package main

import "net"

// stillOpen cannot look at the socket here; a closed connection is found
// when the request is sent, and an idempotent one is sent again.
func stillOpen(net.Conn) bool { return true }
