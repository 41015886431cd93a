package guestway_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
	"github.com/keysync/keysync/reconcile"
	"github.com/keysync/keysync/sources/guestway"
)

// TestCancelledNegatedIsLive: a status that names a cancellation only to
// deny or undo it ("not_cancelled", "un_cancelled",
// "cancelled_reverted") is no cancellation: read as
// one, the guest's access is withdrawn and the guest is locked out.
// Unknown statuses must never revoke a guest's door.
func TestCancelledNegatedIsLive(t *testing.T) {
	t.Parallel()
	sb, base := portfolioSandbox(t)
	src := newSource(t, base, nil)
	for status, want := range map[string]bool{
		"not_cancelled": false, "un_cancelled": false, "un_canceled": false, "never_cancelled": false,
		"cancelled_reverted": false, "canceled_undone": false, "cancelled_reinstated": false, "cancelled_reversed": false,
		"cancelled_by_guest": true, "host_cancelled": true, "cancelled": true, "canceled_by_host": true,
		// A word after the cancellation qualifies it: still cancelled.
		"cancelled_no_refund": true, "cancelled_non_refundable": true, "cancelled_no_show": true, "canceled_by_host_no_penalty": true,
	} {
		if err := sb.SetStatus("G6", status); err != nil {
			t.Fatal(err)
		}
		got, err := src.StaysByID(context.Background(), []string{"G6"})
		if err != nil || (len(got) == 0) != want {
			t.Errorf("status %q: %v, %v; want cancelled %v", status, got, err, want)
		}
	}
}

// TestListNotFoundWhenTotalSaysMore: a 404 for a later page of the list
// is its end only when the list was read on to it by a guess (a meta
// with neither has_more nor total, whose page came full). Where the meta's
// total says reservations are left, a 404 is no end: taken for one, the
// new arrivals on the pages not read are never keyed (those recorded cost
// a look-up by id each, every run). The read fails instead, as it did
// before.
func TestListNotFoundWhenTotalSaysMore(t *testing.T) {
	t.Parallel()
	sb, _ := portfolioSandbox(t)
	sb.SetNoHasMore(true) // paged by total alone
	base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == guestway.DefaultReservationsPath && r.URL.Query().Get("page") == "2" {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		sb.ServeHTTP(w, r)
	})).URL
	stays, err := readPortfolio(t, newSource(t, base, func(o *guestway.Options) { o.PerPage = 3 }))
	if err == nil || !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("total says more, page 2 answered 404: %q, %v; want the read to fail", ids(stays), err)
	}
}

// TestListNotFoundButListShowsTheWindow: a 404 for the window's first
// page is an empty window only if nothing the check reads contradicts it.
// When the list asked without from, to or per_page shows reservations in
// the window, the 404 was about something else the first request carried
// (its per_page, say, or its dates): taken for an empty window, no new
// arrival in it is ever keyed, silently (those recorded cost a look-up by
// id each, every run). The read fails.
func TestListNotFoundButListShowsTheWindow(t *testing.T) {
	t.Parallel()
	sb, _ := portfolioSandbox(t)
	base := sandboxtest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == guestway.DefaultReservationsPath && r.URL.Query().Has("per_page") {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		sb.ServeHTTP(w, r)
	})).URL
	stays, err := readPortfolio(t, newSource(t, base, nil))
	if err == nil || !errors.Is(err, reconcile.ErrNotFound) {
		t.Errorf("first page 404, the list shows G1..G7 in the window: %q, %v; want the read to fail", ids(stays), err)
	}
}
