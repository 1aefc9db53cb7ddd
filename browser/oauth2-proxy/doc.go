// Package oauth2proxy pins oauth2-proxy, the peer the browser module's tests
// run beside the BFF: its module builds github.com/oauth2-proxy/oauth2-proxy/v7
// at the version in go.mod (go build -o oauth2-proxy github.com/oauth2-proxy/oauth2-proxy/v7),
// so the browser module itself requires nothing of it.
package oauth2proxy
