package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
)

const toolCurrentTimeDescription = "Returns the current date and time as RFC 3339 followed by the time zone " +
	"and the weekday, e.g. 2026-11-29T15:04:05+01:00 (Europe/Berlin, Sunday). " +
	"Use it whenever the user asks for the time, the date or the day of the week. " +
	"timezone is optional: an IANA name such as Europe/Berlin or America/New_York " +
	"(common city names like Tokyo are understood too); without it the answer is in UTC."

const toolCurrentTimeSchema = `{"type":"object","properties":{"timezone":{"type":"string",` +
	`"description":"IANA time zone name, e.g. \"Europe/Berlin\" or \"Asia/Tokyo\". Defaults to UTC."}},` +
	`"additionalProperties":false}`

// toolCurrentTime returns the current_time tool reading the clock now.
func toolCurrentTime(now func() time.Time) Tool {
	return Tool{
		Name:        "current_time",
		Description: toolCurrentTimeDescription,
		InputSchema: json.RawMessage(toolCurrentTimeSchema),
		Run: func(ctx context.Context, input json.RawMessage) (string, error) {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			if len(bytes.TrimSpace(input)) == 0 {
				input = json.RawMessage(`{}`)
			}
			fields, err := toolObjectFields(input, "timezone")
			if err != nil {
				return "", err
			}
			name, _, err := toolStringField(fields, "timezone")
			if err != nil {
				return "", err
			}
			loc, err := toolResolveZone(name)
			if err != nil {
				return "", err
			}
			t := now().In(loc)
			return fmt.Sprintf("%s (%s, %s)", t.Format(time.RFC3339), loc.String(), t.Weekday()), nil
		},
	}
}

// toolResolveZone maps a zone name to a location: "" is UTC; IANA names are
// accepted as written or with their case normalised ("europe/berlin"), and
// a few major city names ("Tokyo", "new york") are understood. The host's
// "Local" zone is never exposed.
func toolResolveZone(name string) (*time.Location, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return time.UTC, nil
	}
	if loc, ok := toolLoadZone(name); ok {
		return loc, nil
	}
	if zone, ok := toolCityZone(toolNormalizeWords(name)); ok {
		if loc, ok := toolLoadZone(zone); ok {
			return loc, nil
		}
	}
	return nil, fmt.Errorf("unknown time zone %q", name)
}

// toolLoadZone loads an IANA zone by its exact or case-normalised name. It
// refuses "Local", over-long names and characters no IANA name uses.
func toolLoadZone(name string) (*time.Location, bool) {
	if len(name) > 64 || strings.EqualFold(name, "local") {
		return nil, false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '/' || c == '_' || c == '-' || c == '+'
		if !ok {
			return nil, false
		}
	}
	for _, candidate := range []string{name, toolCanonicalZoneCase(name)} {
		if loc, err := time.LoadLocation(candidate); err == nil {
			return loc, true
		}
	}
	return nil, false
}

// toolCanonicalZoneCase capitalises each word of a zone name the way the IANA
// database spells most names: "america/new_york" → "America/New_York"; names
// of three letters or fewer without a slash ("utc", "gmt") are upper-cased.
func toolCanonicalZoneCase(name string) string {
	if len(name) <= 3 && !strings.Contains(name, "/") {
		return strings.ToUpper(name)
	}
	b := []byte(strings.ToLower(name))
	for i := range b {
		if i == 0 || b[i-1] == '/' || b[i-1] == '_' || b[i-1] == '-' {
			if b[i] >= 'a' && b[i] <= 'z' {
				b[i] -= 'a' - 'A'
			}
		}
	}
	return string(b)
}

// toolPlaceZone is one entry of the table of well-known places.
type toolPlaceZone struct {
	place string // normalised words, see toolNormalizeWords
	zone  string // IANA name
}

// toolCityZones lists major cities (and a few countries with a single zone)
// by their normalised name.
// toolCityZoneTable is built once; wantsTime reads it for every message.
var toolCityZoneTable = toolCityZones()

