package reconcile_test

import (
	"testing"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/benchplan"
)

// BenchmarkCompute100k plans 100,000 stays (about 23,000 PIN rooms, half
// the stays already holding a recorded key of ours, some of those moved,
// 1,000 credentials of stays gone; see benchplan.Input) with a fixed PIN
// stream. The target: under 1 s and 200 MB. `keysync bench` plans
// the same input once and reports its peak heap.
//
//	go test -run '^$' -bench Compute100k -benchmem ./reconcile/
func BenchmarkCompute100k(b *testing.B) {
	in := benchplan.Input(100_000, 1)
	b.ReportAllocs()
	var actions int
	for b.Loop() {
		in.Rand = benchplan.Rand(1)
		plan, err := reconcile.Compute(in)
		if err != nil {
			b.Fatal(err)
		}
		actions = len(plan.Actions)
	}
	b.ReportMetric(float64(len(in.Stays)), "stays")
	b.ReportMetric(float64(actions), "actions")
}
