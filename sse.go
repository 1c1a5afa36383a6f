package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// sseMaxLine is the longest Server-Sent Events line accepted, in bytes. A
// provider event is one JSON object on one data line; 1 MiB is far above any
// real delta and bounds the memory one upstream can make us hold.
const sseMaxLine = 1 << 20

// sseErrLineTooLong reports a line longer than sseMaxLine.
var sseErrLineTooLong = fmt.Errorf("sse line longer than %d bytes", sseMaxLine)

// sseEvent is one dispatched Server-Sent Event: the event name ("" when the
// stream sent none), the data lines joined with "\n", and the last event id.
type sseEvent struct {
	Event string
	Data  string
	ID    string
}

// sseReader parses a text/event-stream body as the WHATWG HTML "Server-sent
// events" section describes: lines end in CRLF, LF or CR; a blank line
// dispatches the pending event; lines starting with ':' are comments; a field
// is "name: value" (one leading space of the value dropped) or a bare name;
// several data lines join with "\n"; an event with no data is not dispatched;
// an event still pending when the stream ends is discarded. The retry field
// is ignored. An sseReader is not safe for concurrent use.
type sseReader struct {
	sc      *bufio.Scanner
	lastID  string
	started bool
}

// sseNewReader returns a reader of the events in r.
func sseNewReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), sseMaxLine)
	sc.Split(sseSplitLines)
	return &sseReader{sc: sc}
}

// sseSplitLines is a bufio.SplitFunc cutting at CRLF, LF or a lone CR.
func sseSplitLines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	i := bytes.IndexAny(data, "\r\n")
	if i < 0 {
		if atEOF {
			return len(data), data, nil
		}
		return 0, nil, nil
	}
	if data[i] == '\n' {
		return i + 1, data[:i], nil
	}
	// A CR: it is a whole terminator unless an LF follows, which we cannot
	// know until one more byte has arrived.
	if i+1 < len(data) {
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	}
	if atEOF {
		return i + 1, data[:i], nil
	}
	return 0, nil, nil
}

// Next returns the next event. It returns io.EOF when the stream ended
// cleanly between events (a pending, undispatched event is dropped), the
// reader's error when reading failed, and sseErrLineTooLong for a line over
// sseMaxLine.
func (s *sseReader) Next() (sseEvent, error) {
	var (
		name    string
		data    strings.Builder
		hasData bool
	)
	for s.sc.Scan() {
		line := s.sc.Text()
		if !s.started {
			s.started = true
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" {
			if !hasData {
				name = ""
				continue
			}
			d := data.String()
			return sseEvent{Event: name, Data: strings.TrimSuffix(d, "\n"), ID: s.lastID}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			name = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				s.lastID = value
			}
		}
	}
	if err := s.sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return sseEvent{}, sseErrLineTooLong
		}
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