func toolCityZones() []toolPlaceZone {
	return []toolPlaceZone{
		{"utc", "UTC"}, {"gmt", "UTC"}, {"zulu", "UTC"},
		{"tokyo", "Asia/Tokyo"}, {"japan", "Asia/Tokyo"}, {"osaka", "Asia/Tokyo"},
		{"london", "Europe/London"}, {"uk", "Europe/London"}, {"dublin", "Europe/Dublin"},
		{"new york", "America/New_York"}, {"new york city", "America/New_York"}, {"nyc", "America/New_York"},
		{"boston", "America/New_York"}, {"washington dc", "America/New_York"}, {"miami", "America/New_York"},
		{"toronto", "America/Toronto"}, {"chicago", "America/Chicago"}, {"denver", "America/Denver"},
		{"los angeles", "America/Los_Angeles"}, {"san francisco", "America/Los_Angeles"},
		{"seattle", "America/Los_Angeles"}, {"vancouver", "America/Vancouver"},
		{"mexico city", "America/Mexico_City"}, {"sao paulo", "America/Sao_Paulo"},
		{"buenos aires", "America/Argentina/Buenos_Aires"}, {"honolulu", "Pacific/Honolulu"},
		{"paris", "Europe/Paris"}, {"france", "Europe/Paris"}, {"berlin", "Europe/Berlin"},
		{"germany", "Europe/Berlin"}, {"munich", "Europe/Berlin"}, {"madrid", "Europe/Madrid"},
		{"rome", "Europe/Rome"}, {"amsterdam", "Europe/Amsterdam"}, {"brussels", "Europe/Brussels"},
		{"zurich", "Europe/Zurich"}, {"vienna", "Europe/Vienna"}, {"stockholm", "Europe/Stockholm"},
		{"oslo", "Europe/Oslo"}, {"copenhagen", "Europe/Copenhagen"}, {"helsinki", "Europe/Helsinki"},
		{"warsaw", "Europe/Warsaw"}, {"prague", "Europe/Prague"}, {"lisbon", "Europe/Lisbon"},
		{"athens", "Europe/Athens"}, {"istanbul", "Europe/Istanbul"}, {"moscow", "Europe/Moscow"},
		{"kyiv", "Europe/Kyiv"}, {"cairo", "Africa/Cairo"}, {"lagos", "Africa/Lagos"},
		{"nairobi", "Africa/Nairobi"}, {"johannesburg", "Africa/Johannesburg"},
		{"dubai", "Asia/Dubai"}, {"mumbai", "Asia/Kolkata"}, {"delhi", "Asia/Kolkata"},
		{"new delhi", "Asia/Kolkata"}, {"bangalore", "Asia/Kolkata"}, {"india", "Asia/Kolkata"},
		{"singapore", "Asia/Singapore"}, {"hong kong", "Asia/Hong_Kong"}, {"beijing", "Asia/Shanghai"},
		{"shanghai", "Asia/Shanghai"}, {"china", "Asia/Shanghai"}, {"seoul", "Asia/Seoul"},
		{"bangkok", "Asia/Bangkok"}, {"jakarta", "Asia/Jakarta"}, {"manila", "Asia/Manila"},
		{"sydney", "Australia/Sydney"}, {"melbourne", "Australia/Melbourne"},
		{"auckland", "Pacific/Auckland"},
	}
}

// toolCityZone returns the zone of a place given as normalised words.
func toolCityZone(place string) (string, bool) {
	for _, c := range toolCityZoneTable {
		if c.place == place {
			return c.zone, true
		}
	}
	return "", false
}

// toolNormalizeWords lower-cases s, drops apostrophes ("what's" → "whats"),
// turns every other run of non-alphanumeric characters into one space and
// trims the result.
func toolNormalizeWords(s string) string {
	if out, ok := toolNormalizeASCII(s); ok {
		return out
	}
	return toolNormalizeUnicode(s)
}

// toolNormalizeASCII is toolNormalizeWords for ASCII text, byte by byte;
// ok is false when s holds anything else.
func toolNormalizeASCII(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	pendingSpace := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 0x80:
			return "", false
		case c == '\'':
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			if pendingSpace && len(b) > 0 {
				b = append(b, ' ')
			}
			pendingSpace = false
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		default:
			pendingSpace = true
		}
	}
	return string(b), true
}

// toolNormalizeUnicode is toolNormalizeWords for any text.
func toolNormalizeUnicode(s string) string {
	var b strings.Builder
	pendingSpace := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '\'' || r == '’':
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if pendingSpace && b.Len() > 0 {
				b.WriteByte(' ')
			}
			pendingSpace = false
			b.WriteRune(r)
		default:
			pendingSpace = true
		}
	}
	return b.String()
}

