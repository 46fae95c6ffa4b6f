package wire

import "testing"

func TestGetGolden(t *testing.T) {
	checkGolden(t, &Get{ReqID: 9, Paths: []string{"docs/x.pdf"}, Priority: 2}, "0400000012a3010902816a646f63732f782e7064660302")
}
