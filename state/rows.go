package state

import (
	"fmt"
	"iter"
	"math/bits"
	"strings"
)

// maxRows is the most rows one multi-row statement carries, 1<<maxShift
// (credentials have 20 values a row, well inside SQLite's limit on a
// statement's parameters).
const (
	maxShift = 6
	maxRows  = 1 << maxShift
)

// rowStatement is a statement that writes rows given as a list of value
// tuples (an INSERT's VALUES, an UPDATE joined to a VALUES list, an IN
// list): head, the tuples, tail. Writing rows a statement at a time, not
// one, is most of what a portfolio's saves cost less; the lengths are
// powers of two, so a file prepares a handful of statements whatever the
// sizes of its saves.
type rowStatement struct {
	byLen [maxShift + 1]string // by the log2 of the number of rows
}

// newRowStatement builds the statements for 1, 2, 4 … maxRows rows of
// values (SQL parameters each, "?" for one).
func newRowStatement(head string, values int, tail string) *rowStatement {
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", values), ", ") + ")"
	s := &rowStatement{}
	for i := range s.byLen {
		s.byLen[i] = head + strings.TrimSuffix(strings.Repeat(tuple+", ", 1<<i), ", ") + tail
	}
	return s
}

// sql is the statement for n rows, a length chunks gives (a power of two,
// at most maxRows; any other is a mistake in the caller).
func (s *rowStatement) sql(n int) string {
	if n < 1 || n > maxRows || n&(n-1) != 0 {
		panic(fmt.Sprintf("state: a statement of %d rows: not a power of two up to %d", n, maxRows))
	}
	return s.byLen[bits.Len(uint(n))-1]
}

// chunks splits rows into runs whose lengths are powers of two, at most
// maxRows, the longest first.
func chunks[T any](rows []T) iter.Seq[[]T] {
	return func(yield func([]T) bool) {
		for len(rows) > 0 {
			n := min(maxRows, 1<<(bits.Len(uint(len(rows)))-1))
			if !yield(rows[:n:n]) {
				return
			}
			rows = rows[n:]
		}
	}
}
