package authrefresh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// DefaultMaxReplayBuffer is how much of a body without GetBody or Seek a
// Transport keeps so it can replay the request after a refusal.
const DefaultMaxReplayBuffer = 1 << 20

// errBodyTaken is what the base transport reads if it is still sending the
// first attempt's body when RoundTrip takes the body back to replay it.
var errBodyTaken = errors.New("authrefresh: request body taken back for replay")

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
func newReplayer(req *http.Request, limit int64) replayer {
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
	g := &bodyGuard{rc: body, rec: new(bytes.Buffer), limit: limit}
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
	rec      *bytes.Buffer // nil after overflow
	limit    int64
	sealed   bool // taken back for replay
	released bool // no replay: Close closes rc
	closed   bool // the base called Close
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
			g.rec = nil
		} else {
			g.rec.Write(p[:n])
		}
	}
	return n, err
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
		return nil, fmt.Errorf("%w: it is a stream longer than the %d-byte replay buffer", ErrBodyNotReplayable, g.limit)
	}
	// The server may have answered before reading everything: the rest is
	// still in the caller's reader.
	rest, err := io.ReadAll(io.LimitReader(g.rc, g.limit-int64(g.rec.Len())+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the rest of the body: %v", ErrBodyNotReplayable, err)
	}
	if int64(g.rec.Len()+len(rest)) > g.limit {
		return nil, fmt.Errorf("%w: it is a stream longer than the %d-byte replay buffer", ErrBodyNotReplayable, g.limit)
	}
	g.rec.Write(rest)
	return io.NopCloser(bytes.NewReader(g.rec.Bytes())), nil
}
