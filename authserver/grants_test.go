package authserver

import (
	"net/http/httptest"
	"sync"
	"testing"
)

// 200 simultaneous guesses for one user are limited like sequential ones:
// the attempt is reserved before the password is hashed, so at most the
// allowance (5 failures; a success gives its attempt back) is checked and
// the rest are 429.
func TestLoginThrottleIsAtomic(t *testing.T) {
	s, err := New(Config{PasswordCost: 6}) // a realistic hash: a race window of milliseconds
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	defer hs.Close()
	statuses := make(chan int, 200)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			body := `{"username":"demo","password":"wrong"}`
			if i == 199 {
				body = `{"username":"demo","password":"demo-password"}`
			}
			status, _, _ := postJSON(t, hs.URL+"/auth/login", body)
			statuses <- status
		}()
	}
	close(start)
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	checked := count[401] + count[200]
	if count[401] > 5 || count[429] < 194 {
		t.Fatalf("statuses %v: %d wrong passwords checked, want at most the allowance of 5", count, count[401])
	}
	if got := s.Counters().LoginFailures + s.Counters().Logins; got != uint64(checked) {
		t.Fatalf("server counted %d checked logins, answers say %d", got, checked)
	}
}
