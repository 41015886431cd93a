package reconcile

// hashSlots is an open-addressing hash table from 64-bit hashes to
// non-negative int32 values, with linear probing, in one flat slice: a
// slot holds the upper half of a hash (its tag) and the value plus one,
// and 0 is an empty slot. A probe reads one cache line, where a Go map
// reads two or three, and warm reads the first slots of many probes at
// once, so that over a table larger than the cache their misses overlap
// instead of coming one after the other.
//
// The table tells hashes apart by their tags only: a probe stops at the
// first slot holding its tag, which may be another hash's, so the caller
// checks what the value names and probes on (seek from the next slot)
// or chains values of the same tag itself.
type hashSlots struct {
	slots []uint64
	mask  uint64
	// warmed keeps what warm read, so that the reads are not dropped.
	warmed uint64
}

// newHashSlots returns an empty table for n values, at most half full.
func newHashSlots(n int) hashSlots {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return hashSlots{slots: make([]uint64, size), mask: uint64(size - 1)}
}

// home is the slot a probe for h starts at.
func (t *hashSlots) home(h uint64) uint64 { return h & t.mask }

// seek returns the first slot, from slot i on, that is empty or holds
// h's tag, and the value it holds: false when it is empty.
func (t *hashSlots) seek(h, i uint64) (slot uint64, v int32, ok bool) {
	tag := h >> 32
	for {
		i &= t.mask
		s := t.slots[i]
		switch {
		case s == 0:
			return i, 0, false
		case s>>32 == tag:
			return i, int32(uint32(s)) - 1, true
		}
		i++
	}
}

// set stores value v for h in slot i, which seek returned for h.
func (t *hashSlots) set(i, h uint64, v int32) {
	t.slots[i] = h>>32<<32 | uint64(uint32(v+1))
}

// warm reads the home slots of hs, so that the probes for them that
// follow find them in the cache.
func (t *hashSlots) warm(hs []uint64) {
	x := t.warmed
	for _, h := range hs {
		x |= t.slots[h&t.mask]
	}
	t.warmed = x
}
