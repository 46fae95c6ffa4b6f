package wire

import (
	"testing"
	"time"
)

func TestSleepGolden(t *testing.T) {
	s := &Sleep{Millis: 1500, Reason: "busy"}
	checkGolden(t, s, "070000000ba2011905dc026462757379")
	if s.Duration() != 1500*time.Millisecond {
		t.Fatal(s.Duration())
	}
}

func TestSleepPositionGolden(t *testing.T) {
	checkGolden(t, &Sleep{Millis: 2000, Position: 7}, "0700000007a2011907d00307")
}
