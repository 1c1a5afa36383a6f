package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// sseCollect reads every event of input, returning them and the final
// error (io.EOF for a clean end).
func sseCollect(r io.Reader) ([]sseEvent, error) {
	sr := sseNewReader(r)
	var out []sseEvent
	for {
		ev, err := sr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []sseEvent
	}{
		{"lf", "event: a\ndata: 1\n\n", []sseEvent{{Event: "a", Data: "1"}}},
		{"crlf", "event: a\r\ndata: 1\r\n\r\nevent: b\r\ndata: 2\r\n\r\n", []sseEvent{{Event: "a", Data: "1"}, {Event: "b", Data: "2"}}},
		{"lone cr", "event: a\rdata: 1\r\rdata: 2\r\r", []sseEvent{{Event: "a", Data: "1"}, {Data: "2"}}},
		{"multi-line data", "data: {\"a\":\ndata: 1}\n\n", []sseEvent{{Data: "{\"a\":\n1}"}}},
		{"comments and unknown fields", ": keep-alive\nretry: 100\nfoo: bar\ndata: x\n: more\n\n", []sseEvent{{Data: "x"}}},
		{"no space after colon", "event:a\ndata:1\n\n", []sseEvent{{Event: "a", Data: "1"}}},
		{"only one space stripped", "data:  two\n\n", []sseEvent{{Data: " two"}}},
		{"colon in value", "data: a: b\n\n", []sseEvent{{Data: "a: b"}}},
		{"field without colon", "data\n\n", []sseEvent{{Data: ""}}},
		{"empty data line", "data:\n\n", []sseEvent{{Data: ""}}},
		{"no data is not dispatched", "event: ping\n\ndata: y\n\n", []sseEvent{{Data: "y"}}},
		{"blank lines between", "\n\n\ndata: a\n\n\n\ndata: b\n\n", []sseEvent{{Data: "a"}, {Data: "b"}}},
		{"id carried", "id: 7\ndata: a\n\ndata: b\n\n", []sseEvent{{Data: "a", ID: "7"}, {Data: "b", ID: "7"}}},
		{"id with NUL ignored", "id: 1\x002\ndata: a\n\n", []sseEvent{{Data: "a"}}},
		{"bom", "\uFEFFdata: a\n\n", []sseEvent{{Data: "a"}}},
		{"incomplete last event dropped", "data: a\n\ndata: b\n", []sseEvent{{Data: "a"}}},
		{"incomplete last line dropped", "data: a\n\ndata: {\"x", []sseEvent{{Data: "a"}}},
		{"done marker", "data: [DONE]\n\n", []sseEvent{{Data: "[DONE]"}}},
		{"empty", "", nil},
	}
	for _, tt := range tests {
		for _, chunked := range []bool{false, true} {
			name := tt.name
			var r io.Reader = strings.NewReader(tt.input)
			if chunked {
				name += "/one byte at a time"
				r = iotest.OneByteReader(r)
			}
			t.Run(name, func(t *testing.T) {
				got, err := sseCollect(r)
				if err != io.EOF {
					t.Errorf("final error = %v; want io.EOF", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events of %q = %+v; want %+v", tt.input, got, tt.want)
				}
			})
		}
	}
}

func TestSSEReaderErrors(t *testing.T) {
	boom := errors.New("connection reset")
	got, err := sseCollect(io.MultiReader(strings.NewReader("data: a\n\ndata: b"), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("events, error = %+v, %v; want one event then %v", got, err, boom)
	}
	_, err = sseCollect(strings.NewReader("data: " + strings.Repeat("x", sseMaxLine) + "\n\n"))
	if !errors.Is(err, sseErrLineTooLong) {
		t.Errorf("error for a long line = %v; want sseErrLineTooLong", err)
	}
	long := strings.Repeat("y", sseMaxLine-100)
	got, err = sseCollect(strings.NewReader("data: " + long + "\n\n"))
	if err != io.EOF || len(got) != 1 || got[0].Data != long {
		t.Errorf("a line just under the limit: %d events, %v; want it read", len(got), err)
	}
}

// FuzzSSEParser checks the parser never panics and that how the input is
// split into reads never changes the events.
func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{
		"event: a\ndata: 1\n\n",
		"data: x\r\ndata: y\r\n\r\n",
		"data: a\rdata: b\r\r",
		": c\n\nid: 1\nretry: 5\ndata\n\n",
		"\uFEFFdata: [DONE]\n\n",
		"data: {\"type\":\"message_stop\"}\n\n\r\n\r",
		"",
		"\r",
		"\r\n\r\n",
		"data:\x00\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		whole, err1 := sseCollect(strings.NewReader(input))
		bytewise, err2 := sseCollect(iotest.OneByteReader(strings.NewReader(input)))
		if err1 != io.EOF || err2 != io.EOF {
			t.Fatalf("errors = %v, %v; want io.EOF", err1, err2)
		}
		if !reflect.DeepEqual(whole, bytewise) {
			t.Fatalf("events differ by read size: %+v vs %+v", whole, bytewise)
		}
		for _, ev := range whole {
			if strings.ContainsAny(ev.Event, "\r\n") || strings.ContainsAny(ev.ID, "\r\n") {
				t.Fatalf("line break inside event name or id: %+v", ev)
			}
		}
	})
}
