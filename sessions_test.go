package main

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// started returns a conversation that has had one turn.
func started(t *testing.T, id, user string) Conversation {
	t.Helper()
	s, _ := mustReduce(t, Conversation{}, StartConversation{ConversationID: "c-" + id, SessionID: id, UserID: user, MaxHistoryMessages: 10},
		SendMessage{Text: "hi"}, ProcessResponse{Response: LLMResponse{Text: "hello"}})
	return s
}

func TestSessionStoreOwnershipAndBusy(t *testing.T) {
	clk := newFakeClock()
	st := newSessionStore(10, time.Hour, clk.Now, nil)
	_, finish, err := st.Begin("s1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Begin("s1", "alice"); !errors.Is(err, ErrSessionBusy) {
		t.Errorf("second Begin while busy = %v; want ErrSessionBusy", err)
	}
	if _, _, err := st.Begin("s1", "mallory"); !errors.Is(err, ErrSessionOwner) || sessionOwner(err) != "alice" {
		t.Errorf("Begin by another user = %v (owner %q); want ErrSessionOwner naming the owner", err, sessionOwner(err))
	}
	finish(started(t, "s1", "alice"))
	finish(Conversation{}) // second call is a no-op
	conv, owner, err := st.Get("s1")
	if err != nil || owner != "alice" || conv.ID != "c-s1" {
		t.Fatalf("Get = %q %q %v", conv.ID, owner, err)
	}
	if _, finish2, err := st.Begin("s1", "alice"); err != nil {
		t.Errorf("Begin after finish = %v", err)
	} else {
		finish2(conv)
	}
}

func TestSessionStoreLRUEvictionSkipsBusy(t *testing.T) {
	clk := newFakeClock()
	var counts []int
	st := newSessionStore(2, time.Hour, clk.Now, func(n int) { counts = append(counts, n) })
	_, fa, _ := st.Begin("a", "u") // stays busy
	_, fb, _ := st.Begin("b", "u")
	fb(started(t, "b", "u"))
	clk.Advance(time.Second)
	_, fc, err := st.Begin("c", "u") // evicts b, the least recently used idle one
	if err != nil {
		t.Fatal(err)
	}
	fc(started(t, "c", "u"))
	if _, _, err := st.Get("b"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("b after eviction: %v; want ErrSessionNotFound", err)
	}
	if st.Len() != 2 {
		t.Errorf("Len = %d; want 2", st.Len())
	}
	_, fd, _ := st.Begin("d", "u") // evicts c (a is busy)
	if _, _, err := st.Begin("e", "u"); !errors.Is(err, ErrSessionsFull) {
		t.Errorf("Begin with every session busy = %v; want ErrSessionsFull", err)
	}
	fa(started(t, "a", "u"))
	fd(started(t, "d", "u"))
	if got := counts[len(counts)-1]; got != 2 {
		t.Errorf("last count callback = %d; want 2", got)
	}
}

func TestSessionStoreIdleExpiry(t *testing.T) {
	clk := newFakeClock()
	st := newSessionStore(10, 30*time.Minute, clk.Now, nil)
	for _, id := range []string{"a", "b"} {
		_, f, _ := st.Begin(id, "u")
		f(started(t, id, "u"))
	}
	clk.Advance(29 * time.Minute)
	if _, f, err := st.Begin("b", "u"); err != nil { // touching b keeps it alive
		t.Fatal(err)
	} else {
		f(started(t, "b", "u"))
	}
	clk.Advance(time.Minute)
	if _, _, err := st.Get("a"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("a after 30 idle minutes: %v; want ErrSessionNotFound", err)
	}
	if n := st.Sweep(); n != 1 {
		t.Errorf("Sweep dropped %d; want 1", n)
	}
	if _, _, err := st.Get("b"); err != nil {
		t.Errorf("b: %v", err)
	}
	// An expired session id starts a fresh conversation, possibly for another user.
	clk.Advance(time.Hour)
	conv, f, err := st.Begin("b", "someone-else")
	if err != nil || conv.Status != StatusNew {
		t.Fatalf("Begin on expired id = %v, status %q", err, conv.Status)
	}
	f(conv)
}

func TestSessionStoreEnd(t *testing.T) {
	clk := newFakeClock()
	st := newSessionStore(10, time.Hour, clk.Now, nil)
	_, f, _ := st.Begin("s", "u")
	f(started(t, "s", "u"))
	denied := errors.New("denied")
	if _, err := st.End("s", clk.Now(), func(owner string) error { return denied }); !errors.Is(err, denied) {
		t.Errorf("End vetoed = %v", err)
	}
	ended, err := st.End("s", clk.Now(), nil)
	if err != nil || ended.Status != StatusEnded {
		t.Fatalf("End = %v, status %q", err, ended.Status)
	}
	if _, err := st.End("s", clk.Now(), nil); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("End twice = %v; want ErrSessionNotFound", err)
	}
	// A turn that finishes after its session was ended does not resurrect it.
	_, f2, _ := st.Begin("t", "u")
	f2(started(t, "t", "u"))
	_, f3, _ := st.Begin("t", "u")
	if _, err := st.End("t", clk.Now(), nil); err != nil {
		t.Fatal(err)
	}
	f3(started(t, "t", "u"))
	if _, _, err := st.Get("t"); !errors.Is(err, ErrSessionNotFound) {
		t.Errorf("ended session came back: %v", err)
	}
}

// TestChatAsAnotherUserNamesTheOwner: with auth off, /chat on a session
// another user_id started answers 403 and raises session_hijacking naming
// the session's owner.
func TestChatAsAnotherUserNamesTheOwner(t *testing.T) {
	a, srv := newTestApp(t, time.Now, nil, "llm.provider=mock", "security.auto_block=false")
	post := func(user string) int {
		resp, err := http.Post(srv.URL+"/chat", "application/json",
			strings.NewReader(`{"user_id":"`+user+`","session_id":"shared","message":"hello"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("alice"); got != http.StatusOK {
		t.Fatalf("alice: %d", got)
	}
	if got := post("mallory"); got != http.StatusForbidden {
		t.Fatalf("mallory on alice's session: %d; want 403", got)
	}
	incs := a.monitor.Incidents(IncidentFilter{Type: IncidentSessionHijacking})
	if len(incs) != 1 || incs[0].Metadata["owner"] != "alice" {
		t.Fatalf("session_hijacking incidents %+v; want one naming owner alice", incs)
	}
}
