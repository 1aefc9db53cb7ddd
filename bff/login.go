package bff

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/authrefresh/authrefresh"
)

// loginTTL is how long a login may take at the provider.
const loginTTL = 10 * time.Minute

// pendingLogin is a login in flight: what the callback needs to complete
// it. It travels in the browser's login cookie, sealed, so that whichever
// replica the provider's redirect reaches can complete it, and a login in
// flight costs the BFF nothing (anyone may start one).
type pendingLogin struct {
	State    string `json:"s"`
	Nonce    string `json:"n,omitempty"`
	Verifier string `json:"v"`
	ReturnTo string `json:"r"`
	Started  int64  `json:"t"` // Unix seconds
}

// loginKeyRecord is the kind of record the login cookies' key is kept
// as, in the store under loginKeyName: a Token, as the sessions are.
const (
	loginKeyRecord = "authrefresh-bff-login-key"
	loginKeyName   = "bff-login-key"
)

// errLoginCookie is a login cookie that does not open: altered, sealed by
// another BFF's key, or not a login cookie at all.
var errLoginCookie = errors.New("bff: the login cookie does not open")

// loginSealer seals and opens login cookies (AES-256-GCM) under a key kept
// in the store: replicas on one store share it; a restarted BFF keeps it.
type loginSealer struct {
	store authrefresh.Store
	clock func() time.Time
	mu    sync.Mutex
	aead  cipher.AEAD
	saved time.Time // when the key was last read from or saved to the store
}

// loginKeyResave is how often the key is saved again: a store that expires
// records not saved for a while (redisstore's Expire, filestore.Sweep)
// then keeps it.
const loginKeyResave = time.Hour

// key returns the key: from memory, or — the first time, when reload is
// set, and every loginKeyResave — the store's, saved again; a store
// without one gets a new one.
func (l *loginSealer) key(ctx context.Context, reload bool) (cipher.AEAD, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock()
	if l.aead != nil && !reload && now.Sub(l.saved) < loginKeyResave {
		return l.aead, nil
	}
	rec, err := l.store.Load(ctx)
	if err != nil {
		if l.aead != nil && !reload {
			return l.aead, nil // saved again at the next use
		}
		return nil, err
	}
	var raw []byte
	if rec != nil && rec.AccessToken == loginKeyRecord {
		_ = json.Unmarshal(rec.Extra["key"], &raw)
	}
	generated := len(raw) != 32
	if generated {
		// Two replicas starting on an empty store may both get here; the
		// last to save wins, and the other adopts its key when a cookie
		// sealed by it does not open (open reloads once), or within
		// loginKeyResave.
		raw = make([]byte, 32)
		rand.Read(raw)
	}
	if generated || l.aead == nil || !reload && now.Sub(l.saved) >= loginKeyResave {
		enc, _ := json.Marshal(raw)
		if err := l.store.Save(ctx, &authrefresh.Token{AccessToken: loginKeyRecord, Extra: map[string]json.RawMessage{"key": enc}}); err != nil {
			if l.aead != nil && !reload {
				return l.aead, nil
			}
			return nil, err
		}
	}
	block, _ := aes.NewCipher(raw)
	l.saved = now
	l.aead, _ = cipher.NewGCM(block)
	return l.aead, nil
}

// loginCookieContext binds a sealed login cookie to its use.
var loginCookieContext = []byte("authrefresh bff login")

// seal returns p as a cookie value.
func (l *loginSealer) seal(ctx context.Context, p *pendingLogin) (string, error) {
	aead, err := l.key(ctx, false)
	if err != nil {
		return "", err
	}
	plain, _ := json.Marshal(p)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(aead.Seal(nonce, nonce, plain, loginCookieContext)), nil
}

// open returns the login a cookie value holds; errLoginCookie when it
// does not open under the key, nor under the store's current one.
func (l *loginSealer) open(ctx context.Context, value string) (*pendingLogin, error) {
	sealed, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(sealed) > 4096 {
		return nil, errLoginCookie
	}
	for _, reload := range []bool{false, true} {
		aead, err := l.key(ctx, reload)
		if err != nil {
			return nil, err
		}
		if len(sealed) < aead.NonceSize()+aead.Overhead() {
			return nil, errLoginCookie
		}
		plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], loginCookieContext)
		if err != nil {
			continue
		}
		var p pendingLogin
		if json.Unmarshal(plain, &p) != nil || p.State == "" {
			return nil, errLoginCookie
		}
		return &p, nil
	}
	return nil, errLoginCookie
}
