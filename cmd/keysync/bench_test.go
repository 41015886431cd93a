package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestBenchQuick runs `keysync bench --quick` on a tiny hotel: it must
// finish its nights and print both tables and a verdict per target. It
// asserts no timing and no verdict; the numbers are the README's job.
func TestBenchQuick(t *testing.T) {
	t.Parallel()
	got := runBench(t, "--quick", "--rooms", "12", "--nights", "2", "--plan-stays", "2000")
	wantAll(t, "output", got,
		"Planning 2,000 stays",
		"Workload",
		"NIGHT  READS  (LOOKUPS)  WRITES  REQUESTS  MUTATIONS  FLOOR  RATIO  PER-MUTATION  FEWER  PEAK/1s  AFTER BURST",
		"Targets",
	)
	for _, night := range []string{"0", "1", "2", "TOTAL"} {
		if n := len(regexp.MustCompile(`(?m)^ *`+night+`  `).FindAllString(got, -1)); n != 2 {
			t.Errorf("night %s has %d rows, want one in each table\n%s", night, n, got)
		}
	}
	wantVerdicts(t, got,
		"requests / floor ≤ 1.05",
		"≥ 20× fewer requests than one mutation a request",
		"≤ 5 requests in any 1 s after the first burst of 10",
		"planning 100,000 stays in < 0.35 s",
		"planning 100,000 stays in < 100 MB peak heap",
	)
}

// runBench runs keysync bench with args and an empty environment, and
// returns what it printed; the bench must succeed.
func runBench(t *testing.T, args ...string) string {
	t.Helper()
	return mustRunText(t, ExitOK, func(string) string { return "" }, append([]string{"bench"}, args...)...).stdout
}

// wantVerdicts fails the test for each target the bench output got gives
// no verdict (PASS or FAIL, either will do) on a line of its own.
func wantVerdicts(t *testing.T, got string, targets ...string) {
	t.Helper()
	for _, target := range targets {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + ` +(PASS|FAIL) `).MatchString(got) {
			t.Errorf("no verdict for target %q\n%s", target, got)
		}
	}
}

// TestBenchPortfolioQuick runs the portfolio scenario in quick mode (3
// properties of 12 rooms on their own tokens, 3 of 8 on one token beside
// one of 24): it must print the portfolio table beside the single-property
// ones and a verdict per portfolio target, and write the CPU profile
// asked for. Like TestBenchQuick, it asserts no timing and no verdict.
func TestBenchPortfolioQuick(t *testing.T) {
	t.Parallel()
	profile := filepath.Join(t.TempDir(), "cpu.pprof")
	got := runBench(t, "--quick", "--rooms", "4", "--nights", "0", "--plan-stays", "0", "--cpuprofile", profile)
	if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
		t.Errorf("--cpuprofile %s wrote no profile (%v)", profile, err)
	}
	wantAll(t, "output", got, "Requests (keysync's", "Portfolio (")
	if !regexp.MustCompile(`SCENARIO +NIGHT +TOKENS +READS +WRITES +REQUESTS +PEAK/1s PER TOKEN +429s +RUN TIME +CPU +SLOWEST ALONE`).MatchString(got) {
		t.Errorf("no portfolio table header\n%s", got)
	}
	for _, scenario := range []string{"3 × 12 rooms, own tokens", "3 × 12 rooms, own tokens, each alone", "3 × 8 rooms, one token", "1 × 24 rooms"} {
		if n := len(regexp.MustCompile(`(?m)^ *`+regexp.QuoteMeta(scenario)+`  +[01]  `).FindAllString(got, -1)); n != 2 {
			t.Errorf("scenario %q has %d rows, want one a night (0 and 1)\n%s", scenario, n, got)
		}
	}
	wantVerdicts(t, got,
		"3 properties on own tokens take ≤ 1.25× the slowest alone",
		"3 × 8 rooms on one token ≤ 1.05× the requests of 1 × 24",
	)
}
