package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/authrefresh/authrefresh/internal/tokenhttp"
)

// ProviderMetadata is what an authorization server says about itself
// (OpenID Connect Discovery 1.0, RFC 8414): its endpoints and what it
// supports. Discover reads it.
type ProviderMetadata struct {
	Issuer                      string `json:"issuer"`
	AuthorizationEndpoint       string `json:"authorization_endpoint,omitempty"`
	TokenEndpoint               string `json:"token_endpoint"`
	RevocationEndpoint          string `json:"revocation_endpoint,omitempty"`
	DeviceAuthorizationEndpoint string `json:"device_authorization_endpoint,omitempty"`
	UserinfoEndpoint            string `json:"userinfo_endpoint,omitempty"`
	// EndSessionEndpoint is where a relying party logs the user out at the
	// provider (OpenID Connect RP-Initiated Logout), if it has one.
	EndSessionEndpoint                string   `json:"end_session_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	// DPoPSigningAlgValuesSupported are the DPoP proof algorithms the
	// server accepts (RFC 9449 §5.1); none listed means it does not say,
	// or does not do DPoP.
	DPoPSigningAlgValuesSupported []string `json:"dpop_signing_alg_values_supported,omitempty"`
}

// DiscoveryError is an issuer whose metadata cannot be used. It says which
// document was read and what is wrong with it.
type DiscoveryError struct {
	Issuer string
	URL    string // the document read, if any
	Err    error
}

func (e *DiscoveryError) Error() string {
	if e.URL == "" {
		return fmt.Sprintf("authrefresh: discovery of %s: %v", e.Issuer, e.Err)
	}
	return fmt.Sprintf("authrefresh: discovery of %s (%s): %v", e.Issuer, e.URL, e.Err)
}

// Unwrap returns the cause.
func (e *DiscoveryError) Unwrap() error { return e.Err }

// Discover reads issuer's metadata: /.well-known/openid-configuration under
// the issuer (OpenID Connect Discovery), else the RFC 8414
// /.well-known/oauth-authorization-server of its host with the issuer's
// path after it. The document must name issuer exactly (a server answering
// for another issuer is refused: RFC 8414 §3.3) and a token endpoint; every
// endpoint must be an absolute http(s) URL. Redirects are not followed. hc
// nil means a private client with a 30-s timeout.
//
// Discover does not cache; call it once and keep the result (metadata
// changes rarely: on a restart is often enough).
func Discover(ctx context.Context, hc *http.Client, issuer string) (*ProviderMetadata, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, &DiscoveryError{Issuer: issuer, Err: errors.New("the issuer must be an http(s) URL without query or fragment, e.g. https://accounts.example.com")}
	}
	if err := endpointAllowed(u, u.Scheme == "https"); err != nil {
		return nil, &DiscoveryError{Issuer: issuer, Err: fmt.Errorf("the issuer %w", err)}
	}
	trimmed := strings.TrimSuffix(u.Path, "/")
	openid := *u
	openid.Path = trimmed + "/.well-known/openid-configuration"
	rfc8414 := *u
	rfc8414.Path = "/.well-known/oauth-authorization-server" + trimmed
	var first error
	for _, doc := range []*url.URL{&openid, &rfc8414} {
		md, status, err := fetchMetadata(ctx, hc, doc)
		if err == nil {
			if err := md.check(issuer); err != nil {
				return nil, &DiscoveryError{Issuer: issuer, URL: tokenhttp.Endpoint(doc), Err: err}
			}
			return md, nil
		}
		if first == nil {
			first = &DiscoveryError{Issuer: issuer, URL: tokenhttp.Endpoint(doc), Err: err}
		}
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed && status != http.StatusBadRequest {
			return nil, &DiscoveryError{Issuer: issuer, URL: tokenhttp.Endpoint(doc), Err: err} // not a missing document: do not look elsewhere
		}
	}
	return nil, first
}

// fetchMetadata GETs one metadata document.
func fetchMetadata(ctx context.Context, hc *http.Client, doc *url.URL) (*ProviderMetadata, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, doc.String(), nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/json")
	data, resp, err := tokenhttp.Send(ctx, "discovery", hc, req)
	if err != nil {
		return nil, 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/json" && !strings.HasSuffix(mt, "+json") {
			return nil, resp.StatusCode, fmt.Errorf("answered %s, not JSON: is this the issuer URL?", mt)
		}
	}
	md, err := ParseProviderMetadata(data)
	return md, resp.StatusCode, err
}

// ParseProviderMetadata decodes a metadata document. It does not check it
// against an issuer (Discover does).
func ParseProviderMetadata(data []byte) (*ProviderMetadata, error) {
	var md ProviderMetadata
	if err := json.Unmarshal(data, &md); err != nil {
		return nil, fmt.Errorf("not a metadata document: %w", err)
	}
	return &md, nil
}

// check validates md as issuer's.
func (md *ProviderMetadata) check(issuer string) error {
	if md.Issuer != issuer {
		return fmt.Errorf("the document is for the issuer %q, not %q: use the issuer URL exactly as the server names it", md.Issuer, issuer)
	}
	if md.TokenEndpoint == "" {
		return errors.New("the document names no token_endpoint")
	}
	for name, e := range map[string]string{"token_endpoint": md.TokenEndpoint, "authorization_endpoint": md.AuthorizationEndpoint,
		"revocation_endpoint": md.RevocationEndpoint, "device_authorization_endpoint": md.DeviceAuthorizationEndpoint,
		"userinfo_endpoint": md.UserinfoEndpoint, "jwks_uri": md.JWKSURI} {
		if e == "" {
			continue
		}
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("its %s is not an absolute http(s) URL", name)
		}
		if err := endpointAllowed(u, strings.HasPrefix(issuer, "https:")); err != nil {
			return fmt.Errorf("its %s %w", name, err)
		}
	}
	return nil
}

// endpointAllowed refuses what would send a client's secrets where they
// could be read or redirected: credentials in the URL (user:pass@), plain
// http from an https issuer (a downgrade: the secret and the refresh token
// would cross the network in clear, or reach whoever listens on a local
// port), and plain http beyond this machine. An http issuer on a loopback
// address stays allowed, for development.
func endpointAllowed(u *url.URL, httpsIssuer bool) error {
	switch {
	case u.User != nil:
		return errors.New("carries credentials (user:password@) in its URL")
	case u.Scheme == "https":
		return nil
	case httpsIssuer:
		return errors.New("is plain http under an https issuer (a downgrade)")
	case !loopbackHost(u.Hostname()):
		return errors.New("is plain http on a host other than this machine: use https (plain http is for a loopback address in development)")
	}
	return nil
}

// loopbackHost reports whether host is localhost or a loopback address.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClientAuthFor chooses how a client authenticates to this server: with a
// secret, HTTP Basic (client_secret_basic) unless the server lists only
// client_secret_post; without one, client_id in the body (a public client).
// A server that lists no methods supports client_secret_basic (RFC 8414
// §2).
func (md *ProviderMetadata) ClientAuthFor(hasSecret bool) ClientAuth {
	methods := md.TokenEndpointAuthMethodsSupported
	if !hasSecret {
		return ClientAuthBody
	}
	if len(methods) > 0 && !slices.Contains(methods, "client_secret_basic") && slices.Contains(methods, "client_secret_post") {
		return ClientAuthBody
	}
	return ClientAuthBasic
}
