module github.com/authrefresh/authrefresh/interop

go 1.24.0

require github.com/authrefresh/authrefresh v0.0.0

require golang.org/x/oauth2 v0.30.0 // indirect

replace github.com/authrefresh/authrefresh => ../
