package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// heldWriter blocks every Write until open is closed and keeps what was
// written.
type heldWriter struct {
	open    chan struct{}
	started chan struct{} // closed when the first Write begins
	once    sync.Once

	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *heldWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	<-w.open
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *heldWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestAnswerSentBeforeLogLine: an answer of declared length reaches the
// client while its access-log line is still being written; an answer
// without one keeps the framing net/http gives it when the handler returns
// (a length, not chunks), and still gets its line.
func TestAnswerSentBeforeLogLine(t *testing.T) {
	lw := &heldWriter{open: make(chan struct{}), started: make(chan struct{})}
	logger := slog.New(slog.NewJSONHandler(lw, nil))
	exporter := &http.Client{Transport: otlpTestTransport(func(r *http.Request) (*http.Response, error) {
		return otlpTestAnswer(http.StatusOK), nil
	})}
	tracer := newTracer(TracerSettings{Enabled: true, SampleRatio: 1, Endpoint: "http://collector.invalid", Client: exporter,
		BatchSize: 1, QueueSize: 4, FlushInterval: time.Hour})
	defer tracer.Shutdown(context.Background())
	spans := make(chan *Span, 2)
	h := withRequestInfo(logger, nil, tracer, time.Now, nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spans <- spanFrom(r.Context())
		if r.URL.Path == "/declared" {
			encode(w, http.StatusOK, map[string]string{"answer": "yes"})
			return
		}
		io.WriteString(w, "undeclared")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	release := sync.OnceFunc(func() { close(lw.open) })
	defer release()                                   // before Close, which waits for a held handler
	client := &http.Client{Timeout: 10 * time.Second} // bounds the failure: an answer held behind its log line

	resp, err := client.Get(srv.URL + "/declared")
	if err != nil {
		t.Fatalf("GET /declared while its log line is held: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || string(body) != "{\"answer\":\"yes\"}\n" || resp.ContentLength != int64(len(body)) {
		t.Fatalf("answer %q (length %d, %v); want the whole JSON with its length", body, resp.ContentLength, err)
	}
	<-lw.started
	if lw.String() != "" {
		t.Fatalf("log line written before the test let it: %q", lw.String())
	}
	// The request's span ended before the answer went out: a trace query
	// made once the answer is in finds it.
	span := <-spans
	span.mu.Lock()
	ended := span.ended
	span.mu.Unlock()
	if !ended {
		t.Error("the server span was still open when the answer arrived")
	}
	release()

	resp, err = client.Get(srv.URL + "/undeclared")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "undeclared" || resp.ContentLength != int64(len(body)) || len(resp.TransferEncoding) != 0 {
		t.Fatalf("undeclared answer %q: length %d, transfer encoding %v; want net/http's length framing",
			body, resp.ContentLength, resp.TransferEncoding)
	}
	srv.Close() // waits for both handlers, so both lines are written
	if n := bytes.Count([]byte(lw.String()), []byte(`"msg":"request"`)); n != 2 {
		t.Fatalf("%d access-log lines; want 2:\n%s", n, lw.String())
	}
}
