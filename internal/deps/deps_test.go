// Package deps_test holds the rules on what keysync's packages may import:
// the core knows nothing of HTTP or SQL, and the two directions of the
// systems (sources read stays, sinks write credentials) stay apart.
package deps_test

import (
	"os/exec"
	"strings"
	"testing"
)

// goList runs go list with args from the module's root and returns its
// lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// TestCoreHasNoHTTPNorSQL: reconcile, the core, imports neither net/http
// nor database/sql, directly or through another package.
func TestCoreHasNoHTTPNorSQL(t *testing.T) {
	t.Parallel()
	for _, dep := range goList(t, "-deps", "./reconcile") {
		if dep == "net/http" || dep == "database/sql" {
			t.Errorf("reconcile depends on %s", dep)
		}
	}
}

// TestSourcesAndSinksApart: no package under sinks/ depends on one under
// sources/, nor the reverse (what both directions of one system share
// lives under internal/).
func TestSourcesAndSinksApart(t *testing.T) {
	t.Parallel()
	const mod = "github.com/keysync/keysync/"
	for _, line := range goList(t, "-f", "{{.ImportPath}}{{range .Deps}} {{.}}{{end}}", "./sinks/...", "./sources/...") {
		fields := strings.Fields(line)
		pkg := fields[0]
		other := mod + "sources/"
		if strings.HasPrefix(pkg, mod+"sources/") {
			other = mod + "sinks/"
		}
		for _, dep := range fields[1:] {
			if strings.HasPrefix(dep, other) {
				t.Errorf("%s depends on %s", strings.TrimPrefix(pkg, mod), strings.TrimPrefix(dep, mod))
			}
		}
	}
}
