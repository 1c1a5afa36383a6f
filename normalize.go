package main

import (
	"unicode"
	"unicode/utf8"
)

// normOptions selects the optional normalisation steps the injection detector
// applies before matching. The zero value disables every optional step;
// normAllOptions enables them all. Case folding, accent folding and the
// collapsing of whitespace and punctuation into single spaces are not optional:
// the matching rules are written against that form.
type normOptions struct {
	stripInvisible bool // drop Unicode Cf and tag characters (U+E0000–E007F)
	foldWidth      bool // full-width, circled and mathematical letters to ASCII
	mapHomoglyphs  bool // Cyrillic/Greek/small-capital look-alikes to Latin
	joinSpaced     bool // "i g n o r e" to "ignore"
	leetspeak      bool // build a view with "1gn0r3" read as "ignore"
	decode         bool // decode Base64/hex runs and ROT13 words and scan them too
}

// normAllOptions returns the options the production detector uses: every step on.
func normAllOptions() normOptions {
	return normOptions{
		stripInvisible: true,
		foldWidth:      true,
		mapHomoglyphs:  true,
		joinSpaced:     true,
		leetspeak:      true,
		decode:         true,
	}
}

// Limits that keep the normaliser linear and cheap on 32 KiB messages.
const (
	// normMinEncodedRun is the shortest Base64/hex run worth decoding: shorter
	// runs are ordinary words and identifiers far more often than payloads.
	normMinEncodedRun = 16
	// normMaxDecoded caps the total decoded bytes per message so a message made
	// of one huge Base64 blob costs no more than a few KiB of extra scanning.
	normMaxDecoded = 4096
	// normMaxDecodeRuns caps decode attempts per message.
	normMaxDecodeRuns = 32
	// normMaxBlob caps the joined spaced-letter text scanned without word breaks.
	normMaxBlob = 1024
	// normMinSpacedRun is the number of single letters in a row that is read as
	// a spaced-out word; two ("a b") is ordinary text.
	normMinSpacedRun = 3
)

// normResult holds the views of one message that the detector scans.
type normResult struct {
	// raw is the message with invisible characters removed and width folded;
	// case and punctuation are kept (template markers, DAN, markdown images).
	raw string
	// lower is raw lower-cased.
	lower string
	// words is the token view: ". " followed by lower-case, accent-folded
	// tokens of letters and digits separated by single spaces, with "." for
	// sentence ends (. ! ? ; newline).
	words string
	// leet is the token view with leetspeak tokens read as letters; empty when
	// the message has none or the step is off.
	leet string
	// blobs are spaced-out letter runs joined without separators.
	blobs []string
	// hidden is the ASCII smuggled in tag characters U+E0020–E007E.
	hidden string
	// invisible counts removed Cf characters (tag characters excluded).
	invisible int
	// inWordInvisible reports a Cf character between two letters or a bidi
	// override, the forms used to hide words from filters.
	inWordInvisible bool
	// tags counts tag characters.
	tags int
	// mixedScript reports a token mixing ASCII letters with look-alikes.
	mixedScript bool
	// hasLeet reports a token mixing letters with leetspeak digits or symbols.
	hasLeet bool
}

