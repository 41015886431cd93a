package reconcile_test

import (
	"testing"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/reconcile/benchplan"
)

// BenchmarkCompute100k plans 100,000 stays (about 23,000 PIN rooms, half
// the stays already holding a recorded key of ours, some of those moved,
// 1,000 credentials of stays gone; see benchplan.Input) with a fixed PIN
// stream. The targets: under 0.35 s and 100 MB of peak heap. `keysync
// bench` plans the same input once and reports its peak heap.
//
//	go test -run '^$' -bench Compute100k -benchmem ./reconcile/
func BenchmarkCompute100k(b *testing.B) { benchmarkCompute(b, 100_000) }

// BenchmarkCompute1M plans 1,000,000 stays of the same shape (seven-digit
// PINs, see benchplan.Input), to show how planning grows with the stays:
// ns/stay and B/stay beside BenchmarkCompute100k's (linear growth keeps
// them level).
//
//	go test -run '^$' -bench Compute1M -benchmem ./reconcile/
func BenchmarkCompute1M(b *testing.B) { benchmarkCompute(b, 1_000_000) }

func benchmarkCompute(b *testing.B, stays int) {
	in := benchplan.Input(stays, 1)
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
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(in.Stays)), "ns/stay")
}
