// Package interop proves authrefresh against third-party authorization
// servers run on loopback: panva/oidc-provider (installed with npm ci in
// interop/oidc-provider). It is a module of its own so that the library
// gains no dependency; run it with
//
//	(cd interop/oidc-provider && npm ci) && (cd interop && go test ./...)
package interop