// normalize builds the views of text that the detector scans. It never fails;
// invalid UTF-8 is read as U+FFFD and every output string is valid UTF-8.
func normalize(text string, o normOptions) normResult {
	var res normResult
	var hidden []byte
	var raw []byte // nil while raw equals text so far
	lower := make([]byte, 0, len(text))
	var prev rune
	var pendingInvisible bool
	for i := 0; i < len(text); {
		c := text[i]
		if c < utf8.RuneSelf {
			// ASCII fast path: no invisible, wide or look-alike characters.
			if pendingInvisible {
				res.inWordInvisible = res.inWordInvisible || normIsASCIILetter(c)
				pendingInvisible = false
			}
			prev = rune(c)
			if raw != nil {
				raw = append(raw, c)
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower = append(lower, c)
			i++
			continue
		}
		start := i
		r, size := utf8.DecodeRuneInString(text[i:])
		i += size
		orig := r
		if r == utf8.RuneError && size == 1 {
			orig = -1 // invalid UTF-8 becomes U+FFFD
		}
		if r >= 0xE0000 && r <= 0xE007F {
			res.tags++
			if r >= 0xE0020 && r <= 0xE007E {
				hidden = append(hidden, byte(r-0xE0000))
			}
			if o.stripInvisible {
				raw = normStartRaw(raw, text, start)
				continue
			}
		} else if unicode.Is(unicode.Cf, r) {
			res.invisible++
			if (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
				res.inWordInvisible = true
			}
			if normIsAlphabetic(prev) {
				pendingInvisible = true
			}
			if o.stripInvisible {
				raw = normStartRaw(raw, text, start)
				continue
			}
		}
		if o.foldWidth {
			r = normFoldWidth(r)
		}
		if r != orig {
			raw = normStartRaw(raw, text, start)
		}
		if pendingInvisible {
			if normIsAlphabetic(r) {
				res.inWordInvisible = true
			}
			pendingInvisible = false
		}
		prev = r
		if raw != nil {
			raw = utf8.AppendRune(raw, r)
		}
		lower = utf8.AppendRune(lower, unicode.ToLower(r))
	}
	if raw != nil {
		res.raw = string(raw)
	} else {
		res.raw = text
	}
	res.lower = string(lower)
	res.hidden = string(hidden)
	var tw normTokenWriter
	tw.init(o, false, len(res.lower))
	tw.write(res.lower)
	res.words = tw.finish()
	res.blobs = tw.blobs
	res.mixedScript = tw.mixedScript
	res.hasLeet = tw.hasLeet
	if o.leetspeak && tw.hasLeet {
		var lw normTokenWriter
		lw.init(o, true, len(res.lower))
		lw.write(res.lower)
		res.leet = lw.finish()
	}
	return res
}

// normStartRaw returns raw, or a copy of text[:i] to continue from when raw
// is still nil: the first change to the text.
func normStartRaw(raw []byte, text string, i int) []byte {
	if raw != nil {
		return raw
	}
	return append(make([]byte, 0, len(text)), text[:i]...)
}

func normIsASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// normTokenWriter turns lower-cased text into the token view. ASCII tokens
// are copied as they are; tokens with other characters, apostrophes or
// leetspeak go through emitToken, which decides look-alike mapping and
// leetspeak per token. Runs of single letters are joined when joinSpaced is on.
type normTokenWriter struct {
	o    normOptions
	leet bool

	out   []byte
	src   string
	start int    // start of the current token in src; -1 between tokens
	slow  bool   // the token needs emitToken
	alpha bool   // the token has an ASCII letter
	digit bool   // the token has a leetspeak digit or symbol
	tok   []rune // scratch for emitToken

	pending  int // 0 nothing, 1 space, 2 sentence end since the last token
	sepBytes int // separator characters since the last token
	sepSpace bool

	runStart   int // offset in out of the first letter of a single-letter run
	runLetters int

	blobs       []string
	blobBytes   int
	mixedScript bool
	hasLeet     bool
}

func (w *normTokenWriter) init(o normOptions, leet bool, n int) {
	w.o = o
	w.leet = leet
	w.out = make([]byte, 0, n+4)
	w.out = append(w.out, '.')
	w.start = -1
	w.runStart = -1
}

// write tokenises s, which must already be lower-cased.
func (w *normTokenWriter) write(s string) {
	w.src = s
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c >= 'a' && c <= 'z':
				w.open(i)
				w.alpha = true
				i++
				continue
			case c >= '0' && c <= '9':
				w.open(i)
				w.digit = w.digit || normIsLeet(rune(c))
				i++
				continue
			case (c == '@' || c == '$') && w.start >= 0:
				w.hasLeet = true // "ign@re": the leet view reads it as one word
				if w.leet {
					w.digit = true
					w.slow = true
					i++
					continue
				}
			case (c == '\'' || c == '`') && w.start >= 0:
				// Apostrophes join contractions: "don't" becomes "dont".
				w.slow = true
				i++
				continue
			}
			w.flush(i)
			w.separator(rune(c))
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '’' && w.start >= 0,
			unicode.IsLetter(r), unicode.IsDigit(r),
			unicode.Is(unicode.Mn, r) && w.start >= 0:
			w.open(i)
			w.slow = true
		default:
			w.flush(i)
			w.separator(r)
		}
		i += size
	}
	w.flush(len(s))
}

func (w *normTokenWriter) open(i int) {
	if w.start < 0 {
		w.start = i
	}
}

func (w *normTokenWriter) separator(r rune) {
	w.sepBytes++
	if r != ' ' {
		w.sepSpace = false
	}
	switch r {
	case '.', '!', '?', ';', '\n', '。', '！', '？':
		w.pending = 2
	default:
		if w.pending == 0 {
			w.pending = 1
		}
	}
}

