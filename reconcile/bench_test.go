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
func BenchmarkCompute100k(b *testing.B) { benchmarkCompute(b, 100_000) }

// BenchmarkCompute1M plans 1,000,000 stays of the same shape (seven-digit
// PINs, see benchplan.Input), to show that planning grows linearly with
// the stays.
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
}
