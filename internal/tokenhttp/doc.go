// Package tokenhttp is what every token-endpoint call of authrefresh
// shares: the HTTP client that never follows a redirect, the bounded read
// of the answer, the parse of a token response in its JSON and form
// spellings, and the one table that turns a refusal into a classified
// *authrefresh.RefreshError.
package tokenhttp
