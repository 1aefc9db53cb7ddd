package redisstore

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Waiters for a refresh lock are woken by the holder's release message. A
// subscription per waiter would cost a connection per wait (a dial, a
// handshake, a socket); with many sessions refreshing at once, that churn
// is most of Redis's work. So every Store of one client shares one
// subscription, open while anyone waits: channels are added and removed on
// it, and one goroutine hands each release to that channel's waiters.

// hubs holds the open hub of each client.
var (
	hubsMu sync.Mutex
	hubs   = map[redis.UniversalClient]*hub{}
)

// hub is the shared subscription of one client. Its fields are guarded by
// hubsMu; the subscription's commands are sent under it too, so that a
// SUBSCRIBE and an UNSUBSCRIBE of one channel reach Redis in the order they
// were decided.
type hub struct {
	sub      *redis.PubSub
	channels map[string]*channelWaiters
	waiters  int
	done     chan struct{} // closed when the dispatcher has returned
}

type channelWaiters struct {
	subscribed bool // Redis confirmed the subscription
	waiters    map[*waiter]struct{}
}

// waiter is one Lock waiting for a release.
type waiter struct {
	subscribed chan struct{} // closed once Redis confirmed the channel
	released   chan struct{} // one release message (buffered)
	leave      func()        // unregisters
}

// wait registers for channel's release messages through client's shared
// subscription; call leave when done. Subscribing is best effort: a waiter
// whose subscription is never confirmed (Redis busy, reconnecting) polls.
func wait(ctx context.Context, client redis.UniversalClient, channel string) *waiter {
	w := &waiter{subscribed: make(chan struct{}), released: make(chan struct{}, 1)}
	hubsMu.Lock()
	h := hubs[client]
	if h == nil {
		h = &hub{sub: client.Subscribe(ctx), channels: map[string]*channelWaiters{}, done: make(chan struct{})}
		hubs[client] = h
		go h.dispatch(h.sub.ChannelWithSubscriptions())
	}
	h.waiters++
	cw := h.channels[channel]
	if cw == nil {
		cw = &channelWaiters{waiters: map[*waiter]struct{}{}}
		h.channels[channel] = cw
		_ = h.sub.Subscribe(ctx, channel) // an error here: the poll covers
	}
	cw.waiters[w] = struct{}{}
	if cw.subscribed {
		close(w.subscribed)
	}
	hubsMu.Unlock()
	w.leave = func() { h.leave(client, channel, w) }
	return w
}

func (h *hub) leave(client redis.UniversalClient, channel string, w *waiter) {
	hubsMu.Lock()
	h.waiters--
	if cw := h.channels[channel]; cw != nil {
		delete(cw.waiters, w)
		if len(cw.waiters) == 0 {
			delete(h.channels, channel)
			if h.waiters > 0 {
				_ = h.sub.Unsubscribe(context.Background(), channel)
			}
		}
	}
	last := h.waiters == 0
	if last {
		delete(hubs, client)
	}
	hubsMu.Unlock()
	if last {
		// Closed in the background: go-redis takes up to 100 ms to wind its
		// reader down, which must not delay the Lock that is leaving (it
		// holds the refresh lock, or is about to read the new token).
		go func() {
			h.sub.Close()
			<-h.done
		}()
	}
}

// dispatch hands confirmations and release messages to the waiters.
func (h *hub) dispatch(msgs <-chan any) {
	defer close(h.done)
	for msg := range msgs {
		hubsMu.Lock()
		switch m := msg.(type) {
		case *redis.Subscription:
			if cw := h.channels[m.Channel]; cw != nil && m.Kind == "subscribe" && !cw.subscribed {
				cw.subscribed = true
				for w := range cw.waiters {
					close(w.subscribed)
				}
			}
		case *redis.Message:
			if cw := h.channels[m.Channel]; cw != nil {
				for w := range cw.waiters {
					select {
					case w.released <- struct{}{}:
					default:
					}
				}
			}
		}
		hubsMu.Unlock()
	}
}
