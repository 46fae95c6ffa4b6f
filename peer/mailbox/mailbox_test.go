package mailbox

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

func TestOutboxOrder(t *testing.T) {
	o, err := OpenOutbox(filepath.Join(t.TempDir(), "outbox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for _, it := range []Item{{Peer: "a", Priority: 1}, {Peer: "a", Priority: 5}, {Peer: "a", Priority: 3}, {Peer: "b"}, {Peer: "a", Priority: 5}} {
		if _, err := o.Add(&it); err != nil {
			t.Fatal(err)
		}
	}
	var order []uint64
	for range 5 {
		due, err := o.Due(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range due {
			order = append(order, it.ID)
			if _, err := o.Update(it.ID, func(it *Item) error { it.State = Delivered; return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	// a: 5 (id 2), then 5 (id 5), then 3, then 1; b's one goes in the
	// first round beside a's first.
	if got, want := order, []uint64{2, 4, 5, 3, 1}; !equal(got, want) {
		t.Fatalf("delivered %v, want %v", got, want)
	}
}

func TestOutboxInFlightAndRecover(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o, err := OpenOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := o.Add(&Item{Peer: "a"})
	_, _ = o.Add(&Item{Peer: "a", Priority: 9})
	if _, err := o.Update(id, func(it *Item) error { it.State = Sending; return nil }); err != nil {
		t.Fatal(err)
	}
	if due, _ := o.Due(time.Now()); len(due) != 0 {
		t.Fatalf("a peer with an item in flight got another: %v", due)
	}
	if _, err := OpenOutbox(path); err == nil {
		t.Fatal("a second process opened the outbox")
	}
	o.Close()
	o, err = OpenOutbox(path)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Recover(); err != nil {
		t.Fatal(err)
	}
	due, _ := o.Due(time.Now())
	if len(due) != 1 || due[0].Priority != 9 {
		t.Fatalf("after recovery: %v", due)
	}
	if _, err := o.Update(99, func(*Item) error { return nil }); err == nil {
		t.Fatal("updated a missing item")
	}
}

func TestInboxKeyAndFilter(t *testing.T) {
	in := Inbox{Path: filepath.Join(t.TempDir(), "inbox.db")}
	if got, err := in.List(Filter{}); err != nil || len(got) != 0 {
		t.Fatalf("empty inbox: %v %v", got, err)
	}
	t0 := time.Now()
	for _, e := range []Entry{
		{Peer: "a", Tags: []string{"x"}, Key: "a/1", Time: t0},
		{Peer: "b", Time: t0.Add(time.Second)},
		{Peer: "a", Tags: []string{"x", "y"}, Note: "again", Key: "a/1", Time: t0.Add(2 * time.Second)},
	} {
		if err := in.Add(&e); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := in.List(Filter{})
	if len(all) != 2 {
		t.Fatalf("%d entries, want 2: a repeated key replaces its entry", len(all))
	}
	if got, _ := in.List(Filter{Tag: "y"}); len(got) != 1 || got[0].Note != "again" {
		t.Fatalf("by tag: %+v", got)
	}
	if got, _ := in.List(Filter{Peer: "b"}); len(got) != 1 {
		t.Fatalf("by peer: %+v", got)
	}
	if got, _ := in.List(Filter{Since: t0.Add(1500 * time.Millisecond)}); len(got) != 1 || got[0].Peer != "a" {
		t.Fatalf("by time: %+v", got)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The records are persisted: their JSON is golden, so that a change of
// field names cannot silently orphan what an older agent stored.
func TestRecordsGolden(t *testing.T) {
	at := time.Date(2026, 12, 6, 5, 0, 0, 0, time.UTC)
	it := Item{ID: 7, Peer: "12D3KooWx", Paths: []string{"/a/b.txt"}, Priority: 5, Tags: []string{"t"}, Note: "n",
		Announce: "notify", Snapshot: "/h/outbox/item-1", Stamps: []Stamp{{Path: "/a/b.txt", Size: 3, MTime: 9}},
		State: Queued, Attempts: 2, Error: "e", Bytes: 3, Sent: 1, Created: at, Updated: at, NextTry: at}
	en := Entry{ID: 3, Time: at, Peer: "12D3KooWy", Via: "agent", Dir: "/in", Files: []InFile{{Name: "b.txt", Size: 3, Root: "ab"}},
		FileCount: 1, Bytes: 3, Tags: []string{"t"}, Note: "n", Key: "not stored"}
	for _, c := range []struct {
		v    any
		want string
	}{
		{it, `{"id":7,"peer":"12D3KooWx","paths":["/a/b.txt"],"priority":5,"tags":["t"],"note":"n","announce":"notify","snapshot":"/h/outbox/item-1","stamps":[{"path":"/a/b.txt","size":3,"mtime":9}],"state":"queued","attempts":2,"error":"e","bytes":3,"sent":1,"created":"2026-12-06T05:00:00Z","updated":"2026-12-06T05:00:00Z","next_try":"2026-12-06T05:00:00Z"}`},
		{en, `{"id":3,"time":"2026-12-06T05:00:00Z","peer":"12D3KooWy","via":"agent","dir":"/in","files":[{"name":"b.txt","size":3,"root":"ab"}],"file_count":1,"bytes":3,"tags":["t"],"note":"n"}`},
	} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("got  %s\nwant %s", b, c.want)
		}
	}
}
