// Package redisstore keeps an authrefresh session in Redis so that any number
// of processes, on any number of hosts, share one token and refresh it once.
//
// Store implements authrefresh.Store, Swapper (compare-and-swap saves by Lua
// script) and Locker (SET NX PX with a random owner, released by a
// compare-and-delete script; waiters are woken by pub/sub, with a bounded poll
// as a fallback). All keys of one session share a hash tag, and every script
// declares the one key it touches, so it works on Redis Cluster — slot
// migrations included — as well as on a single node or Sentinel.
//
// Durability: Redis replicates asynchronously, so a failover can lose the
// last write — a rotated refresh token, or the refresh lock. Tokens carry a
// generation (authrefresh.Token.Generation), so a Session never presents an
// older token than one it holds; to also keep a cut-off master from granting
// a second lock or keeping the only copy of a rotation, set WaitReplicas
// (1, with at least two replicas), and on the servers min-replicas-to-write 1
// and appendonly yes. A restart from an older snapshot is survived by the
// processes that hold newer tokens; with every one of them gone, only the
// auth server's grace period helps (see RELIABILITY.md).
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/seal"
	"github.com/redis/go-redis/v9"
)

// Store is a session in Redis. Create it with New; fields may be adjusted
// before first use.
type Store struct {
	client redis.UniversalClient
	name   string
	keys   keys

	// LockTTL bounds how long a refresh lock outlives a holder that died. It
	// must exceed the Session's RefreshTimeout (30 s by default); 0 means 45 s.
	LockTTL time.Duration
	// PollInterval is how often a lock waiter retries when no release message
	// arrives (a lost message, a holder that died); 0 means 250 ms.
	PollInterval time.Duration

	// WaitReplicas, if positive, makes every write that matters wait (Redis
	// WAIT) until that many replicas have it, at most WaitTimeout (0 means
	// 100 ms; keep it below the client's ReadTimeout, or the wait itself
	// times out as a connection error): the refresh lock, so that an old master cut off by a failover
	// cannot hand out a lock the new master does not know (a lock not
	// acknowledged is given back, and the refresh fails as transient, to be
	// retried); and each rotated token, so that a failover does not lose it
	// (a save not acknowledged is retried once, then counted in
	// WaitShortfalls and logged, not failed: the token is valid). Its cost
	// is one round trip to a replica per lock and per save. See the package
	// documentation for the server settings this pairs with.
	WaitReplicas int
	WaitTimeout  time.Duration
	// Keyring, if set, seals the stored token (see seal.Keyring): a
	// Redis dump, a replica's RDB file or a MONITOR stream then holds no
	// usable credential. Records are bound to the session name.
	Keyring *seal.Keyring
	// Expire, if positive, makes each saved token expire from Redis this
	// long after it was saved: for sessions that may end unused and never
	// be cleared, such as a backend-for-frontend's, so that Redis does not
	// keep their refresh tokens for ever. A session in use saves its token
	// again at each refresh. 0 keeps it until cleared.
	Expire time.Duration
	// Logger receives warnings about failed releases and WAIT shortfalls;
	// nil means silent.
	Logger *slog.Logger

	waitShortfalls, releaseFailures atomic.Uint64
}

// WaitShortfalls counts writes that fewer than WaitReplicas replicas
// acknowledged in time.
func (s *Store) WaitShortfalls() uint64 { return s.waitShortfalls.Load() }

// ReleaseFailures counts refresh locks that could not be released (after
// retries) and were left to expire after LockTTL.
func (s *Store) ReleaseFailures() uint64 { return s.releaseFailures.Load() }

func (s *Store) warn(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Warn(msg, args...)
	}
}

// replicated runs write, then WAIT on the same connection (WAIT counts the
// replicas that have this connection's writes), and reports whether
// WaitReplicas acknowledged it. Without WaitReplicas it just runs write.
func (s *Store) replicated(ctx context.Context, write func(redis.Cmdable) error) (bool, error) {
	if s.WaitReplicas <= 0 {
		return true, write(s.client)
	}
	node := redis.Cmdable(s.client)
	if cc, ok := s.client.(*redis.ClusterClient); ok {
		// The master of the session's slot: its connection, not a random node's.
		m, err := cc.MasterForKey(ctx, s.tokenKey())
		if err != nil {
			return false, err
		}
		node = m
	}
	timeout := s.WaitTimeout
	if timeout <= 0 {
		timeout = 100 * time.Millisecond
	}
	var wait *redis.Cmd
	var writeErr error
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		writeErr = write(p)
		wait = p.Do(ctx, "wait", s.WaitReplicas, timeout.Milliseconds())
		return nil
	})
	if writeErr != nil {
		return false, writeErr
	}
	if err != nil && wait.Err() == nil {
		return false, err
	}
	acked, werr := wait.Int64()
	if werr != nil || acked < int64(s.WaitReplicas) {
		s.waitShortfalls.Add(1)
		s.warn("redisstore: write not acknowledged by enough replicas", "session", s.name, "acked", acked, "want", s.WaitReplicas, "error", werr)
		return false, nil
	}
	return true, nil
}

