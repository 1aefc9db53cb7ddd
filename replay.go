package authrefresh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
)

// DefaultMaxReplayBuffer is how much of a body without GetBody or Seek a
// Transport keeps so it can replay the request after a refusal.
const DefaultMaxReplayBuffer = 1 << 20

// errBodyTaken is what the base transport reads if it is still sending the
// first attempt's body when RoundTrip takes the body back to replay it.
var errBodyTaken = errors.New("authrefresh: request body taken back for replay")

// ReplayBudget bounds the memory that every Transport sharing it spends on
// replay copies of streamed request bodies (bodies with neither GetBody nor
// Seek, such as a proxy's incoming requests). A copy takes budget as its
// buffer grows and gives it back when the request is done. When the budget is
// spent, a body streams on without a copy: if the server then refuses its
// token, the request fails with a *NotReplayedError wrapping ErrBodyNotReplayable
// instead of being replayed (the token is still refreshed, so a retry by the
// caller succeeds). Nothing ever waits for budget, so it never slows a burst
// of uploads; it only caps what they hold. A nil *ReplayBudget is unbounded.
type ReplayBudget struct {
	limit      int64
	used, peak atomic.Int64
}

// NewReplayBudget returns a budget of limit bytes.
func NewReplayBudget(limit int64) *ReplayBudget { return &ReplayBudget{limit: limit} }

// Limit is the budget's size in bytes.
func (b *ReplayBudget) Limit() int64 { return b.limit }

// InUse is how many bytes replay copies hold now.
func (b *ReplayBudget) InUse() int64 { return b.used.Load() }

// Peak is the most bytes replay copies ever held at once.
func (b *ReplayBudget) Peak() int64 { return b.peak.Load() }

// take reserves n bytes, or reports that they would exceed the budget.
func (b *ReplayBudget) take(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			for p := b.peak.Load(); u+n > p && !b.peak.CompareAndSwap(p, u+n); p = b.peak.Load() {
			}
			return true
		}
	}
}

// give returns n reserved bytes.
func (b *ReplayBudget) give(n int64) {
	if b != nil && n > 0 {
		b.used.Add(-n)
	}
}

// replayer gives a request body that can be sent twice: the first attempt's
// body, and on demand the same bytes again.
type replayer struct {
	first  io.ReadCloser
	again  func() (io.ReadCloser, error) // GetBody; nil unless the request had one
	guard  *bodyGuard                    // set for seekers and buffered streams
	reason string                        // why the body cannot be replayed, if it cannot
}

// newReplayer prepares req's body for a possible replay: GetBody if the
// request has one, else the body's own Seek, else a copy of what the first
// attempt reads, up to limit bytes.
func newReplayer(req *http.Request, limit int64, budget *ReplayBudget) replayer {
	body := req.Body
	switch {
	case body == nil || body == http.NoBody:
		return replayer{first: body}
	case req.GetBody != nil:
		return replayer{first: body, again: req.GetBody}
	}
	if seeker, ok := body.(io.Seeker); ok {
		if offset, err := seeker.Seek(0, io.SeekCurrent); err == nil {
			g := &bodyGuard{rc: body, seeker: seeker, offset: offset}
			return replayer{first: g, guard: g}
		}
	}
	if limit <= 0 || req.ContentLength > limit {
		return replayer{first: body, reason: fmt.Sprintf("its body is a stream of %d bytes, more than the %d-byte replay buffer", req.ContentLength, limit)}
	}
	g := &bodyGuard{rc: body, rec: new(bytes.Buffer), limit: limit, budget: budget}
	if n := req.ContentLength; n > 0 {
		// A known length is taken from the budget at once, in one buffer of
		// exactly that size: no doublings left behind for the GC.
		if budget.take(n) {
			g.rec, g.held = bytes.NewBuffer(make([]byte, 0, n)), n
		} else {
			g.rec, g.spent = nil, true
		}
	}
	return replayer{first: g, guard: g}
}

// take returns the body for the second attempt.
func (r *replayer) take() (io.ReadCloser, error) {
	switch {
	case r.reason != "":
		return nil, fmt.Errorf("%w: %s", ErrBodyNotReplayable, r.reason)
	case r.again != nil:
		body, err := r.again()
		if err != nil {
			return nil, fmt.Errorf("%w: GetBody: %v", ErrBodyNotReplayable, err)
		}
		return body, nil
	case r.guard != nil:
		return r.guard.take()
	default: // no body
		return r.first, nil
	}
}

