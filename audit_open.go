package main

// Opening the audit file: tail verification, torn-write repair, chain continuation.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// openFileAudit opens (creating with mode 0600) the audit file at path, locks
// it against a second process, checks the end of the existing file and
// continues its chain. fsync makes every Append durable (fsync = "always");
// maxIndex sizes the query window (<= 0 means 10000); now stamps events (nil
// means time.Now).
//
// The last records (up to 4 MiB) are read back and verified: each hash, and
// the links between them. A bad record stops the open with an error naming
// the path, the seq and `audit verify`. The one exception is an incomplete
// last line, the mark of a write interrupted by a crash (that write was never
// acknowledged, since acknowledgement follows the write): like etcd's WAL
// repair, it is moved to PATH.torn-OFFSET, the file is truncated to its last
// complete record, and the continued chain starts with a security event
// "audit_tail_repaired" (RepairedTail describes it for the log).
func openFileAudit(path string, fsync bool, maxIndex int, hooks AuditHooks, now func() time.Time) (*FileAudit, error) {
	f, err := auditOpen(path)
	if err != nil {
		return nil, err
	}
	if err := auditLockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit file %s: %w", path, err)
	}
	tail, err := auditReadTail(path, f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	var side string
	if tail.torn != nil {
		if side, err = auditSaveTorn(path, f, tail); err != nil {
			f.Close()
			return nil, err
		}
	}
	a := auditStart(path, f, tail, fsync, maxIndex, hooks, now)
	if tail.torn != nil {
		sum := sha256.Sum256(tail.torn)
		ev := AuditEvent{
			EventType: EventSecurity, Severity: SeverityWarning, Actor: "production-agent",
			SourceIP: "local", UserAgent: auditSelfAgent(),
			Action: "audit_tail_repaired", Resource: path, Success: true,
			Metadata: map[string]string{
				"offset": strconv.FormatInt(tail.size, 10), "torn_bytes": strconv.Itoa(len(tail.torn)),
				"torn_sha256": hex.EncodeToString(sum[:]), "saved_to": side,
			},
		}
		if err := a.Append(context.Background(), ev); err != nil {
			a.Close()
			return nil, fmt.Errorf("audit file %s: record tail repair: %w", path, err)
		}
		a.repaired = fmt.Sprintf("audit file %s: removed an incomplete last record (%d bytes at offset %d, a write interrupted by a crash; never acknowledged), saved to %s; chain continues at seq %d",
			path, len(tail.torn), tail.size, side, tail.seq+1)
	}
	return a, nil
}

// auditOpen opens path for appending, creating it (and making its directory
// entry durable) when missing.
func auditOpen(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0); err != nil {
			return nil, fmt.Errorf("open audit file: %w", err)
		}
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("create audit file: %w", err)
	}
	if err := auditSyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("create audit file %s: %w", path, err)
	}
	return f, nil
}

// auditSyncDir fsyncs a directory so that a file created in it survives a crash.
func auditSyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// auditSaveTorn copies a torn tail to PATH.torn-OFFSET, durably, then cuts it
// from the audit file. It returns the copy's path.
func auditSaveTorn(path string, f *os.File, t auditTail) (string, error) {
	side := path + ".torn-" + strconv.FormatInt(t.size, 10)
	err := func() error {
		s, err := os.OpenFile(side, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := s.Write(t.torn); err != nil {
			s.Close()
			return err
		}
		if err := s.Sync(); err != nil {
			s.Close()
			return err
		}
		if err := s.Close(); err != nil {
			return err
		}
		if err := auditSyncDir(filepath.Dir(side)); err != nil {
			return err
		}
		if err := f.Truncate(t.size); err != nil {
			return err
		}
		return f.Sync()
	}()
	if err != nil {
		return "", fmt.Errorf("audit file %s: repair incomplete last record: %w", path, err)
	}
	return side, nil
}

// auditTail is what open learns from the end of an existing file.
type auditTail struct {
	size   int64  // end of the last complete record
	seq    uint64 // its seq (0: empty file)
	hash   string // its hash (genesis: empty file)
	recent []AuditEvent
	torn   []byte // bytes after the last newline, nil when none
}

// auditReadTail reads back and checks the last auditTailWindow bytes of an
// audit file of the given size: each complete record's hash, and the seq and
// prev_hash links between them (from seq 1 and the genesis hash when the
// window covers the whole file). Errors name the path, the seq and
// `audit verify`.
func auditReadTail(path string, r io.ReaderAt, size int64) (auditTail, error) {
	t := auditTail{hash: auditGenesisHash}
	if size == 0 {
		return t, nil
	}
	start := max(0, size-auditTailWindow)
	buf := make([]byte, size-start)
	if n, err := r.ReadAt(buf, start); n != len(buf) {
		return t, fmt.Errorf("audit file %s: read tail: %w", path, err)
	}
	end := bytes.LastIndexByte(buf, '\n') + 1
	if end < len(buf) {
		torn := buf[end:]
		if (end == 0 && start > 0) || !auditLooksTorn(torn) {
			return t, auditTailError(path, fmt.Sprintf("the last %d bytes after offset %d are not an audit record", len(torn), start+int64(end)))
		}
		t.torn = bytes.Clone(torn)
	}
	body, off := buf[:end], start
	var wantSeq uint64
	var wantPrev string
	if start == 0 {
		wantSeq, wantPrev = 1, auditGenesisHash
	} else if i := bytes.IndexByte(body, '\n'); i >= 0 {
		body, off = body[i+1:], off+int64(i+1) // skip the window's first, probably partial, line
	}
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		ev, reason := auditCheckLine(body[:i], wantSeq, wantPrev)
		if reason != "" {
			where := fmt.Sprintf("the record at offset %d", off)
			if wantSeq != 0 {
				where = "seq " + strconv.FormatUint(wantSeq, 10)
			} else if ev.Seq != 0 {
				where = "seq " + strconv.FormatUint(ev.Seq, 10)
			}
			return t, auditTailError(path, where+": "+reason)
		}
		t.recent = append(t.recent, ev)
		t.seq, t.hash = ev.Seq, ev.Hash
		wantSeq, wantPrev = ev.Seq+1, ev.Hash
		body, off = body[i+1:], off+int64(i+1)
	}
	if t.seq == 0 && end > 0 {
		return t, auditTailError(path, "no complete record in the last 4 MiB")
	}
	t.size = start + int64(end)
	return t, nil
}

func auditTailError(path, what string) error {
	return fmt.Errorf("audit file %s: corrupted tail at %s; refusing to start a new chain: run `production-agent audit verify %s`, then repair or move the file aside: %w",
		path, what, path, auditErrChainBroken)
}

// auditLooksTorn reports whether bytes after the last newline can be the
// remains of one of our writes cut short: not larger than a write, and either
// the start of a record or zeros (a file extended but not written before a
// power loss).
func auditLooksTorn(b []byte) bool {
	if len(b) >= auditMaxGroupBytes+auditMaxRecordBytes {
		return false
	}
	if len(bytes.Trim(b, "\x00")) == 0 {
		return true
	}
	p := []byte(`{"id":"`)
	n := min(len(b), len(p))
	return bytes.Equal(b[:n], p[:n])
}
