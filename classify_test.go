package authrefresh

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The error boundary: whatever a Refresher returns leaves as a *RefreshError.
func TestAsRefreshError(t *testing.T) {
	plain := errors.New("dial tcp: connection refused")
	if re := asRefreshError(plain); re.Kind != RefreshTransient || !errors.Is(re, plain) || !errors.Is(re, ErrRefreshTransient) {
		t.Errorf("plain error: %+v", re)
	}
	wrapped := fmt.Errorf("my refresher: %w", Rejected(errors.New("revoked")))
	if re := asRefreshError(wrapped); re.Kind != RefreshRejected {
		t.Errorf("wrapped rejection: %+v", re)
	}
	if re := refreshFailure(errors.New("sent secret-refresh-token-123 and failed"), &Token{RefreshToken: "secret-refresh-token-123"}); strings.Contains(re.Error(), "secret") {
		t.Errorf("token quoted: %v", re)
	}
}