// release hands the first body back to the base transport's ownership: no
// replay will happen, so its Close closes the caller's body.
func (r *replayer) release() {
	if r.guard != nil {
		r.guard.release()
	}
}

// bodyGuard stands between the base transport and the caller's body while a
// replay is still possible. It keeps the base from closing the caller's body,
// records what it reads (for plain streams), and can be sealed so that a base
// still writing in the background cannot race the replay. Streaming is not
// delayed: bytes pass through as they are read.
type bodyGuard struct {
	mu       sync.Mutex
	rc       io.ReadCloser
	seeker   io.Seeker // nil: record instead
	offset   int64
	rec      *bytes.Buffer // nil after overflow, or when the budget is spent
	limit    int64
	budget   *ReplayBudget // what rec's buffer is taken from; nil: unbounded
	held     int64         // bytes of budget rec holds (its capacity)
	spent    bool          // rec was dropped because the budget was spent
	sealed   bool          // taken back for replay
	released bool          // no replay: Close closes rc
	closed   bool          // the base called Close
	rcClosed bool
}

func (g *bodyGuard) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sealed || g.rcClosed {
		return 0, errBodyTaken
	}
	n, err := g.rc.Read(p)
	if g.seeker == nil && g.rec != nil && n > 0 {
		if int64(g.rec.Len()+n) > g.limit {
			g.drop()
		} else {
			g.record(p[:n])
		}
	}
	return n, err
}

// record appends p to the copy, taking its buffer's growth from the budget;
// when the budget is spent, the copy is dropped. g.mu is held.
func (g *bodyGuard) record(p []byte) {
	before := g.rec.Cap()
	g.rec.Write(p)
	if grown := int64(g.rec.Cap() - before); grown > 0 {
		if !g.budget.take(grown) {
			g.spent = true
			g.drop()
			return
		}
		g.held += grown
	}
}

// drop forgets the copy and gives its budget back. g.mu is held.
func (g *bodyGuard) drop() {
	g.rec = nil
	g.budget.give(g.held)
	g.held = 0
}

func (g *bodyGuard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if g.released {
		return g.closeRC()
	}
	return nil
}

func (g *bodyGuard) closeRC() error {
	if g.rcClosed {
		return nil
	}
	g.rcClosed = true
	return g.rc.Close()
}

func (g *bodyGuard) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.released = true
	if g.rec != nil {
		g.drop()
	}
	if g.closed {
		_ = g.closeRC()
	}
}

func (g *bodyGuard) take() (io.ReadCloser, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sealed = true
	if g.rcClosed {
		return nil, fmt.Errorf("%w: the body was already closed", ErrBodyNotReplayable)
	}
	if g.seeker != nil {
		if _, err := g.seeker.Seek(g.offset, io.SeekStart); err != nil {
			_ = g.closeRC()
			return nil, fmt.Errorf("%w: seek: %v", ErrBodyNotReplayable, err)
		}
		g.rcClosed = true // ownership passes to the second attempt
		return g.rc, nil
	}
	defer g.closeRC()
	if g.rec == nil {
		return nil, g.notReplayable()
	}
	// The server may have answered before reading everything: the rest is
	// still in the caller's reader.
	rest, err := io.ReadAll(io.LimitReader(g.rc, g.limit-int64(g.rec.Len())+1))
	if err != nil {
		g.drop()
		return nil, fmt.Errorf("%w: reading the rest of the body: %v", ErrBodyNotReplayable, err)
	}
	if int64(g.rec.Len()+len(rest)) > g.limit {
		g.drop()
		return nil, g.notReplayable()
	}
	if g.record(rest); g.rec == nil {
		return nil, g.notReplayable()
	}
	held := g.held
	g.held = 0 // now the replay body's, given back when it is closed
	return &budgetedBody{Reader: bytes.NewReader(g.rec.Bytes()), budget: g.budget, held: held}, nil
}

func (g *bodyGuard) notReplayable() error {
	if g.spent {
		return fmt.Errorf("%w: the replay budget of %d bytes was spent by other requests' bodies", ErrBodyNotReplayable, g.budget.Limit())
	}
	return fmt.Errorf("%w: it is a stream longer than the %d-byte replay buffer", ErrBodyNotReplayable, g.limit)
}

// budgetedBody is a replay copy whose budget is given back on Close.
type budgetedBody struct {
	*bytes.Reader
	budget *ReplayBudget
	once   sync.Once
	held   int64
}

func (b *budgetedBody) Close() error {
	b.once.Do(func() { b.budget.give(b.held) })
	return nil
}
