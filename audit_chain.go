package main

// The hash chain of the file backend, its verification and `audit verify`.
//
// File format: JSON Lines, one AuditEvent per line ending in "\n", in seq
// order. For the record with sequence number seq (1, 2, 3, ...):
//
//	prev_hash = the hash of record seq-1; for seq 1, 64 "0" characters
//	canonical = json.Marshal(record with Hash = "")   // Go's encoding/json
//	hash      = lowercase hex(SHA-256(prev_hash as its 64 ASCII hex characters || canonical))
//	line      = json.Marshal(record with Hash = hash) + "\n"
//
// json.Marshal writes struct fields in AuditEvent's declaration order
// (error_message and metadata always, metadata {} when empty; seq,
// prev_hash and hash are set in the file), sorts metadata keys, escapes <, > and & as
// \u003c, \u003e, \u0026 and writes the timestamp as RFC 3339 with
// nanoseconds in UTC ("Z"). So canonical is exactly the line with its final
// `,"hash":"..."` member removed, and a reimplementation can hash
// prev_hash || (line without `,"hash":"<64 hex>"` before the closing brace).
//
// Lines written before error_message and metadata were always present
// (auditEventV1: both left out when empty) are valid in that encoding too;
// canonical is then that encoding.
//
// A line is valid when it is exactly that encoding (re-encoding the parsed
// record gives the same bytes: no added fields, whitespace or key changes),
// its seq follows the previous one by 1, its prev_hash is the previous hash
// and its hash matches. So editing any field, deleting, inserting or swapping
// lines, or cutting a line short is detected at the first affected seq.
// Removing whole lines from the end cannot be detected by any chain alone:
// compare the head (last seq and hash, printed by `audit verify`) with a copy
// kept elsewhere for that.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
)

// auditGenesisHash is the prev_hash of record 1.
const auditGenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// auditMaxRecordBytes bounds one encoded line (and one Append's batch), so a
// reader never needs more than this much memory for a line and a torn write
// is small enough to recognize on restart.
const auditMaxRecordBytes = 1 << 20

// auditErrChainBroken marks a verification failure (tampering or corruption).
var auditErrChainBroken = errors.New("audit chain broken")

// auditEncodeBody returns json.Marshal(ev) with the chain fields cleared: the
// record's JSON without seq, prev_hash and hash, onto which auditSeal splices
// them.
func auditEncodeBody(ev AuditEvent) ([]byte, error) {
	ev.Seq, ev.PrevHash, ev.Hash = 0, "", ""
	b, err := json.Marshal(ev.fields()) // what MarshalJSON writes, without encoding/json's second pass over it
	if err != nil {
		return nil, fmt.Errorf("encode audit event: %w", err)
	}
	return b, nil
}

// auditSeal appends to dst the line of the record whose body (from
// auditEncodeBody) gets seq and prev, and returns the extended dst and the
// record's hash. The bytes equal json.Marshal of the record with Seq, PrevHash
// and Hash set, because those are AuditEvent's last fields (see the file
// comment); TestAuditSealMatchesMarshal holds it to that.
func auditSeal(dst, body []byte, seq uint64, prev string) ([]byte, string) {
	start := len(dst)
	dst = append(dst, body[:len(body)-1]...)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, prev...)
	dst = append(dst, '"')
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(dst[start:])
	h.Write([]byte{'}'})
	var sum [sha256.Size]byte
	hash := hex.EncodeToString(h.Sum(sum[:0]))
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, hash...)
	dst = append(dst, "\"}\n"...)
	return dst, hash
}

// auditCheckLine parses one line (without its "\n") and checks it against the
// chain. wantSeq 0 and wantPrev "" mean unknown (the first line of a tail
// window). It returns the record, or a reason why the line is bad.
func auditCheckLine(line []byte, wantSeq uint64, wantPrev string) (AuditEvent, string) {
	var ev AuditEvent
	if len(line)+1 > auditMaxRecordBytes {
		return ev, fmt.Sprintf("record longer than %d bytes", auditMaxRecordBytes)
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return ev, "invalid JSON: " + err.Error()
	}
	encode := func(ev AuditEvent) ([]byte, error) { return json.Marshal(ev) }
	if re, err := encode(ev); err != nil || !bytes.Equal(re, line) {
		encode = func(ev AuditEvent) ([]byte, error) { return json.Marshal(auditEventV1(ev)) }
		if re, err := encode(ev); err != nil || !bytes.Equal(re, line) {
			return ev, "not in canonical form (fields added, removed, reordered or reformatted)"
		}
	}
	if wantSeq != 0 && ev.Seq != wantSeq {
		return ev, fmt.Sprintf("found seq %d where %d was expected (record deleted, inserted or moved)", ev.Seq, wantSeq)
	}
	if ev.Seq == 0 {
		return ev, "seq missing"
	}
	if !auditIsHash(ev.PrevHash) || !auditIsHash(ev.Hash) {
		return ev, "prev_hash or hash is not 64 lowercase hex digits"
	}
	if wantPrev != "" && ev.PrevHash != wantPrev {
		return ev, "prev_hash does not match the hash of the previous record"
	}
	want := ev.Hash
	ev.Hash = ""
	canonical, err := encode(ev)
	if err != nil {
		return ev, "cannot re-encode: " + err.Error()
	}
	ev.Hash = want
	h := sha256.New()
	h.Write([]byte(ev.PrevHash))
	h.Write(canonical)
	if hex.EncodeToString(h.Sum(nil)) != want {
		return ev, "hash mismatch (record edited)"
	}
	return ev, ""
}

