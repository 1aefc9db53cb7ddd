package main

import (
	"strings"
	"testing"
)

// git's credential protocol: get answers the profile's token for its API
// host only (other hosts, schemes or ports get nothing); erase of the
// current token refreshes it once, erase of an older one does not; store
// is a no-op.
func TestGitCredential(t *testing.T) {
	srv, api, token := loggedIn(t)
	host := strings.TrimPrefix(api, "http://")
	code, out, errOut := cli(t, "protocol=http\nhost="+host+"\npath=team/repo.git\n\n", "git-credential", "get")
	if code != exitOK || !strings.Contains(out, "username=demo\npassword="+token+"\npassword_expiry_utc=") {
		t.Fatalf("get for the API's host: %d %q %s", code, out, errOut)
	}
	for _, other := range []string{
		"protocol=http\nhost=evil.example\n",
		"protocol=https\nhost=" + host + "\n",
		"protocol=http\nhost=" + strings.Split(host, ":")[0] + ":1\n",
		"protocol=http\nhost=" + strings.Split(host, ":")[0] + "\n",
	} {
		if code, out, _ := cli(t, other+"\n", "git-credential", "get"); code != exitOK || out != "" {
			t.Errorf("get for another host %q: %d %q", other, code, out)
		}
	}
	before := srv.Counters().Refreshes
	if code, _, errOut := cli(t, "protocol=http\nhost="+host+"\npassword="+token+"\n\n", "git-credential", "erase"); code != exitOK || srv.Counters().Refreshes != before+1 {
		t.Fatalf("erase of the current token: %d %s, %d refreshes", code, errOut, srv.Counters().Refreshes-before)
	}
	if code, _, _ := cli(t, "protocol=http\nhost="+host+"\npassword="+token+"\n\n", "git-credential", "erase"); code != exitOK || srv.Counters().Refreshes != before+1 {
		t.Fatalf("erase of a replaced token refreshed again: %d", srv.Counters().Refreshes-before)
	}
	if code, out, _ := cli(t, "protocol=http\nhost="+host+"\nusername=u\npassword=p\n\n", "git-credential", "store"); code != exitOK || out != "" {
		t.Fatalf("store: %d %q", code, out)
	}
}
