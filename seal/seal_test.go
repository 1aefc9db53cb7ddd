package seal

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/authrefresh/authrefresh"
)

func testKeyring(t testing.TB, ids ...string) *Keyring {
	t.Helper()
	var lines []string
	for _, id := range ids {
		line, err := NewKey(id)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, line)
	}
	k, err := ParseKeyring(strings.Join(lines, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// withFirst returns a keyring sealing with first and opening old's records.
func withFirst(first, old *Keyring) *Keyring {
	return &Keyring{keys: append(append([]sealingKey{}, first.keys[0]), old.keys...)}
}

func sealErr(t *testing.T, err error, want string) {
	t.Helper()
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want an Error saying %q", err, want)
	}
}

func TestKeyringSealsOpensAndRotates(t *testing.T) {
	tok := &authrefresh.Token{AccessToken: "access-secret-1", RefreshToken: "refresh-secret-1", Expiry: time.Unix(2e9, 0).UTC(), Generation: 7}
	k1 := testKeyring(t, "k1")
	rec, err := k1.SealToken(tok, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec), "secret") || !strings.Contains(string(rec), `"kid":"k1"`) || !strings.Contains(string(rec), AccessTokenHash(tok)) {
		t.Fatalf("sealed record: %s", rec)
	}
	got, err := k1.OpenToken(rec, "alice")
	if err != nil || !reflect.DeepEqual(got, tok) {
		t.Fatalf("opened %+v, %v; want %+v", got, err, tok)
	}
	// Two seals of one token differ (a fresh nonce each).
	if again, _ := k1.SealToken(tok, "alice"); string(again) == string(rec) {
		t.Fatal("two seals are identical")
	}

	// Rotation: k2 seals, k1's records still open; without k1 they do not.
	k2 := withFirst(testKeyring(t, "k2"), k1)
	if got, err := k2.OpenToken(rec, "alice"); err != nil || got.AccessToken != tok.AccessToken {
		t.Fatalf("rotated keyring cannot open an old record: %v", err)
	}
	newRec, _ := k2.SealToken(tok, "alice")
	if !strings.Contains(string(newRec), `"kid":"k2"`) {
		t.Fatalf("new record not sealed with the new key: %s", newRec)
	}
	_, err = (&Keyring{keys: k2.keys[:1]}).OpenToken(rec, "alice")
	sealErr(t, err, `key "k1", which the keyring does not hold`)

	// Bound to its name: another user's store does not open it.
	_, err = k1.OpenToken(rec, "bob")
	sealErr(t, err, "sealed for another store")
	// A foreign key of the same ID does not open it either.
	_, err = testKeyring(t, "k1").OpenToken(rec, "alice")
	sealErr(t, err, "altered")

	// Any altered byte (box, nonce, key ID, the hash beside) is refused.
	for i := range rec {
		bad := []byte(string(rec))
		bad[i] ^= 0x01
		if got, err := k1.OpenToken(bad, "alice"); err == nil {
			t.Fatalf("byte %d altered (%s): opened %+v", i, bad, got)
		}
	}

	// Plain and sealed records meet the wrong configuration.
	plain, _ := (*Keyring)(nil).SealToken(tok, "alice")
	_, err = k1.OpenToken(plain, "alice")
	sealErr(t, err, "not sealed")
	if got, err := (&Keyring{AllowPlain: true, keys: k1.keys}).OpenToken(plain, "alice"); err != nil || got.RefreshToken != tok.RefreshToken {
		t.Fatalf("AllowPlain: %v", err)
	}
	_, err = (*Keyring)(nil).OpenToken(rec, "alice")
	sealErr(t, err, "no keyring is configured")
}

func TestParseKeyringErrorsNeverQuoteAKey(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcde")) // 31 bytes
	for _, text := range []string{"", "# only a comment", "k1", "k1:" + secret, "k1:" + secret + "!!", "k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + ",k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)), ":" + secret} {
		_, err := ParseKeyring(text)
		if err == nil {
			t.Fatalf("%q: accepted", text)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error quotes the key: %v", err)
		}
	}
	good := "# keys, newest first\nk2:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\r\nk1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"
	k, err := ParseKeyring(good)
	if err != nil || len(k.keys) != 2 || k.keys[0].id != "k2" {
		t.Fatalf("%v %v", k, err)
	}
}

func TestReadKeyringRefusesReadableByOthers(t *testing.T) {
	line, _ := NewKey("k1")
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyring(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v", err)
	}
	os.Chmod(path, 0o600)
	if _, err := ReadKeyring(path); err != nil {
		t.Fatal(err)
	}
}

// FuzzOpenToken: whatever a store holds, opening it is a result or an
// error, never a panic, and never a token without an access token.
func FuzzOpenToken(f *testing.F) {
	k := testKeyring(f, "k1")
	rec, _ := k.SealToken(&authrefresh.Token{AccessToken: "a", RefreshToken: "r"}, "n")
	f.Add(rec, "n")
	f.Add([]byte(`{"sealed":1,"kid":"k1","nonce":"","box":""}`), "n")
	f.Add([]byte(`{"sealed":2}`), "")
	f.Add([]byte(`{"access_token":"a"}`), "n")
	f.Fuzz(func(t *testing.T, data []byte, name string) {
		for _, keys := range []*Keyring{nil, k, {AllowPlain: true, keys: k.keys}} {
			if tok, err := keys.OpenToken(data, name); err == nil && tok.AccessToken == "" {
				t.Fatal("opened a token without an access token")
			}
		}
	})
}

// FuzzParseKeyring: any text is a keyring or an error, never a panic.
func FuzzParseKeyring(f *testing.F) {
	line, _ := NewKey("k1")
	f.Add(line)
	f.Add("# c\n" + line + ",k2:AAAA")
	f.Fuzz(func(t *testing.T, text string) {
		if k, err := ParseKeyring(text); err == nil && len(k.keys) == 0 {
			t.Fatal("an empty keyring")
		}
	})
}

// BenchmarkSeal: what sealing adds to a store's save and load — the
// record alone, plain and sealed, in one run (BenchmarkSealedStore in
// filestore measures a whole Save and Load).
func BenchmarkSeal(b *testing.B) {
	tok := &authrefresh.Token{AccessToken: strings.Repeat("a", 800), RefreshToken: strings.Repeat("r", 64), Expiry: time.Unix(2e9, 0), IssuedAt: time.Unix(2e9-3600, 0), Generation: 12}
	k := testKeyring(b, "k1")
	for _, c := range []struct {
		name string
		k    *Keyring
	}{{"plain", nil}, {"sealed", k}} {
		rec, _ := c.k.SealToken(tok, "alice")
		b.Run("record/save/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := c.k.SealToken(tok, "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("record/load/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if _, err := c.k.OpenToken(rec, "alice"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
