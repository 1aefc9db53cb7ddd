package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/authrefresh/authrefresh"
)

// Keyring seals stored tokens with AES-256-GCM, so that a copy of the token
// file, a Redis dump or a backup holds no usable credential. filestore.Store and
// redisstore use it when given one (their Keyring field).
//
// New records are sealed with the first key; records sealed with any key of
// the keyring open. To rotate, put a new key first and keep the old ones
// until every record has been saved again (each refresh saves). A record is
// bound to its store's name (the token file's name, the Redis session name),
// so a record copied to another user's key does not open there.
//
// A nil *Keyring seals nothing: SealToken writes plain JSON and OpenToken
// reads it, and refuses a sealed record with an error that says so.
type Keyring struct {
	// AllowPlain opens records written before sealing was turned on (the
	// next save seals them). Off by default: in a sealed store, a plain
	// record was written by someone without the key, and is refused.
	AllowPlain bool

	keys []sealingKey
}

type sealingKey struct {
	id   string
	aead cipher.AEAD
}

// Len is the number of keys in the keyring.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// Key is one key of a Keyring: 32 random bytes (AES-256) and the ID
// stored with each record it seals.
type Key struct {
	ID  string
	Key []byte
}

// NewKeyring returns a Keyring that seals with keys[0] and opens records
// sealed with any of keys.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("authrefresh: a keyring needs at least one key")
	}
	k := &Keyring{}
	seen := map[string]bool{}
	for _, key := range keys {
		if key.ID == "" || strings.ContainsAny(key.ID, ":, \t\r\n#") || len(key.ID) > 64 {
			return nil, fmt.Errorf("authrefresh: sealing key ID %q: use 1 to 64 characters, none of them ':', ',', '#' or space", key.ID)
		}
		if seen[key.ID] {
			return nil, fmt.Errorf("authrefresh: sealing key ID %q appears twice", key.ID)
		}
		seen[key.ID] = true
		if len(key.Key) != 32 {
			return nil, fmt.Errorf("authrefresh: sealing key %q is %d bytes; it must be 32 random bytes", key.ID, len(key.Key))
		}
		block, err := aes.NewCipher(key.Key)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		k.keys = append(k.keys, sealingKey{key.ID, aead})
	}
	return k, nil
}

// ParseKeyring reads a keyring from text, as kept in a key file or an
// environment variable: entries "ID:KEY" (KEY is 32 bytes in standard
// base64), separated by newlines, commas or spaces; lines starting with '#'
// are comments. The first entry seals. The error never quotes a key.
func ParseKeyring(text string) (*Keyring, error) {
	var keys []Key
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			id, b64, ok := strings.Cut(entry, ":")
			if !ok {
				return nil, fmt.Errorf("authrefresh: keyring entry %d is not ID:KEY", len(keys)+1)
			}
			key, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				return nil, fmt.Errorf("authrefresh: sealing key %q is not standard base64", id)
			}
			keys = append(keys, Key{id, key})
		}
	}
	return NewKeyring(keys...)
}

// ReadKeyring reads a keyring file (see ParseKeyring). Like a token file, it
// must be readable by its owner only.
func ReadKeyring(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("authrefresh: keyring: %w", err)
	}
	if info, err := os.Stat(path); err == nil && runtime.GOOS != "windows" && info.Mode().Perm()&0o077 != 0 {
		return nil, &fs.PathError{Op: "keyring", Path: path, Err: fmt.Errorf("mode %#o lets others read the keys; run chmod 600 on it", info.Mode().Perm())}
	}
	k, err := ParseKeyring(string(data))
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// NewKey returns a keyring entry "ID:KEY" with a fresh random key,
// for a key file or an environment variable.
func NewKey(id string) (string, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	if _, err := NewKeyring(Key{id, key}); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(key), nil
}

// Error is a stored record that cannot be opened. It never quotes the
// record.
type Error struct {
	KeyID  string // the key the record names, if any
	Reason string
}

func (e *Error) Error() string { return "authrefresh: sealed token: " + e.Reason }

// Is makes errors.Is(err, ErrStoreCorrupt) true: a record that does not
// open is unreadable.
func (e *Error) Is(target error) bool { return target == authrefresh.ErrStoreCorrupt }

// corruptRecord is a stored record that is not a token: not JSON, or no
// access token in it. It matches ErrStoreCorrupt.
type corruptRecord struct{ err error }

func (e *corruptRecord) Error() string        { return e.err.Error() }
func (e *corruptRecord) Unwrap() error        { return e.err }
func (e *corruptRecord) Is(target error) bool { return target == authrefresh.ErrStoreCorrupt }

