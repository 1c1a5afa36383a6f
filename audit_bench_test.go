package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

func auditBenchEvent() AuditEvent {
	return AuditEvent{
		EventType: EventLLMInteraction, Severity: SeverityInfo, Actor: "user123", Action: "chat",
		Resource: "session456", Success: true, SourceIP: "192.168.1.100", UserAgent: "curl/8.5.0",
		SessionID: "session456", RequestID: "0f8fad5b-d9cb-469f-a165-70867728950e",
		TraceID:  "4bf92f3577b34da6a3ce929d0e0e4736",
		Metadata: map[string]string{"input_tokens": "12", "output_tokens": "30", "model": "claude-sonnet-4-5", "message_bytes": "5"},
	}
}

// BenchmarkAuditAppendMemory measures one-event Appends to the in_memory ring
// from parallel goroutines (the ring is full, so every Append evicts).
func BenchmarkAuditAppendMemory(b *testing.B) {
	m := newMemoryAudit(10000, AuditHooks{}, nil)
	ev := auditBenchEvent()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.Append(context.Background(), ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuditAppendFile measures one-event Appends to the file backend,
// with and without fsync, from one goroutine and from many (group commit).
func BenchmarkAuditAppendFile(b *testing.B) {
	for _, fsync := range []bool{false, true} {
		for _, parallel := range []bool{false, true} {
			b.Run(fmt.Sprintf("fsync=%v/parallel=%v", fsync, parallel), func(b *testing.B) {
				var syncs int
				f, err := auditOpen(filepath.Join(b.TempDir(), "audit.jsonl"))
				if err != nil {
					b.Fatal(err)
				}
				file := &auditCountingFile{File: f, syncs: &syncs}
				a := auditStart("bench", file, auditTail{hash: auditGenesisHash}, fsync, 10000, AuditHooks{}, nil)
				ev := auditBenchEvent()
				b.ReportAllocs()
				b.ResetTimer()
				if parallel {
					b.SetParallelism(16) // many requests in flight per CPU, as under load
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := a.Append(context.Background(), ev); err != nil {
								b.Fatal(err)
							}
						}
					})
				} else {
					for b.Loop() {
						if err := a.Append(context.Background(), ev); err != nil {
							b.Fatal(err)
						}
					}
				}
				b.StopTimer()
				if err := a.Close(); err != nil {
					b.Fatal(err)
				}
				if fsync {
					b.ReportMetric(float64(b.N)/float64(syncs), "appends/fsync")
				}
			})
		}
	}
}

// auditCountingFile counts fsyncs of a real file (read by the benchmark
// after Close, which orders it after the writer's last Sync).
type auditCountingFile struct {
	*os.File
	syncs *int
}

func (f *auditCountingFile) Sync() error {
	*f.syncs++
	return f.File.Sync()
}

// BenchmarkAuditRetained reports what a full in_memory ring costs to keep: the
// live heap per stored event (retained-B/event) after a GC, for a typical
// /chat event. b.N counts Appends; the ring holds the last 20,000.
func BenchmarkAuditRetained(b *testing.B) {
	const keep = 20000
	ev := auditBenchEvent()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	m := newMemoryAudit(keep, AuditHooks{}, nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev.RequestID = "req_" + strconv.Itoa(i)
		if err := m.Append(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	held := min(b.N, keep)
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(held), "retained-B/event")
	runtime.KeepAlive(m)
}
