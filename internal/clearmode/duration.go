package clearmode

import (
	"errors"
	"strconv"
	"time"
)

// parseDuration parses a Prometheus duration, the grammar of
// github.com/prometheus/common/model.ParseDuration (and of PromQL range
// selectors), without linking that package:
//
//	duration = "0" | term { term }
//	term     = digits unit
//	unit     = "y" | "w" | "d" | "h" | "m" | "s" | "ms"
//
// Units appear at most once each, from the longest to the shortest (1h30m,
// not 30m1h or 1h1h); a year is 365 days, a week 7 days, a day 24 hours.
// There is no sign, no fraction and no space; "0" is the only number allowed
// without a unit. The result must fit in a time.Duration (about 292 years).
//
// It fails with an error naming s when s is not a duration, and with
// "duration out of range" when the duration does not fit.
func parseDuration(s string) (time.Duration, error) {
	switch s {
	case "0":
		return 0, nil
	case "":
		return 0, errors.New("empty duration string")
	}
	var dur uint64
	lastPos := 0
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && isDigit(rest[i]) {
			i++
		}
		if i == 0 {
			return 0, invalidDuration(s)
		}
		v, err := strconv.ParseUint(rest[:i], 10, 64)
		if err != nil {
			return 0, invalidDuration(s)
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && !isDigit(rest[j]) {
			j++
		}
		if j == 0 {
			return 0, invalidDuration(s)
		}
		pos, mult := durationUnit(rest[:j])
		if pos == 0 {
			return 0, errors.New("unknown unit " + strconv.Quote(rest[:j]) + " in duration " + strconv.Quote(s))
		}
		rest = rest[j:]
		if pos <= lastPos { // Units go from the longest to the shortest, each once.
			return 0, invalidDuration(s)
		}
		lastPos = pos
		if v > 1<<63/mult {
			return 0, errors.New("duration out of range")
		}
		if dur += v * mult; dur > 1<<63-1 {
			return 0, errors.New("duration out of range")
		}
	}
	return time.Duration(dur), nil
}

// durationUnit returns a unit's rank (1 for the longest, 0 when unknown) and
// its length in nanoseconds.
func durationUnit(u string) (pos int, mult uint64) {
	const day = uint64(24 * time.Hour)
	switch u {
	case "y":
		return 1, 365 * day
	case "w":
		return 2, 7 * day
	case "d":
		return 3, day
	case "h":
		return 4, uint64(time.Hour)
	case "m":
		return 5, uint64(time.Minute)
	case "s":
		return 6, uint64(time.Second)
	case "ms":
		return 7, uint64(time.Millisecond)
	}
	return 0, 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func invalidDuration(s string) error {
	return errors.New("not a valid duration string: " + strconv.Quote(s))
}
