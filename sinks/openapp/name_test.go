package openapp_test

import (
	"strings"
	"testing"

	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sinks/openapp"
)

func TestOwnerTag(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		ref  reconcile.StayRef
		want string
	}{
		{reconcile.StayRef{Property: "hotel-ljubljana", Source: reconcile.System3RPMS, ID: "RS-1"}, "[keysync:hotel-ljubljana:3rpms:RS-1]"},
		{reconcile.StayRef{Property: "Hotel Alpina: Main [A]", Source: reconcile.SystemGuestway, ID: "res:42/1%"}, "[keysync:Hotel%20Alpina%3A%20Main%20%5BA%5D:guestway:res%3A42/1%25]"},
		{reconcile.StayRef{Property: "Vila Šmarna", Source: reconcile.System3RPMS, ID: "a\nb"}, "[keysync:Vila%20Šmarna:3rpms:a%0Ab]"},
	} {
		tag := openapp.OwnerTag(tc.ref)
		if tag != tc.want {
			t.Errorf("OwnerTag(%+v) = %q, want %q", tc.ref, tag, tc.want)
		}
		for _, name := range []string{tag, "Guest stay 2026-06-01→06-05 " + tag, "[keysync:x:y:z] renamed " + tag + " by staff"} {
			if got, ok := openapp.ParseOwnerTag(name); !ok || got != tc.ref {
				t.Errorf("ParseOwnerTag(%q) = %+v, %v; want %+v", name, got, ok, tc.ref)
			}
		}
	}
	for _, name := range []string{
		"",
		"Guest — June stay",
		"[keysync:hotel:3rpms]",
		"[keysync:hotel:3rpms:s1",
		"[keysync:hotel:3rpms:s1:extra]",
		"[keysync::3rpms:s1]",
		"[keysync:hotel:3rpms:%zz]",
		"[keysync:hotel:3rpms:]",
		"[KEYSYNC:hotel:3rpms:s1]",
	} {
		if got, ok := openapp.ParseOwnerTag(name); ok {
			t.Errorf("ParseOwnerTag(%q) = %+v, want no tag", name, got)
		}
	}
}

// TestInviteName checks the name the sink sends, through the sandbox.
func TestInviteName(t *testing.T) {
	t.Parallel()
	sb, _, opts := newSandbox(t)
	s := newSink(t, opts)
	for _, tc := range []struct {
		guest, want string
	}{
		{"", "Guest stay 2026-06-01→06-05 [keysync:hotel-ljubljana:3rpms:s1]"},
		{"  Ana\tMarija  Kovač ", "Ana Marija Kovač 2026-06-01→06-05 [keysync:hotel-ljubljana:3rpms:s1]"},
		{"Eve [keysync:x:3rpms:s9]", "Eve keysync:x:3rpms:s9 2026-06-01→06-05 [keysync:hotel-ljubljana:3rpms:s1]"},
		{strings.Repeat("Ž", 80), strings.Repeat("Ž", 60) + " 2026-06-01→06-05 [keysync:hotel-ljubljana:3rpms:s1]"},
	} {
		a := action(reconcile.OpCreate, "s1", "r101", "2026-06-01", "2026-06-05", "")
		a.Guest = tc.guest
		out := apply(t, s, a)
		v, _ := sb.Invite(out.RemoteID)
		if v.Name != tc.want {
			t.Errorf("guest %q: name %q, want %q", tc.guest, v.Name, tc.want)
		}
		if ref, ok := openapp.ParseOwnerTag(v.Name); !ok || ref != a.Stay {
			t.Errorf("ParseOwnerTag(%q) = %+v, %v", v.Name, ref, ok)
		}
	}
}
