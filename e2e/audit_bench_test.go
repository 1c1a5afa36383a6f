package e2e

// /chat throughput with each audit backend, to show what group commit buys:
// with fsync = "always" every 200 waits for its records to be fsynced, but
// concurrent requests share one write and one fsync.
//
//	go test -run '^$' -bench 'ChatAudit' -benchtime 3s -count 3 ./...

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkChatAuditMemory(b *testing.B) { audBenchChat(b) }

func BenchmarkChatAuditFileFsync(b *testing.B) {
	audBenchChat(b, audFileArgs(filepath.Join(b.TempDir(), "audit.jsonl"))...)
}

func BenchmarkChatAuditFileNoFsync(b *testing.B) {
	audBenchChat(b, append(audFileArgs(filepath.Join(b.TempDir(), "audit.jsonl")), "-set", "audit.fsync=never")...)
}

// audBenchChat starts an agent with args (outside the timer) and sends b.N
// /chat requests from 8×GOMAXPROCS goroutines, each with its own user and
// session; it reports requests per second.
func audBenchChat(b *testing.B, args ...string) {
	api := audStartBench(b, audArgs(audNoLimits, args)...)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512}}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	run := audRand()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := fmt.Sprintf("aud-bench-%s-%d", run, next.Add(1))
		body, _ := json.Marshal(audMsg(id, id, "hello, how are you today?"))
		for pb.Next() {
			resp, err := client.Post(api+"/chat", "application/json", bytes.NewReader(body))
			if err != nil {
				b.Errorf("POST /chat: %v", err)
				return
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("POST /chat: %d %s", resp.StatusCode, rb)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// audStartBench is startAgent for a benchmark: it runs agentBinary serve on
// 127.0.0.1 with free ports in a temporary directory holding config.toml,
// returns the API base URL once "listening" is logged, and kills the
// process at cleanup.
func audStartBench(b *testing.B, args ...string) string {
	b.Helper()
	dir := b.TempDir()
	cfg, err := os.ReadFile(filepath.Join(repoRoot, "config.toml"))
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), cfg, 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(agentBinary, append([]string{"serve", "-host", "127.0.0.1", "-port", "0", "-metrics-port", "0"}, args...)...)
	cmd.Dir = dir
	cmd.Env = cleanEnv(nil)
	logs := &logLines{listening: make(chan listeningRecord, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	var readers sync.WaitGroup
	for _, r := range []io.Reader{stdout, stderr} {
		readers.Go(func() {
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				if strings.Contains(sc.Text(), `"listening"`) || !strings.Contains(sc.Text(), `"msg":"request"`) {
					logs.add(sc.Text()) // keep the access log out of memory
				}
			}
		})
	}
	go func() {
		readers.Wait()
		cmd.Wait()
		close(done)
	}()
	b.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	select {
	case rec := <-logs.listening:
		return "http://" + rec.API
	case <-done:
		b.Fatalf("agent exited before listening:\n%s", strings.Join(logs.snapshot(), "\n"))
	case <-ctx.Done():
		b.Fatalf("agent not listening within %v:\n%s", startTimeout, strings.Join(logs.snapshot(), "\n"))
	}
	return ""
}
