package redisstore

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// keys are the Redis keys of one session, worked out once.
type keys struct{ token, lock, channel, info string }

func keysOf(name string) keys {
	prefix := "authrefresh:{" + HashTag(name) + "}:"
	return keys{prefix + "token", prefix + "lock", prefix + "released", prefix + "info"}
}

// HashTag is the Redis Cluster hash tag of the session called name: the
// name itself when Redis reads it back intact as a tag (1 to 128 bytes,
// neither brace, not starting with '#'), so existing keys keep their names
// and stay readable in redis-cli; otherwise '#' and the name's SHA-256 in
// hex. A name holding '}' would otherwise end the tag early (so two names
// could share a slot's key, or one name's keys span slots), and an empty
// tag would not be a tag at all. The mapping is one-to-one: a name left
// intact never starts with '#', and SHA-256 does not collide.
func HashTag(name string) string {
	if name != "" && len(name) <= 128 && name[0] != '#' && !strings.ContainsAny(name, "{}") {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "#" + hex.EncodeToString(sum[:])
}
