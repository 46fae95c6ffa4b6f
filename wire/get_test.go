package wire

import (
	"bytes"
	"errors"
	"testing"
)

func TestGetGolden(t *testing.T) {
	checkGolden(t, &Get{ReqID: 9, Paths: []string{"docs/x.pdf"}, Priority: 2}, "0400000012a3010902816a646f63732f782e7064660302")
}

func TestGetWithSecretGolden(t *testing.T) {
	checkGolden(t, &Get{ReqID: 9, Priority: -1, Secret: []byte{1, 2, 3}, List: true}, "040000000ea5010902f60320044301020305f5")
}

func TestGetBounds(t *testing.T) {
	for name, g := range map[string]*Get{
		"too many paths":    {ReqID: 1, Paths: make([]string, MaxGetPaths+1)},
		"a too long path":   {ReqID: 1, Paths: []string{string(make([]byte, MaxPathLen+1))}},
		"a too long secret": {ReqID: 1, Secret: make([]byte, 65)},
	} {
		b, err := AppendFrame(nil, g)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewReader(bytes.NewReader(b)).ReadMsg(); !errors.Is(err, ErrMalformed) {
			t.Errorf("a get of %s: %v, want ErrMalformed", name, err)
		}
	}
}
