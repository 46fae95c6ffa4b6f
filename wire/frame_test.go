package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strings"
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
	justOver := binary.BigEndian.AppendUint32([]byte{byte(TypeOffer)}, MaxBodySize+1)
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
		{"one past the limit", justOver, ErrFrameTooLarge},
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

// TestPayloadSteps reads a payload in steps, then the frame after it, and
// a truncated payload up to where it ends.
func TestPayloadSteps(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789"), 1000)
	var buf bytes.Buffer
	_ = WriteData(&buf, &Data{Hash: testHash}, payload)
	_ = WriteMsg(&buf, &Start{ReqID: 7})
	whole := buf.Bytes()

	r := NewReader(bytes.NewReader(whole))
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	var filled []int
	if err := r.PayloadSteps(got, 4096, func(n int) { filled = append(filled, n) }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, payload) || fmt.Sprint(filled) != "[4096 8192 10000]" {
		t.Fatalf("payload equal %v, filled %v", bytes.Equal(got, payload), filled)
	}
	if m, err := r.ReadMsg(); err != nil || m.(*Start).ReqID != 7 {
		t.Fatalf("after the payload: %v %v", m, err)
	}

	r = NewReader(bytes.NewReader(whole[:len(whole)-len(payload)+5000]))
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	filled = nil
	err := r.PayloadSteps(got, 4096, func(n int) { filled = append(filled, n) })
	if !errors.Is(err, io.ErrUnexpectedEOF) || fmt.Sprint(filled) != "[4096]" {
		t.Fatalf("truncated: %v, filled %v", err, filled)
	}
	if err := r.PayloadSteps(make([]byte, 1), 1, func(int) {}); err == nil {
		t.Fatal("a buffer of the wrong size was taken")
	}
}

var errStalled = errors.New("stalled")

// stallReader yields b in chunks of at most step bytes, then fails with
// errStalled: a peer that announced a body and stopped sending.
type stallReader struct {
	b    []byte
	step int
}

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, errStalled
	}
	n := copy(p[:min(len(p), s.step)], s.b)
	s.b = s.b[n:]
	return n, nil
}

// A header promising MaxBodySize must not cost MaxBodySize until that much
// has arrived: memory follows the bytes actually received.
func TestReadMsgBodyGrowsWithInput(t *testing.T) {
	const slack = 16 << 10
	hdr := binary.BigEndian.AppendUint32([]byte{byte(TypeOffer)}, MaxBodySize)
	for _, sent := range []int{0, 10, 5000, 100 << 10} {
		in := append(append([]byte(nil), hdr...), make([]byte, sent)...)
		r := NewReader(&stallReader{b: in, step: 1000})
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := r.ReadMsg()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, errStalled) {
			t.Fatalf("sent %d: got %v, want %v", sent, err, errStalled)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("sent %d of %d body bytes: allocated %d, buffer cap %d", sent, MaxBodySize, alloc, cap(r.body))
		// Live: one buffer at most twice what arrived. Total: the doubling
		// steps sum to under twice the last one.
		if c := cap(r.body); c > 2*sent+slack {
			t.Errorf("sent %d: body buffer cap %d", sent, c)
		}
		if alloc > uint64(4*sent+slack) {
			t.Errorf("sent %d: allocated %d bytes", sent, alloc)
		}
	}
}

// maxOffer returns an Offer whose body is exactly MaxBodySize bytes.
func maxOffer(t *testing.T) *Offer {
	t.Helper()
	o := &Offer{ReqID: 5, Entries: []Entry{{Path: strings.Repeat("p", 1<<17), Size: 1}}}
	fixed := len(mustBody(t, o)) - len(o.Entries[0].Path)
	o.Entries[0].Path = strings.Repeat("p", MaxBodySize-fixed)
	if n := len(mustBody(t, o)); n != MaxBodySize {
		t.Fatalf("offer body %d bytes, want %d", n, MaxBodySize)
	}
	return o
}

// Bodies up to the limit still decode whatever the read sizes, and a
// stream of large frames reuses one buffer once it has grown.
func TestReadMsgLargeBodies(t *testing.T) {
	var entries []Entry
	for i := range 3000 {
		entries = append(entries, Entry{Path: strings.Repeat(string(rune('a'+i%26)), 900), Size: uint64(i), MTime: int64(i)})
	}
	parts := SplitOffer(9, 1<<20, entries)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	if n := len(mustBody(t, parts[0])); n < MaxBodySize*9/10 {
		t.Fatalf("first part only %d bytes", n)
	}
	msgs := []Message{maxOffer(t), &Start{ReqID: 1}}
	for _, p := range parts {
		msgs = append(msgs, p)
	}
	msgs = append(msgs, &Start{ReqID: 2}, maxOffer(t))
	var in []byte
	for _, m := range msgs {
		b, err := AppendFrame(in, m)
		if err != nil {
			t.Fatal(err)
		}
		in = b
	}
	r := NewReader(&stallReader{b: in, step: 1000})
	var buf *byte
	for i, want := range msgs {
		got, err := r.ReadMsg()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("frame %d: %v round trip differs", i, want.Type())
		}
		if i == 0 {
			buf = &r.body[:1][0]
		} else if &r.body[:1][0] != buf {
			t.Fatalf("frame %d: body buffer reallocated", i)
		}
	}
	if _, err := r.ReadMsg(); !errors.Is(err, errStalled) {
		t.Fatalf("after last frame: %v", err)
	}
}

// A large body cut anywhere, including at the buffer's growth steps, is a
// truncated frame.
func TestReadMsgLargeBodyTruncated(t *testing.T) {
	full := mustFrame(t, maxOffer(t))
	if _, err := NewReader(bytes.NewReader(full)).ReadMsg(); err != nil {
		t.Fatal(err)
	}
	for _, body := range []int{0, 1, 4095, 4096, 4097, 8192, 65536, 1 << 19, MaxBodySize - 1} {
		_, err := NewReader(bytes.NewReader(full[:HeaderSize+body])).ReadMsg()
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("body cut to %d bytes: got %v", body, err)
		}
	}
}

// Grow is asked before the body buffer grows, and its error stops the
// read before the memory is taken.
func TestReadMsgGrowHook(t *testing.T) {
	full := mustFrame(t, maxOffer(t))
	r := NewReader(bytes.NewReader(full))
	var asked int
	errBudget := errors.New("over budget")
	r.Grow = func(n int) error {
		if asked+n > 256<<10 {
			return errBudget
		}
		asked += n
		return nil
	}
	if _, err := r.ReadMsg(); !errors.Is(err, errBudget) {
		t.Fatalf("got %v, want the hook's error", err)
	}
	if cap(r.body) > 256<<10 || asked != cap(r.body) {
		t.Fatalf("buffer %d bytes, %d asked for", cap(r.body), asked)
	}
	// Without a limit the whole frame reads, every byte asked for.
	r, asked = NewReader(bytes.NewReader(full)), 0
	r.Grow = func(n int) error { asked += n; return nil }
	if _, err := r.ReadMsg(); err != nil {
		t.Fatal(err)
	}
	if asked != cap(r.body) || asked < MaxBodySize {
		t.Fatalf("asked for %d bytes, buffer %d", asked, cap(r.body))
	}
}
