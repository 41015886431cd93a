package state

import (
	"slices"
	"strings"
	"testing"
)

func TestChunks(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []int
	}{
		{0, nil},
		{1, []int{1}},
		{3, []int{2, 1}},
		{7, []int{4, 2, 1}},
		{64, []int{64}},
		{65, []int{64, 1}},
		{100, []int{64, 32, 4}},
		{200, []int{64, 64, 64, 8}},
	} {
		rows := make([]int, tc.n)
		for i := range rows {
			rows[i] = i
		}
		var got []int
		var joined []int
		for c := range chunks(rows) {
			got = append(got, len(c))
			joined = append(joined, c...)
		}
		if !slices.Equal(got, tc.want) || !slices.Equal(joined, rows[:len(joined)]) || len(joined) != tc.n {
			t.Errorf("chunks of %d: lengths %v, want %v (rows in order: %v)", tc.n, got, tc.want, slices.Equal(joined, rows))
		}
	}
}

func TestRowStatement(t *testing.T) {
	s := newRowStatement("INSERT INTO t (a, b) VALUES ", 2, " ON CONFLICT DO NOTHING")
	for _, n := range []int{1, 2, 4, 64} {
		q := s.sql(n)
		if got := strings.Count(q, "(?, ?)"); got != n {
			t.Errorf("statement for %d rows has %d tuples: %s", n, got, q)
		}
		if !strings.HasPrefix(q, "INSERT INTO t (a, b) VALUES (?, ?)") || !strings.HasSuffix(q, "(?, ?) ON CONFLICT DO NOTHING") {
			t.Errorf("statement for %d rows: %s", n, q)
		}
	}
	for _, n := range []int{0, 3, 65, 128} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("a statement of %d rows was given, not refused", n)
				}
			}()
			s.sql(n)
		}()
	}
}
