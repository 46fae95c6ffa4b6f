package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"reflect"
	"testing"
)

var testHash = func() []byte {
	h := make([]byte, HashSize)
	for i := range h {
		h[i] = byte(i)
	}
	return h
}()

// checkGolden asserts that m encodes to the golden frame, that the golden
// frame decodes back to m, and that every truncation of it fails cleanly.
func checkGolden(t *testing.T, m Message, golden string) {
	t.Helper()
	want, err := hex.DecodeString(golden)
	if err != nil {
		t.Fatal(err)
	}
	got, err := AppendFrame(nil, m)
	if err != nil {
		t.Fatalf("encode: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode %v:\n got %x\nwant %x", m.Type(), got, want)
	}
	back, err := NewReader(bytes.NewReader(want)).ReadMsg()
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", back, m)
	}
	for n := 0; n < len(want); n++ {
		_, err := NewReader(bytes.NewReader(want[:n])).ReadMsg()
		wantErr := io.ErrUnexpectedEOF
		if n == 0 {
			wantErr = io.EOF
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("truncated to %d bytes: got %v, want %v", n, err, wantErr)
		}
	}
}

func frame(t Type, body []byte) []byte {
	b := []byte{byte(t)}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func TestReadMsgRejects(t *testing.T) {
	huge := []byte{byte(TypeOffer), 0xff, 0xff, 0xff, 0xff}
	nested := bytes.Repeat([]byte{0x81}, 100) // arrays nested 100 deep
	nested = append(nested, 0x00)
	indefinite, _ := hex.DecodeString("bf0107ff") // {_ 1: 7}
	tagged, _ := hex.DecodeString("a101c11a00000007")
	dupKey, _ := hex.DecodeString("a201070108")
	tests := []struct {
		name  string
		input []byte
		want  error
	}{
		{"oversize length prefix", huge, ErrFrameTooLarge},
		{"unknown type", frame(200, []byte{0xa0}), ErrUnknownType},
		{"deep nesting", frame(TypeGet, append([]byte{0xa1, 0x02}, nested...)), ErrMalformed},
		{"indefinite length", frame(TypeStart, indefinite), ErrMalformed},
		{"tag", frame(TypeStart, tagged), ErrMalformed},
		{"duplicate key", frame(TypeStart, dupKey), ErrMalformed},
		{"wrong field type", frame(TypeStart, []byte{0xa1, 0x01, 0x61, 'x'}), ErrMalformed},
		{"data hash too short", frame(TypeData, []byte{0xa2, 0x03, 0x01, 0x04, 0x41, 0x00}), ErrMalformed},
		{"data too long", mustFrame(t, &Data{Length: MaxChunkSize + 1, Hash: testHash}), ErrFrameTooLarge},
		{"range overflow", mustFrame(t, &Accept{Have: []FileRanges{{Ranges: []Range{{Off: 1 << 63, Len: 1 << 63}}}}}), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.input)).ReadMsg()
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if CodeOf(err) != CodeProtocol {
				t.Fatalf("code %v, want protocol", CodeOf(err))
			}
		})
	}
}

func mustFrame(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := AppendFrame(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestUnknownKeysIgnored(t *testing.T) {
	// {1: 7, 99: "future"} decodes as Start{ReqID: 7}.
	body, _ := hex.DecodeString("a20107186366667574757265")
	m, err := NewReader(bytes.NewReader(frame(TypeStart, body))).ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	if s := m.(*Start); s.ReqID != 7 {
		t.Fatalf("got %+v", s)
	}
}

func TestDataPayload(t *testing.T) {
	var buf bytes.Buffer
	payload := []byte("hello")
	if err := WriteData(&buf, &Data{File: 2, Offset: 10, Hash: testHash}, payload); err != nil {
		t.Fatal(err)
	}
	if err := WriteMsg(&buf, &Start{ReqID: 1}); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	m, err := r.ReadMsg()
	if err != nil {
		t.Fatal(err)
	}
	d := m.(*Data)
	if d.Length != 5 {
		t.Fatalf("length %d", d.Length)
	}
	// Skipping the payload is allowed: the next ReadMsg discards it.
	if m, err = r.ReadMsg(); err != nil || m.(*Start).ReqID != 1 {
		t.Fatalf("after skipped payload: %v %v", m, err)
	}

	buf.Reset()
	_ = WriteData(&buf, &Data{Hash: testHash}, payload)
	r = NewReader(&buf)
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if err := r.Payload(got); err != nil || string(got) != "hello" {
		t.Fatalf("payload %q %v", got, err)
	}
	if err := r.Payload(make([]byte, 1)); err == nil {
		t.Fatal("payload read past the frame")
	}
}

func TestDataPayloadTruncated(t *testing.T) {
	var buf bytes.Buffer
	_ = WriteData(&buf, &Data{Hash: testHash}, []byte("hello"))
	b := buf.Bytes()
	r := NewReader(bytes.NewReader(b[:len(b)-2]))
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	if err := r.Payload(make([]byte, 5)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v", err)
	}
}