// flush writes the token that ends at end, if any.
func (w *normTokenWriter) flush(end int) {
	if w.start < 0 {
		return
	}
	tok := w.src[w.start:end]
	single := len(tok) == 1
	joined := single && w.runLetters > 0 && w.sepBytes == 1 && w.sepSpace
	if !joined {
		w.endRun()
	}
	if w.pending == 2 {
		w.out = append(w.out, " . "...)
	} else {
		w.out = append(w.out, ' ')
	}
	if single {
		if w.runLetters == 0 {
			w.runStart = len(w.out)
		}
		w.runLetters++
	}
	leetTok := w.alpha && w.digit && len(tok) >= 3
	if leetTok {
		w.hasLeet = true
	}
	if w.slow || leetTok && w.leet {
		w.emitToken(tok)
	} else {
		w.out = append(w.out, tok...)
	}
	w.start = -1
	w.slow, w.alpha, w.digit = false, false, false
	w.pending = 0
	w.sepBytes = 0
	w.sepSpace = true
}

// emitToken appends tok, mapping look-alikes and leetspeak and dropping
// apostrophes.
func (w *normTokenWriter) emitToken(s string) {
	w.tok = w.tok[:0]
	for _, r := range s {
		if r != '\'' && r != '`' && r != '’' {
			w.tok = append(w.tok, r)
		}
	}
	var ascii, confusable, foreign, leetChar bool
	for _, r := range w.tok {
		switch {
		case r >= 'a' && r <= 'z':
			ascii = true
		case normIsLeet(r):
			leetChar = true
		case r >= utf8.RuneSelf:
			if _, ok := normConfusable(r); ok {
				confusable = true
			} else if unicode.IsLetter(r) && !normIsLatin(r) {
				foreign = true
			}
		}
	}
	// A token made only of look-alikes may be a real Cyrillic or Greek word
	// ("все"); only longer ones are read as disguised Latin.
	mapConf := w.o.mapHomoglyphs && confusable && (ascii || !foreign && len(w.tok) >= 4)
	if confusable && ascii {
		w.mixedScript = true
	}
	mapLeet := leetChar && (ascii || confusable) && len(w.tok) >= 3
	if mapLeet {
		w.hasLeet = true
	}
	mapLeet = mapLeet && w.leet
	for _, r := range w.tok {
		if mapConf {
			if m, ok := normConfusable(r); ok {
				r = m
			}
		}
		if mapLeet {
			r = normLeet(r)
		}
		w.out = normAppendFolded(w.out, r)
	}
}

// endRun finishes a run of single letters: three or more become one word.
func (w *normTokenWriter) endRun() {
	if w.runLetters >= normMinSpacedRun && w.o.joinSpaced {
		j := w.runStart
		for i := w.runStart; i < len(w.out); i++ {
			if w.out[i] != ' ' {
				w.out[j] = w.out[i]
				j++
			}
		}
		w.out = w.out[:j]
		if w.blobBytes < normMaxBlob && j-w.runStart >= 2*normMinSpacedRun {
			b := string(w.out[w.runStart:j])
			if len(b) > normMaxBlob-w.blobBytes {
				b = b[:normMaxBlob-w.blobBytes]
			}
			w.blobBytes += len(b)
			w.blobs = append(w.blobs, b)
		}
	}
	w.runLetters = 0
	w.runStart = -1
}

func (w *normTokenWriter) finish() string {
	w.flush(len(w.src))
	w.endRun()
	return string(w.out) // valid UTF-8: built from decoded runes and ASCII
}

// normAppendFolded appends r with Latin accents removed; German umlauts and ß
// become their two-letter spellings (ä → ae) as Germans type them without them.
func normAppendFolded(b []byte, r rune) []byte {
	if r < utf8.RuneSelf {
		return append(b, byte(r))
	}
	switch r {
	case 'ä', 'æ':
		return append(b, 'a', 'e')
	case 'ö', 'œ':
		return append(b, 'o', 'e')
	case 'ü':
		return append(b, 'u', 'e')
	case 'ß':
		return append(b, 's', 's')
	case 'à', 'á', 'â', 'ã', 'å', 'ā':
		return append(b, 'a')
	case 'ç', 'č', 'ć':
		return append(b, 'c')
	case 'è', 'é', 'ê', 'ë', 'ē', 'ě':
		return append(b, 'e')
	case 'ì', 'í', 'î', 'ï', 'ī':
		return append(b, 'i')
	case 'ñ', 'ń':
		return append(b, 'n')
	case 'ò', 'ó', 'ô', 'õ', 'ø', 'ō':
		return append(b, 'o')
	case 'ù', 'ú', 'û', 'ū', 'ů':
		return append(b, 'u')
	case 'ý', 'ÿ':
		return append(b, 'y')
	case 'š', 'ś':
		return append(b, 's')
	case 'ž', 'ź', 'ż':
		return append(b, 'z')
	case 'đ':
		return append(b, 'd')
	}
	if unicode.Is(unicode.Mn, r) {
		return b // combining marks on letters: "i\u0307" reads as "i"
	}
	return utf8.AppendRune(b, r)
}

