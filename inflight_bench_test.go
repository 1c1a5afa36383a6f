package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// inFlightRequests is how many requests BenchmarkInFlightMemory holds at once.
const inFlightRequests = 500

// BenchmarkInFlightMemory measures what a request waiting on a slow
// upstream holds in memory, the cost behind scenario 4 of the load harness:
// inFlightRequests requests are sent at once and held by the upstream until
// all have reached it; then, after a GC, the live heap and goroutine stacks
// grown since before the first request are divided by the count. "agent" is
// /chat with provider openai; "proxy" is a bare httputil.ReverseProxy to
// the same upstream. Both counts include the same client, upstream and
// connections (all in this process), so the difference between them is
// what the agent holds beyond one bare hop.
func BenchmarkInFlightMemory(b *testing.B) {
	b.Run("agent", func(b *testing.B) {
		inFlightMemory(b, "/chat", func(upstream string) http.Handler {
			return hotApp(b, map[string]string{"OPENAI_API_KEY": "sk-bench"},
				"llm.provider=openai", "llm.base_url="+upstream+"/v1")
		})
	})
	b.Run("proxy", func(b *testing.B) {
		inFlightMemory(b, "/v1/chat/completions", func(upstream string) http.Handler {
			u, err := url.Parse(upstream)
			if err != nil {
				b.Fatal(err)
			}
			p := httputil.NewSingleHostReverseProxy(u)
			p.Transport = &http.Transport{MaxIdleConnsPerHost: inFlightRequests}
			return p
		})
	})
}

// inFlightRound is one round's rendezvous with the upstream.
type inFlightRound struct {
	arrived chan struct{} // one per request that reached the upstream
	release chan struct{} // closed to let the upstream answer
}

// inFlightMemory runs rounds of inFlightRequests held requests through the
// handler front builds for the upstream, each round on new connections,
// and reports heap and stack bytes per request in flight.
func inFlightMemory(b *testing.B, path string, front func(upstream string) http.Handler) {
	var round atomic.Pointer[inFlightRound]
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		rd := round.Load()
		rd.arrived <- struct{}{}
		<-rd.release
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, hotMockReply)
	}))
	defer upstream.Close()
	srv := httptest.NewServer(front(upstream.URL))
	defer srv.Close()
	goroutines := runtime.NumGoroutine()
	var heap, stack, rounds int64
	for b.Loop() {
		rd := &inFlightRound{arrived: make(chan struct{}, inFlightRequests), release: make(chan struct{})}
		round.Store(rd)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: inFlightRequests}}
		var before, held runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		failed := make(chan struct{}, inFlightRequests) // a request that will never reach the upstream
		var wg sync.WaitGroup
		for i := range inFlightRequests {
			wg.Go(func() {
				n := strconv.Itoa(int(rounds)*inFlightRequests + i)
				body := `{"user_id":"u` + n + `","session_id":"s` + n + `","message":"Hello there! Please give me a short summary of what you can do."}`
				req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
				if err != nil {
					b.Error(err)
					failed <- struct{}{}
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					failed <- struct{}{}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					failed <- struct{}{} // answered without being held (or after: then the round is over anyway)
				}
			})
		}
		for arrived := 0; arrived < inFlightRequests; {
			select {
			case <-rd.arrived:
				arrived++
			case <-failed:
				close(rd.release)
				wg.Wait()
				b.FailNow()
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&held)
		close(rd.release)
		wg.Wait()
		heap += int64(held.HeapAlloc) - int64(before.HeapAlloc)
		stack += int64(held.StackInuse) - int64(before.StackInuse)
		rounds++
		// The next round dials anew, as this one did: close every
		// connection and wait for their goroutines to end.
		client.CloseIdleConnections()
		srv.CloseClientConnections()
		upstream.CloseClientConnections()
		for runtime.NumGoroutine() > goroutines {
			runtime.Gosched()
		}
	}
	b.ReportMetric(float64(heap)/float64(rounds*inFlightRequests), "heap-B/req")
	b.ReportMetric(float64(stack)/float64(rounds*inFlightRequests), "stack-B/req")
}
