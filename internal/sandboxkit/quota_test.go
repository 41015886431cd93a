package sandboxkit_test

import (
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
)

func TestAdmit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 23, 59, 50, 0, time.UTC)
	q := sandboxkit.NewQuota(sandboxkit.Limits{PerSecond: 5, Burst: 10, DailyCap: 12})
	for i := range 10 {
		if _, ok := q.Admit("a", now); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	r, ok := q.Admit("a", now)
	if ok || r.Daily || r.RetryAfter != 1 {
		t.Errorf("11th at once: %+v %v, want a rate refusal with 1 s", r, ok)
	}
	if _, ok := q.Admit("b", now); !ok {
		t.Error("another caller was refused")
	}
	later := now.Add(time.Second)
	for range 2 {
		if _, ok := q.Admit("a", later); !ok {
			t.Fatal("refill refused")
		}
	}
	r, ok = q.Admit("a", later.Add(time.Second))
	if ok || !r.Daily || r.RetryAfter != 8 {
		t.Errorf("13th of the day: %+v %v, want the daily cap until midnight (8 s)", r, ok)
	}
	if _, ok := q.Admit("a", now.Add(11*time.Second)); !ok {
		t.Error("a new day did not reset the cap")
	}
	if _, ok := sandboxkit.NewQuota(sandboxkit.Limits{}).Admit("x", now); !ok {
		t.Error("no limits refused a request")
	}
}