func auditIsHash(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// auditVerifyResult is the outcome of auditVerify.
type auditVerifyResult struct {
	records  uint64 // intact records before the first bad one
	firstBad uint64 // seq expected at the first bad line; 0 when all good
	reason   string // why firstBad is bad
	lastHash string // hash of the last intact record (genesis when none)
}

// auditVerify checks a whole file from seq 1. An I/O error is returned as
// err with firstBad 0; a broken chain is reported in the result and err.
func auditVerify(r io.Reader) (auditVerifyResult, error) {
	res := auditVerifyResult{lastHash: auditGenesisHash}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, complete, err := auditReadLine(br)
		if err == io.EOF {
			return res, nil
		}
		if err != nil {
			return res, fmt.Errorf("read audit file after seq %d: %w", res.records, err)
		}
		want := res.records + 1
		reason := ""
		if !complete {
			reason = "last record is cut short (no final newline): truncated file or a write interrupted by a crash"
		} else if len(line)+1 > auditMaxRecordBytes {
			reason = fmt.Sprintf("record longer than %d bytes", auditMaxRecordBytes)
		} else {
			var ev AuditEvent
			ev, reason = auditCheckLine(line, want, res.lastHash)
			if reason == "" {
				res.records, res.lastHash = want, ev.Hash
				continue
			}
		}
		res.firstBad, res.reason = want, reason
		return res, fmt.Errorf("seq %d: %s: %w", want, reason, auditErrChainBroken)
	}
}

// auditReadLine returns the next line without its "\n" and whether it had
// one. A line longer than auditMaxRecordBytes is returned cut to that length
// (the caller rejects it). io.EOF means no bytes were left.
func auditReadLine(br *bufio.Reader) ([]byte, bool, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(line)+len(frag) > auditMaxRecordBytes {
			return append(line, frag[:auditMaxRecordBytes-len(line)]...), true, nil
		}
		line = append(line, frag...)
		switch err {
		case nil:
			return line[:len(line)-1], true, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(line) == 0 {
				return nil, false, io.EOF
			}
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

// verifyAuditFile checks the whole chain read from r. records is the number
// of intact records before the first bad one; firstBad is the seq at which the
// chain breaks (the seq the bad line should have had), 0 when all is good.
// err describes the break (wrapping auditErrChainBroken) or a read error.
func verifyAuditFile(r io.Reader) (records uint64, firstBad uint64, err error) {
	res, err := auditVerify(r)
	return res.records, res.firstBad, err
}

// runAuditVerify implements `production-agent audit verify FILE`; args are
// the arguments after "verify". It prints "ok: N records, chain intact ..." or
// "FAILED: chain broken at seq S (reason) ..." on stdout and returns a non-nil
// error on failure, a usage error or an unreadable file.
func runAuditVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: production-agent audit verify FILE")
		fmt.Fprintln(stderr, "Checks the SHA-256 chain of an audit file (audit.backend = \"file\"); exit status 0 when intact, 1 otherwise.")
	}
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("audit verify: want exactly one FILE argument")
	}
	path := fs.Arg(0)
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	defer f.Close()
	res, err := auditVerify(f)
	if res.firstBad != 0 {
		fmt.Fprintf(stdout, "FAILED: chain broken at seq %d (%s); %d records intact before it\n", res.firstBad, res.reason, res.records)
		return fmt.Errorf("audit verify %s: chain broken at seq %d: %w", path, res.firstBad, auditErrChainBroken)
	}
	if err != nil {
		return fmt.Errorf("audit verify %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "ok: %d records, chain intact (head: seq %d, hash %s)\n", res.records, res.records, res.lastHash)
	return nil
}
