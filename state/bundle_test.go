package state

import (
	"context"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// TestSaveTimeBoundAndDerived round-trips what migration 0002 added to a
// credential: its validity window, the credential a derived key carries the
// secret of, and the disabled status (still live); and the invite's token,
// sealed by Save and opened by Credentials.
func TestSaveTimeBoundAndDerived(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, _ := openNew(t)
	ref := reconcile.StayRef{Property: "p", Source: reconcile.SystemGuestway, ID: "g1"}
	win := reconcile.Window{
		Start: time.Date(2026, 3, 28, 13, 0, 0, 0, time.UTC),
		End:   time.Date(2026, 3, 30, 11, 0, 0, 0, time.UTC),
	}
	invite := &reconcile.Credential{Stay: ref, System: reconcile.SystemOpenApp, Kind: reconcile.KindInvite,
		RoomID: "L1", RemoteID: "link-1", Status: reconcile.StatusDisabled, Valid: win, Secret: "tok-sealed"}
	if err := db.Save(ctx, []*reconcile.Credential{invite}, nil); err != nil {
		t.Fatal(err)
	}
	key := &reconcile.Credential{Stay: ref, System: reconcile.System3RPMS, Kind: reconcile.KindQRKey,
		RoomID: "L1", RemoteID: "K9", Status: reconcile.StatusActive, DerivedFrom: invite.ID}
	if err := db.Save(ctx, []*reconcile.Credential{key}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := db.Credentials(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("want both credentials live (disabled counts), got %d", len(got))
	}
	if !got[0].Valid.Start.Equal(win.Start) || !got[0].Valid.End.Equal(win.End) || got[0].Status != reconcile.StatusDisabled {
		t.Errorf("invite = %+v", got[0])
	}
	if got[0].Secret != "tok-sealed" || got[1].PIN != "" || got[1].Secret != "" {
		t.Errorf("secrets back from the store: invite %q, key PIN %q secret %q; want the token, and nothing for the key",
			got[0].Secret.Reveal(), got[1].PIN.Reveal(), got[1].Secret.Reveal())
	}
	if got[1].DerivedFrom != invite.ID || got[0].DerivedFrom != 0 {
		t.Errorf("derived_from = %d and %d", got[1].DerivedFrom, got[0].DerivedFrom)
	}
}