// sealedRecord is a sealed token as stored. AccessSHA256 lets a store
// compare records by access token without opening them (the redisstore
// compare-and-swap script does): a hash of a random bearer value cannot be
// presented in its place.
type sealedRecord struct {
	Sealed int `json:"sealed"` // the format: 1
	sealedFields
}

type sealedFields struct {
	KeyID        string `json:"kid"`
	Nonce        string `json:"nonce"` // standard base64, decoded strictly: one record, one spelling
	Box          string `json:"box"`
	AccessSHA256 string `json:"access_sha256"`
}

// AccessTokenHash is the access_sha256 field of tok's sealed record: the
// SHA-256 of its access token, in hex.
func AccessTokenHash(tok *authrefresh.Token) string {
	sum := sha256.Sum256([]byte(tok.AccessToken))
	return hex.EncodeToString(sum[:])
}

// additional binds a sealed record to its format, key, store, and the
// access-token hash shown beside it.
func additional(keyID, name, accessHash string) []byte {
	return []byte("authrefresh sealed token 1\x00" + keyID + "\x00" + accessHash + "\x00" + name)
}

// SealToken returns the record a store keeps for tok under name (the
// store's file or session name): tok sealed with the first key, or plain
// JSON for a nil Keyring.
func (k *Keyring) SealToken(tok *authrefresh.Token, name string) ([]byte, error) {
	plain, err := json.Marshal(tok)
	if err != nil || k == nil {
		return plain, err
	}
	key := k.keys[0]
	nonce := make([]byte, key.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	hash := AccessTokenHash(tok)
	return json.Marshal(sealedRecord{1, sealedFields{
		KeyID:        key.id,
		Nonce:        base64.StdEncoding.EncodeToString(nonce),
		Box:          base64.StdEncoding.EncodeToString(key.aead.Seal(nil, nonce, plain, additional(key.id, name, hash))),
		AccessSHA256: hash,
	}})
}

// OpenToken reads a record SealToken wrote for name. A record that is not
// JSON, names no access token, is sealed with a key the keyring lacks, was
// altered, or was sealed for another name is an error (a *Error for the
// sealing ones) that never quotes it.
func (k *Keyring) OpenToken(data []byte, name string) (*authrefresh.Token, error) {
	// One parse reads either form: a plain token, or a sealed record.
	var rec struct {
		authrefresh.Token
		Sealed *int `json:"sealed"`
		sealedFields
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, &corruptRecord{jsonProblem(err)}
	}
	if rec.Sealed == nil {
		if k != nil && !k.AllowPlain {
			return nil, &Error{Reason: "the record is not sealed, and this store only accepts sealed ones; log in again (or set AllowPlain to read records written before sealing was turned on)"}
		}
		return checkToken(&rec.Token)
	}
	if k == nil {
		return nil, &Error{Reason: "the record is sealed, and no keyring is configured to open it"}
	}
	if *rec.Sealed != 1 {
		return nil, &Error{KeyID: rec.KeyID, Reason: fmt.Sprintf("the record has format %d, which this version does not know", *rec.Sealed)}
	}
	for _, key := range k.keys {
		if key.id != rec.KeyID {
			continue
		}
		strict := base64.StdEncoding.Strict()
		nonce, nerr := strict.DecodeString(rec.Nonce)
		box, berr := strict.DecodeString(rec.Box)
		if nerr != nil || berr != nil || len(nonce) != key.aead.NonceSize() {
			return nil, &Error{KeyID: rec.KeyID, Reason: "the sealed record is malformed"}
		}
		plain, err := key.aead.Open(nil, nonce, box, additional(key.id, name, rec.AccessSHA256))
		if err != nil {
			return nil, &Error{KeyID: rec.KeyID, Reason: fmt.Sprintf("the record does not open with key %q: it was altered, or sealed for another store (a record is bound to its store's name)", rec.KeyID)}
		}
		var tok authrefresh.Token
		if err := json.Unmarshal(plain, &tok); err != nil {
			return nil, &Error{KeyID: rec.KeyID, Reason: "the sealed token is not a token object"}
		}
		return checkToken(&tok)
	}
	return nil, &Error{KeyID: rec.KeyID, Reason: fmt.Sprintf("the record is sealed with key %q, which the keyring does not hold (keep old keys in the keyring until every record has been saved again)", rec.KeyID)}
}

// checkToken refuses a record without an access token.
func checkToken(tok *authrefresh.Token) (*authrefresh.Token, error) {
	if tok.AccessToken == "" {
		return nil, &corruptRecord{errors.New("no access_token (log in again to repair it)")}
	}
	return tok, nil
}

// jsonProblem says where a record broke, without quoting it (json errors
// may).
func jsonProblem(err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return fmt.Errorf("invalid JSON at byte %d (corrupted or truncated; log in again to repair it)", syn.Offset)
	}
	return errors.New("not a token object (log in again to repair it)")
}
