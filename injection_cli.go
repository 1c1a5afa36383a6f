package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// injScanMaxLine is the longest input line runScan accepts (1 MiB of JSON).
const injScanMaxLine = 1 << 20

// runScan implements `production-agent scan`: it reads JSON lines with a
// "text" field from stdin and writes, in the same order, one JSON line each
// {"injection":…,"score":…,"signals":[…]}. A line that is not valid JSON,
// lacks "text" or exceeds 1 MiB gets {"error":"…"} on its line and processing
// continues. It returns read and write errors only.
func runScan(stdin io.Reader, stdout io.Writer) error {
	d := newInjectionDetector()
	r := bufio.NewReaderSize(stdin, 64<<10)
	w := bufio.NewWriter(stdout)
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		tooLong := false
		line = append(line[:0], chunk...)
		for errors.Is(err, bufio.ErrBufferFull) {
			chunk, err = r.ReadSlice('\n')
			if len(line)+len(chunk) > injScanMaxLine+1 {
				tooLong = true
				continue
			}
			line = append(line, chunk...)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("scan: read input: %w", err)
		}
		if len(line) > 0 || tooLong {
			if werr := injScanLine(d, w, line, tooLong); werr != nil {
				return werr
			}
		}
		if err != nil {
			break
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("scan: write output: %w", err)
	}
	return nil
}

// injScanLine writes the verdict or error line for one input line.
func injScanLine(d *InjectionDetector, w *bufio.Writer, line []byte, tooLong bool) error {
	var out any
	line = bytes.TrimRight(line, "\r\n")
	var in struct {
		Text *string `json:"text"`
	}
	switch {
	case tooLong:
		out = map[string]string{"error": fmt.Sprintf("line longer than %d bytes", injScanMaxLine)}
	case len(bytes.TrimSpace(line)) == 0:
		out = map[string]string{"error": "empty line"}
	case json.Unmarshal(line, &in) != nil:
		out = map[string]string{"error": `line is not a JSON object with a string "text" field`}
	case in.Text == nil:
		out = map[string]string{"error": `missing "text" field`}
	default:
		out = d.Scan(*in.Text)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("scan: encode result: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("scan: write output: %w", err)
	}
	return nil
}
