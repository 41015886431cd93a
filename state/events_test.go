package state

import (
	"context"
	"testing"
	"time"
)

// TestEventQueue: events survive a close and reopen until marked done.
func TestEventQueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, path := openNew(t)
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var ids []int64
	for _, id := range []string{"rs_1", "rs_2", "rs_1"} {
		n, err := db.Enqueue(ctx, Event{Property: "hotel", Event: "room_stay.updated", ObjectID: id, ReceivedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, n)
	}
	db.Close()
	db2 := mustOpen(t, path, Options{})
	defer db2.Close()
	pending, err := db2.PendingEvents(ctx)
	if err != nil || len(pending) != 3 || pending[1].ObjectID != "rs_2" || !pending[0].ReceivedAt.Equal(at) {
		t.Fatalf("pending %+v, %v", pending, err)
	}
	if err := db2.EventsDone(ctx, ids[:2], at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if pending, _ = db2.PendingEvents(ctx); len(pending) != 1 || pending[0].ID != ids[2] {
		t.Errorf("after two done: %+v", pending)
	}
}
