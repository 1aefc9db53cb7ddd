// Package redisstore keeps an authrefresh session in Redis so that any number
// of processes, on any number of hosts, share one token and refresh it once.
//
// Store implements authrefresh.Store, Swapper (compare-and-swap saves by Lua
// script) and Locker (SET NX PX with a random owner, released by a
// compare-and-delete script; waiters are woken by pub/sub, with a bounded poll
// as a fallback). All keys of one session share a hash tag, so it works on
// Redis Cluster as well as on a single node or Sentinel.
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/redis/go-redis/v9"
)

// Store is a session in Redis. Create it with New; fields may be adjusted
// before first use.
type Store struct {
	client redis.UniversalClient
	name   string

	// LockTTL bounds how long a refresh lock outlives a holder that died. It
	// must exceed the Session's RefreshTimeout (30 s by default); 0 means 45 s.
	LockTTL time.Duration
	// PollInterval is how often a lock waiter retries when no release message
	// arrives (a lost message, a holder that died); 0 means 250 ms.
	PollInterval time.Duration
}

// New returns the Store of the session called name (any string; it becomes
// the hash tag of the session's keys).
func New(client redis.UniversalClient, name string) *Store {
	return &Store{client: client, name: name}
}

func (s *Store) tokenKey() string { return "authrefresh:{" + s.name + "}:token" }
func (s *Store) lockKey() string  { return "authrefresh:{" + s.name + "}:lock" }
func (s *Store) channel() string  { return "authrefresh:{" + s.name + "}:released" }
func (s *Store) infoKey() string  { return "authrefresh:{" + s.name + "}:info" }

// maxInfo bounds what SaveInfo keeps.
const maxInfo = 64 << 10

// SaveInfo keeps data next to the session's token: what a process needs to
// join the session on a host that has nothing else (the authrefresh command
// keeps the profile there: the auth server's URLs, never a secret). It is
// not part of the token's lifecycle: Clear leaves it.
func (s *Store) SaveInfo(ctx context.Context, data []byte) error {
	if len(data) > maxInfo {
		return &Error{"save info", fmt.Errorf("%d bytes, more than %d", len(data), maxInfo)}
	}
	if err := s.client.Set(ctx, s.infoKey(), data, 0).Err(); err != nil {
		return &Error{"save info", err}
	}
	return nil
}

// LoadInfo returns what SaveInfo kept, or nil when nothing was.
func (s *Store) LoadInfo(ctx context.Context) ([]byte, error) {
	data, err := s.client.Get(ctx, s.infoKey()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{"load info", err}
	}
	return data, nil
}

// Error is a failure to talk to Redis; it names Redis so that an operator
// reading "refresh failed" knows where to look.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string { return fmt.Sprintf("redisstore: %s: %v", e.Op, e.Err) }

// Unwrap returns the Redis client's error.
func (e *Error) Unwrap() error { return e.Err }

// Load implements authrefresh.Store.
func (s *Store) Load(ctx context.Context) (*authrefresh.Token, error) {
	data, err := s.client.Get(ctx, s.tokenKey()).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, &Error{"load", err}
	}
	var tok authrefresh.Token
	if err := json.Unmarshal(data, &tok); err != nil || tok.AccessToken == "" {
		return nil, &Error{"load", errors.New("the stored token is not valid JSON; log in again to repair it")}
	}
	return &tok, nil
}

// Save implements authrefresh.Store. Saving nil clears the store, as
// FileStore and MemoryStore do.
func (s *Store) Save(ctx context.Context, tok *authrefresh.Token) error {
	if tok == nil {
		return s.Clear(ctx)
	}
	data, err := json.Marshal(tok)
	if err != nil {
		return err
	}
	if err := s.client.Set(ctx, s.tokenKey(), data, 0).Err(); err != nil {
		return &Error{"save", err}
	}
	return nil
}

// Clear implements authrefresh.Store.
func (s *Store) Clear(ctx context.Context) error {
	if err := s.client.Del(ctx, s.tokenKey()).Err(); err != nil {
		return &Error{"clear", err}
	}
	return nil
}

// swapScript replaces the token only if the stored one still has the access
// token ARGV[1] ("" = the key must be absent); ARGV[2] "" deletes.
var swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
else
  if not cur then return 0 end
  local ok, t = pcall(cjson.decode, cur)
  if not ok or type(t) ~= 'table' or t.access_token ~= ARGV[1] then return 0 end
end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2]) end
return 1`)

// CompareAndSwap implements authrefresh.Swapper: a process whose lock expired
// mid-refresh cannot overwrite the newer token another process saved.
func (s *Store) CompareAndSwap(ctx context.Context, old, new *authrefresh.Token) (bool, error) {
	var oldAccess, newData string
	if old != nil {
		oldAccess = old.AccessToken
	}
	if new != nil {
		data, err := json.Marshal(new)
		if err != nil {
			return false, err
		}
		newData = string(data)
	}
	n, err := swapScript.Run(ctx, s.client, []string{s.tokenKey()}, oldAccess, newData).Int()
	if err != nil {
		return false, &Error{"compare-and-swap", err}
	}
	return n == 1, nil
}

// releaseScript deletes the lock only if we still own it, and wakes waiters.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', KEYS[2], 'released')
  return 1
end
return 0`)

// Lock implements authrefresh.Locker.
func (s *Store) Lock(ctx context.Context) (func(), error) {
	owner, err := randomOwner()
	if err != nil {
		return nil, err
	}
	ttl := s.LockTTL
	if ttl <= 0 {
		ttl = 45 * time.Second
	}
	poll := s.PollInterval
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	var sub *redis.PubSub
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		ok, err := s.client.SetNX(ctx, s.lockKey(), owner, ttl).Result()
		if err != nil {
			return nil, &Error{"lock", err}
		}
		if ok {
			return func() {
				// Released with a context of its own: the refresh's may be done.
				rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = releaseScript.Run(rctx, s.client, []string{s.lockKey(), s.channel()}, owner).Err()
			}, nil
		}
		if sub == nil {
			// Subscribe, then try once more before waiting: a release between
			// the failed SET and the subscription would otherwise be missed.
			sub = s.client.Subscribe(ctx, s.channel())
			if _, err := sub.Receive(ctx); err != nil {
				return nil, &Error{"subscribe", err}
			}
			continue
		}
		if timer == nil {
			timer = time.NewTimer(poll)
		} else {
			timer.Reset(poll)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sub.Channel():
		case <-timer.C:
		}
	}
}

func randomOwner() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
