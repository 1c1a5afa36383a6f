package main

import (
	"runtime"
	"strings"
	"testing"
)

// injBenchParagraphs returns ordinary prose of the kind users paste into a chat:
// a support request, a code review, travel notes. A few trigger words appear
// in harmless use ("ignore this warning", "previous version", "act as").
func injBenchParagraphs() []string {
	return []string{
		"Hi, I am migrating our billing service from the previous version of the library. " +
			"The build prints a deprecation warning and I would like to know whether I can ignore this warning " +
			"for now or whether it will break the release next month. The team lead asked me to document the steps.\n",
		"During the review we noticed that the handler reads the whole request body into memory before validating " +
			"the content type. Could you suggest a streaming approach, and show me how the tests should change? " +
			"We also want the logger to act as a single place for request identifiers.\n",
		"Our trip started in Lisbon, where we spent three days walking through the old town, eating grilled sardines " +
			"and listening to fado in small bars. From there we took the train north to Porto and then crossed into " +
			"Spain, stopping in Salamanca and Madrid before flying home.\n",
		"The quarterly report shows revenue growing by eleven percent, mostly from the new subscription tier. " +
			"Support tickets dropped after the onboarding guide was rewritten, although response times on weekends " +
			"remain above our target of two hours.\n",
	}
}

// injBenchText builds a benign message of exactly n bytes from injBenchParagraphs.
func injBenchText(n int) string {
	var b strings.Builder
	paras := injBenchParagraphs()
	for i := 0; b.Len() < n; i++ {
		b.WriteString(paras[i%len(paras)])
	}
	return b.String()[:n]
}

func injBenchmarkScan(b *testing.B, n int) {
	d := newInjectionDetector()
	text := injBenchText(n)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		d.Scan(text)
	}
}

func BenchmarkScan1KiB(b *testing.B)  { injBenchmarkScan(b, 1<<10) }
func BenchmarkScan32KiB(b *testing.B) { injBenchmarkScan(b, 32<<10) }

// BenchmarkDetectorRetained builds the detector and reports the live heap
// it keeps once built (after a GC): its rules and head index stay for the
// process's life, so they are part of idle RSS.
func BenchmarkDetectorRetained(b *testing.B) {
	var kept uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		d := newInjectionDetector()
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept += after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(d)
	}
	b.ReportMetric(float64(kept)/float64(b.N), "retained-B")
}
