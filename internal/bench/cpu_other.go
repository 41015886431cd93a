//go:build !unix

package bench

import "time"

// cpuTime is not measured here: the portfolio's CPU column shows 0.
func cpuTime() time.Duration { return 0 }
