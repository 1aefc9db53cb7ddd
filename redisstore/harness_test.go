package redisstore_test

import (
	"testing"

	"github.com/authrefresh/authrefresh/internal/redistest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"))
}

func startRedis(t testing.TB) *redistest.Server { return redistest.Start(t) }
