// Command tcprelay copies bytes between each accepted loopback connection
// and a new connection to -to, in both directions, and does nothing else: no
// HTTP, no token. scripts/sidecar-load.sh runs the load through it to measure
// the floor of any hop between a program and its API — what the two extra
// loopback sockets cost before a proxy does any work of its own.
//
//	go run ./internal/tcprelay -to 127.0.0.1:8080
//
// It prints "tcprelay on http://ADDR" when it listens.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
)

func main() {
	to := flag.String("to", "", "host:port to relay to (loopback)")
	flag.Parse()
	if ip := net.ParseIP(hostOf(*to)); ip == nil || !ip.IsLoopback() {
		fmt.Fprintln(os.Stderr, "tcprelay: -to must be a loopback host:port")
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tcprelay:", err)
		os.Exit(1)
	}
	fmt.Println("tcprelay on http://" + ln.Addr().String())
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go relay(c, *to)
	}
}

func hostOf(addr string) string {
	host, _, _ := net.SplitHostPort(addr)
	return host
}

func relay(c net.Conn, to string) {
	defer c.Close()
	u, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer u.Close()
	go pump(u, c)
	pump(c, u)
}

// pump copies with read and write, not io.Copy: between two TCP sockets
// io.Copy splices through a pipe, two system calls per read instead of one,
// which for small messages costs more than it saves.
func pump(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return
		}
	}
}