// toolTimePhraseTable holds toolTimePhrases padded with a space on each side,
// built once: wantsTime reads it for every message.
var toolTimePhraseTable = toolPadWords(toolTimePhrases())

// toolCityPadded holds the places of toolCityZoneTable padded the same way.
var toolCityPadded = func() []string {
	out := make([]string, len(toolCityZoneTable))
	for i, c := range toolCityZoneTable {
		out[i] = " " + c.place + " "
	}
	return out
}()

// toolPadWords returns each phrase with a space before and after it.
func toolPadWords(phrases []string) []string {
	out := make([]string, len(phrases))
	for i, p := range phrases {
		out[i] = " " + p + " "
	}
	return out
}

// toolTimePhrases are normalised phrases that ask for the current time or
// date when followed by one of toolTimeFollowers (or nothing).
func toolTimePhrases() []string {
	return []string{
		"what time is it", "what time it is", "time is it", "what is the time", "whats the time",
		"current time", "time right now", "the time now", "local time", "tell me the time",
		"know the time", "got the time", "current date and time", "date and time",
		"whats the date", "what is the date", "what date is it", "what date is today", "todays date",
		"date today", "current date", "what day is it", "what day is today", "which day is it",
		"what is today", "whats today", "what year is it", "what month is it", "what day of the week is it",
	}
}

// toolTimeFollower reports whether word may follow a time phrase: "what's the
// time in Tokyo" asks for the time, "what's the time complexity" does not.
func toolTimeFollower(word string) bool {
	switch word {
	case "", "in", "now", "right", "please", "today", "there", "here", "at", "for", "currently", "and", "is", "it":
		return true
	}
	return false
}

// wantsTime reports whether a message asks for the current time or date
// ("what time is it", "what's the date today", "current time in Tokyo") and
// returns the IANA zone it names, if any: a literal zone ("Europe/Berlin",
// any case) or a major city or UTC/GMT from a small table ("Tokyo" →
// "Asia/Tokyo"). zone is "" when ok is false or no zone is recognisable.
// Safe for concurrent use.
func wantsTime(text string) (zone string, ok bool) {
	norm := toolNormalizeWords(text)
	padded := " " + norm + " "
	ok = toolHasTimePhrase(padded)
	if !ok && !strings.HasPrefix(padded, " time in ") && !strings.HasPrefix(padded, " the time in ") {
		return "", false
	}
	zone = toolZoneInText(text, padded)
	if !ok && zone == "" {
		// A bare "time in Tokyo?" or "the time in Paris" needs a place.
		return "", false
	}
	return zone, true
}

// toolTimeWords are words of which every time phrase holds at least one:
// a message with none of them is not asking for the time.
var toolTimeWords = toolPadWords([]string{"time", "date", "day", "today", "todays", "year", "month"})

// toolHasTimePhrase reports whether padded (normalised words with a space
// before and after) holds a time phrase followed by a word that keeps it a
// question about the time.
func toolHasTimePhrase(padded string) bool {
	if !slices.ContainsFunc(toolTimeWords, func(w string) bool { return strings.Contains(padded, w) }) {
		return false
	}
	for _, p := range toolTimePhraseTable {
		rest := padded
		for {
			at := strings.Index(rest, p)
			if at < 0 {
				break
			}
			rest = rest[at+len(p)-1:]
			next, _, _ := strings.Cut(strings.TrimPrefix(rest, " "), " ")
			if toolTimeFollower(next) {
				return true
			}
		}
	}
	return false
}

// toolZoneInText finds a zone in a message: first a literal IANA name among
// its whitespace-separated fields, then the longest place from the city table
// among its normalised words (padded with spaces).
func toolZoneInText(text, padded string) string {
	for _, field := range strings.Fields(text) {
		field = strings.Trim(field, "?!.,;:\"'()[]")
		if !strings.Contains(field, "/") {
			continue
		}
		if loc, ok := toolLoadZone(field); ok {
			return loc.String()
		}
	}
	best, zone := "", ""
	for i, c := range toolCityZoneTable {
		if len(c.place) > len(best) && strings.Contains(padded, toolCityPadded[i]) {
			best, zone = c.place, c.zone
		}
	}
	return zone
}
