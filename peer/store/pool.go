package store

import "sync"

// pool bounds the temporary files held open. Files are closed least
// recently used first, and only when no write is in progress on them.
type pool struct {
	mu   sync.Mutex
	max  int
	n    int
	head lruElem // sentinel: head.next is the most recently used
}

type lruElem struct {
	f          *File
	prev, next *lruElem
}

func (p *pool) init() {
	if p.head.next == nil {
		p.head.next, p.head.prev = &p.head, &p.head
	}
}

func (p *pool) unlink(e *lruElem) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (p *pool) pushFront(e *lruElem) {
	e.next, e.prev = p.head.next, &p.head
	p.head.next.prev = e
	p.head.next = e
}

// add registers f, whose descriptor was just opened (with f.fmu held),
// and closes others beyond the bound.
func (p *pool) add(f *File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	if f.lru == nil {
		f.lru = &lruElem{f: f}
		p.pushFront(f.lru)
		p.n++
	}
	for e := p.head.prev; p.n > p.max && e != &p.head; {
		prev := e.prev
		if v := e.f; v != f && v.fmu.TryLock() {
			p.unlink(e)
			v.lru = nil
			p.n--
			v.closeFD()
			v.fmu.Unlock()
		}
		e = prev
	}
}

// touch marks f as just used.
func (p *pool) touch(f *File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := f.lru; e != nil && p.head.next != e {
		p.unlink(e)
		p.pushFront(e)
	}
}

// remove forgets f; its caller closes the descriptor (with f.fmu held).
func (p *pool) remove(f *File) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f.lru != nil {
		p.unlink(f.lru)
		f.lru = nil
		p.n--
	}
}

// closeAll closes every descriptor, waiting for writes in progress.
func (p *pool) closeAll() {
	for {
		p.mu.Lock()
		p.init()
		e := p.head.next
		if e == &p.head {
			p.mu.Unlock()
			return
		}
		p.unlink(e)
		e.f.lru = nil
		p.n--
		p.mu.Unlock()
		e.f.fmu.Lock()
		e.f.closeFD()
		e.f.fmu.Unlock()
	}
}

// open reports how many descriptors are open, for tests.
func (p *pool) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