// normIsAlphabetic reports letters of the Latin, Cyrillic and Greek scripts,
// which never need zero-width characters between them (unlike, say, Khmer).
func normIsAlphabetic(r rune) bool {
	return unicode.In(r, unicode.Latin, unicode.Cyrillic, unicode.Greek)
}

// normIsLatin reports letters of the Latin script (accented ones included).
func normIsLatin(r rune) bool { return unicode.Is(unicode.Latin, r) }

// normFoldWidth maps full-width ASCII, the ideographic space, circled letters
// and the styled letters of the Mathematical Alphanumeric Symbols block to
// plain ASCII; other runes are returned unchanged.
func normFoldWidth(r rune) rune {
	switch {
	case r < 0x2000:
		return r
	case r >= 0xFF01 && r <= 0xFF5E:
		return r - 0xFEE0
	case r == 0x3000:
		return ' '
	case r >= 0x24B6 && r <= 0x24CF:
		return 'A' + (r - 0x24B6)
	case r >= 0x24D0 && r <= 0x24E9:
		return 'a' + (r - 0x24D0)
	case r >= 0x1D400 && r <= 0x1D6A3:
		i := (r - 0x1D400) % 52
		if i < 26 {
			return 'A' + i
		}
		return 'a' + (i - 26)
	case r >= 0x1D7CE && r <= 0x1D7FF:
		return '0' + (r-0x1D7CE)%10
	}
	return r
}

// normConfusable maps a lower-case Cyrillic, Greek or Latin small-capital
// look-alike to the ASCII letter it imitates.
func normConfusable(r rune) (rune, bool) {
	switch r {
	case 'а', 'α', 'ɑ', 'ᴀ':
		return 'a', true
	case 'в', 'β', 'ʙ':
		return 'b', true
	case 'с', 'ϲ', 'ᴄ':
		return 'c', true
	case 'ԁ', 'ᴅ':
		return 'd', true
	case 'е', 'ё', 'ε', 'ᴇ':
		return 'e', true
	case 'ɡ', 'ɢ':
		return 'g', true
	case 'һ', 'н', 'ʜ':
		return 'h', true
	case 'і', 'ї', 'ι', 'ı', 'ɪ':
		return 'i', true
	case 'ј', 'ᴊ':
		return 'j', true
	case 'к', 'κ', 'ᴋ':
		return 'k', true
	case 'ʟ':
		return 'l', true
	case 'м', 'ᴍ':
		return 'm', true
	case 'η', 'ɴ':
		return 'n', true
	case 'о', 'ο', 'ᴏ':
		return 'o', true
	case 'р', 'ρ', 'ᴘ':
		return 'p', true
	case 'ԛ':
		return 'q', true
	case 'ʀ':
		return 'r', true
	case 'ѕ', 'ꜱ':
		return 's', true
	case 'т', 'τ', 'ᴛ':
		return 't', true
	case 'υ', 'ᴜ':
		return 'u', true
	case 'ν', 'ᴠ':
		return 'v', true
	case 'ԝ', 'ω', 'ᴡ':
		return 'w', true
	case 'х', 'χ':
		return 'x', true
	case 'у', 'γ', 'ʏ':
		return 'y', true
	case 'ᴢ':
		return 'z', true
	}
	return r, false
}

// normIsLeet reports digits and symbols that leetspeak uses for letters.
func normIsLeet(r rune) bool {
	switch r {
	case '0', '1', '3', '4', '5', '7', '8', '9', '@', '$':
		return true
	}
	return false
}

// normLeet reads a leetspeak digit or symbol as the letter it stands for.
func normLeet(r rune) rune {
	switch r {
	case '0':
		return 'o'
	case '1':
		return 'i'
	case '3':
		return 'e'
	case '4', '@':
		return 'a'
	case '5', '$':
		return 's'
	case '7':
		return 't'
	case '8':
		return 'b'
	case '9':
		return 'g'
	}
	return r
}
