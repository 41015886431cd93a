package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestBenchQuick runs `keysync bench --quick` on a tiny hotel: it must
// finish its nights and print both tables and a verdict per target. It
// asserts no timing and no verdict; the numbers are the README's job.
func TestBenchQuick(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	args := []string{"bench", "--quick", "--rooms", "12", "--nights", "2", "--plan-stays", "2000"}
	if err := Run(context.Background(), args, &out, &errb, func(string) string { return "" }); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"Planning 2,000 stays",
		"Workload",
		"NIGHT  READS  (LOOKUPS)  WRITES  REQUESTS  MUTATIONS  FLOOR  RATIO  PER-MUTATION  FEWER  PEAK/1s  AFTER BURST",
		"Targets",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n%s", want, got)
		}
	}
	for _, night := range []string{"0", "1", "2", "TOTAL"} {
		if n := len(regexp.MustCompile(`(?m)^ *`+night+`  `).FindAllString(got, -1)); n != 2 {
			t.Errorf("night %s has %d rows, want one in each table\n%s", night, n, got)
		}
	}
	for _, target := range []string{
		"requests / floor ≤ 1.05",
		"≥ 20× fewer requests than one mutation a request",
		"≤ 5 requests in any 1 s after the first burst of 10",
		"planning 100,000 stays in < 0.35 s",
		"planning 100,000 stays in < 100 MB peak heap",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + ` +(PASS|FAIL) `).MatchString(got) {
			t.Errorf("no verdict for target %q\n%s", target, got)
		}
	}
}

// TestBenchPortfolioQuick runs the portfolio scenario in quick mode (3
// properties of 12 rooms on their own tokens, 3 of 8 on one token beside
// one of 24): it must print the portfolio table beside the single-property
// ones and a verdict per portfolio target. Like TestBenchQuick, it asserts
// no timing and no verdict.
func TestBenchPortfolioQuick(t *testing.T) {
	t.Parallel()
	var out, errb bytes.Buffer
	args := []string{"bench", "--quick", "--rooms", "4", "--nights", "0", "--plan-stays", "0"}
	if err := Run(context.Background(), args, &out, &errb, func(string) string { return "" }); err != nil {
		t.Fatalf("bench: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errb.String())
	}
	got := out.String()
	for _, want := range []string{
		"Requests (keysync's",
		"Portfolio (",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n%s", want, got)
		}
	}
	if !regexp.MustCompile(`SCENARIO +NIGHT +TOKENS +READS +WRITES +REQUESTS +PEAK/1s PER TOKEN +429s +RUN TIME +CPU +SLOWEST ALONE`).MatchString(got) {
		t.Errorf("no portfolio table header\n%s", got)
	}
	for _, scenario := range []string{"3 × 12 rooms, own tokens", "3 × 12 rooms, own tokens, each alone", "3 × 8 rooms, one token", "1 × 24 rooms"} {
		if n := len(regexp.MustCompile(`(?m)^ *`+regexp.QuoteMeta(scenario)+`  +[01]  `).FindAllString(got, -1)); n != 2 {
			t.Errorf("scenario %q has %d rows, want one a night (0 and 1)\n%s", scenario, n, got)
		}
	}
	for _, target := range []string{
		"3 properties on own tokens take ≤ 1.25× the slowest alone",
		"3 × 8 rooms on one token ≤ 1.05× the requests of 1 × 24",
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(target) + ` +(PASS|FAIL) `).MatchString(got) {
			t.Errorf("no verdict for target %q\n%s", target, got)
		}
	}
}
