package redisstore_test

import (
	"github.com/authrefresh/authrefresh"
	"github.com/authrefresh/authrefresh/jsonauth"
	"github.com/authrefresh/authrefresh/redisstore"
	"github.com/redis/go-redis/v9"
)

// Every process that names the same session in the same Redis shares one
// token and one refresh: the store is also the lock. (Not run here: it
// needs a Redis server.)
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	store := redisstore.New(rdb, "session:alice")
	session := authrefresh.NewSession(store, &jsonauth.Refresher{URL: "https://api.example.com/auth/refresh"}, authrefresh.Options{})
	_ = session // session.Login(ctx, tok) once; then any process's session.Token(ctx)
}