// New returns the Store of the session called name: any string — a user
// ID, an e-mail address, a URL, unicode, a kilobyte of text. Distinct names
// never share a key, and every key of one name has the same hash tag, so on
// Redis Cluster a session lives in one slot and many sessions spread over
// all of them (see HashTag).
func New(client redis.UniversalClient, name string) *Store {
	return &Store{client: client, name: name, keys: keysOf(name)}
}

func (s *Store) tokenKey() string { return s.keys.token }
func (s *Store) lockKey() string  { return s.keys.lock }
func (s *Store) channel() string  { return s.keys.channel }
func (s *Store) infoKey() string  { return s.keys.info }

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
	tok, err := s.Keyring.OpenToken(data, s.name)
	if err != nil {
		return nil, &Error{"load", err}
	}
	return tok, nil
}

// Save implements authrefresh.Store. Saving nil clears the store, as
// filestore.Store and MemoryStore do.
func (s *Store) Save(ctx context.Context, tok *authrefresh.Token) error {
	if tok == nil {
		return s.Clear(ctx)
	}
	data, err := s.Keyring.SealToken(tok, s.name)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		var set *redis.StatusCmd
		ok, err := s.replicated(ctx, func(c redis.Cmdable) error { set = c.Set(ctx, s.tokenKey(), data, s.expire()); return nil })
		if err == nil {
			err = set.Err()
		}
		if err != nil {
			return &Error{"save", err}
		}
		if ok || attempt == 1 {
			return nil
		}
	}
}

// Clear implements authrefresh.Store.
func (s *Store) Clear(ctx context.Context) error {
	if err := s.client.Del(ctx, s.tokenKey()).Err(); err != nil {
		return &Error{"clear", err}
	}
	return nil
}

// swapScript replaces the token only if the stored one still has the access
// token ARGV[1] ("" = the key must be absent) — in the clear, or as its
// SHA-256 ARGV[3] in a sealed record; ARGV[2] "" deletes; a positive
// ARGV[4] is the new record's expiry in milliseconds.
var swapScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
else
  if not cur then return 0 end
  local ok, t = pcall(cjson.decode, cur)
  if not ok or type(t) ~= 'table' then return 0 end
  if t.access_token ~= ARGV[1] and not (t.sealed and t.access_sha256 == ARGV[3]) then return 0 end
end
if ARGV[2] == '' then redis.call('DEL', KEYS[1])
elseif tonumber(ARGV[4]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[4])
else redis.call('SET', KEYS[1], ARGV[2]) end
return 1`)

// expire is Expire, or 0 (no expiry) when not positive.
func (s *Store) expire() time.Duration { return max(s.Expire, 0) }

// CompareAndSwap implements authrefresh.Swapper: a process whose lock expired
// mid-refresh cannot overwrite the newer token another process saved.
func (s *Store) CompareAndSwap(ctx context.Context, old, new *authrefresh.Token) (bool, error) {
	var oldAccess, oldHash, newData string
	if old != nil {
		oldAccess, oldHash = old.AccessToken, seal.AccessTokenHash(old)
	}
	if new != nil {
		data, err := s.Keyring.SealToken(new, s.name)
		if err != nil {
			return false, err
		}
		newData = string(data)
	}
	for attempt := 0; ; attempt++ {
		var run *redis.Cmd
		ok, err := s.replicated(ctx, func(c redis.Cmdable) error {
			if s.WaitReplicas > 0 { // in a pipeline: EVALSHA's NOSCRIPT fallback cannot run there
				run = swapScript.Eval(ctx, c, []string{s.tokenKey()}, oldAccess, newData, oldHash, s.expire().Milliseconds())
			} else {
				run = swapScript.Run(ctx, c, []string{s.tokenKey()}, oldAccess, newData, oldHash, s.expire().Milliseconds())
			}
			return nil
		})
		n, rerr := run.Int()
		if err == nil {
			err = rerr
		}
		if err != nil {
			return false, &Error{"compare-and-swap", err}
		}
		if n != 1 {
			return false, nil
		}
		if ok || attempt == 1 {
			return true, nil
		}
		// Not acknowledged: write it again (old is now our own token), so a
		// master that was cut off does not keep the only copy.
		oldAccess, oldHash = "", ""
		if new != nil {
			oldAccess, oldHash = new.AccessToken, seal.AccessTokenHash(new)
		}
	}
}

// releaseScript deletes the lock only if we still own it, and wakes waiters.
// It declares one key: the channel is not a key (ARGV[2]), so the script
// never spans slots, and a slot migration cannot refuse it with TRYAGAIN.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0`)

