//go:build !unix

package upstream

import "net"

// stillOpen cannot look at the socket here, so it cannot tell whether the
// upstream sent bytes beyond its last answer: a connection is not reused.
func stillOpen(net.Conn) bool { return false }
