module github.com/authrefresh/authrefresh/peers

go 1.25.0

require (
	github.com/authrefresh/authrefresh v0.0.0-00010101000000-000000000000
	github.com/go-resty/resty/v2 v2.17.2
	go.uber.org/goleak v1.3.0
	golang.org/x/oauth2 v0.30.0
)

require (
	github.com/golang-jwt/jwt/v5 v5.3.1 // indirect
	golang.org/x/crypto v0.41.0 // indirect
	golang.org/x/net v0.43.0 // indirect
)

// The peers are measured against this checkout of authrefresh, never a
// published version.
replace github.com/authrefresh/authrefresh => ../