// release gives the lock back, retrying a failure (a dropped connection, a
// slot moving, a failover in progress) with a growing pause, for up to
// within. A lock that still cannot be released is logged and counted; it
// expires after LockTTL, and its waiters, polling, take it then.
func (s *Store) release(owner string, within time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := releaseScript.Run(ctx, s.client, []string{s.lockKey()}, owner, s.channel()).Err()
		if err == nil {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			s.releaseFailures.Add(1)
			s.warn("redisstore: could not release the refresh lock; it expires after LockTTL", "session", s.name, "attempts", attempt, "error", err)
			return
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}

// heldRelease is how long a held lock's release is retried: long enough to
// outlast a failover (a Sentinel promotion takes seconds; a lock left behind
// on the new master stalls every process of the fleet until LockTTL), at
// most a quarter of the lock's life, and at most 10 s, which the refresh that
// held it waits before it returns.
func heldRelease(ttl time.Duration) time.Duration { return min(10*time.Second, ttl/4) }

// failedRelease is how long the release of a lock that may not have been
// taken is retried: a SET whose answer was lost, or one not acknowledged.
const failedRelease = time.Second

// Lock implements authrefresh.Locker. A waiter woken by the holder's
// release returns authrefresh.ErrLockReleased rather than the lock, so that
// a Session reads the token just saved (see authrefresh.Locker); one whose
// poll finds the lock free, or whose holder died, takes it.
func (s *Store) Lock(ctx context.Context) (func(), error) {
	owner, err := randomOwner()
	if err != nil {
		return nil, err
	}
	ttl := s.LockTTL
	if ttl <= 0 {
		ttl = 45 * time.Second
	}
	poll := s.pollInterval()
	var w *waiter
	defer func() {
		if w != nil {
			w.leave()
		}
	}()
	timer := time.NewTimer(poll)
	defer timer.Stop()
	for {
		var set *redis.BoolCmd
		replicated, err := s.replicated(ctx, func(c redis.Cmdable) error { set = c.SetNX(ctx, s.lockKey(), owner, ttl); return nil })
		ok, serr := set.Result()
		if err == nil {
			err = serr
		}
		if err != nil {
			// The SET may have been applied before the connection failed: give
			// back a lock that might be ours, rather than leave it for LockTTL.
			s.release(owner, failedRelease)
			return nil, &Error{"lock", err}
		}
		if ok && !replicated {
			// A master cut off from its replicas (a failover under way) may
			// grant a lock the new master never hears of: another process
			// could refresh at the same time. Give it back; the refresh fails
			// as transient and is retried after a backoff.
			s.release(owner, failedRelease)
			return nil, &Error{"lock", fmt.Errorf("the lock was not acknowledged by %d replica(s) within the wait timeout", s.WaitReplicas)}
		}
		if ok {
			return func() { s.release(owner, heldRelease(ttl)) }, nil
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(poll)
		if w == nil {
			// Subscribe, then try once more before waiting: a release between
			// the failed SET and the subscription would otherwise be missed.
			w = wait(ctx, s.client, s.channel())
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-w.subscribed:
			case <-timer.C: // not confirmed (Redis busy, reconnecting): poll instead
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.released:
			// The holder is done, and has most likely saved a new token:
			// the Session reads it rather than taking the lock in turn.
			return nil, authrefresh.ErrLockReleased
		case <-timer.C:
		}
		// No message (lost, or the holder died): poll less often, up to 4×.
		poll = min(2*poll, 4*s.pollInterval())
	}
}

func (s *Store) pollInterval() time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return 250 * time.Millisecond
}

func randomOwner() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
