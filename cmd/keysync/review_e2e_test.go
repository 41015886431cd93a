package main

// Review tests over real HTTP against the sandboxes: each proves the fix
// of a bug found in review.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keysync/keysync/reconcile"
	gwsandbox "github.com/keysync/keysync/sources/guestway/sandbox"
)

// newReviewWorld is newWorld with every request passing through wrap, and
// the config passed through edit before it is written.
func newReviewWorld(t *testing.T, hotel, apartments map[string]string, wrap func(http.Handler) http.Handler, edit func(string) string) *world {
	t.Helper()
	return newWorld(t, hotel, apartments, withMiddleware(wrap), withConfigEdit(edit))
}

// loseAnswer lets the n-th request matching (method, path prefix) reach the
// sandbox, then answers 502 as a proxy whose upstream timed out would: the
// request took effect, the client cannot know.
func loseAnswer(method, prefix string, n int) func(http.Handler) http.Handler {
	return onNth(method, prefix, n, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
		next.ServeHTTP(discard{}, r)
		http.Error(w, `{"error":"bad gateway"}`, http.StatusBadGateway)
	})
}

// failNth answers the n-th request matching (method, path prefix) with 503
// without passing it on: nothing happened.
func failNth(method, prefix string, n int) func(http.Handler) http.Handler {
	return onNth(method, prefix, n, func(w http.ResponseWriter, _ *http.Request, _ http.Handler) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"message":"maintenance"}`))
	})
}

// onNth is a middleware that hands the n-th request matching (method, path
// prefix) to fault, with the handler it would have gone to, and passes
// every other request on.
func onNth(method, prefix string, n int, fault func(w http.ResponseWriter, r *http.Request, next http.Handler)) func(http.Handler) http.Handler {
	var mu sync.Mutex
	seen := 0
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == method && strings.HasPrefix(r.URL.Path, prefix) {
				mu.Lock()
				seen++
				hit := seen == n
				mu.Unlock()
				if hit {
					fault(w, r, next)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// A guest moved to a room that has no access method in the config keeps
// the key-box access to the old room's key and the 3RPMS key carrying its
// code, until checkout.
func TestReviewE2EMovedToUnmappedRoomKeepsOldAccess(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t, map[string]string{"r301": "key_storage"}, nil, nil, nil)
	w.sb.rpms.AddRoom("r999", "999") // a room keysync has no method for
	w.hotelStay("s1", "r301", 0, 3)
	w.run(ExitOK, "backfill")
	if len(w.accesses()) != 1 {
		t.Fatalf("want one access, got %+v", w.accesses())
	}
	if err := w.sb.rpms.MoveStay("s1", "r999"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitAttention, "run") // a guest in house in a room with no method needs a person
	if acc := w.accesses(); len(acc) != 0 {
		t.Errorf("guest moved out of r301 still holds access %s to key %s", acc[0].ID, acc[0].KeyID)
	}
	if s, _ := w.sb.rpms.Stay("s1"); s.KeyID != "" {
		t.Errorf("guest moved out of r301 still holds its RoomAccessKeyStorage %s", s.KeyID)
	}
}

// default_method: qr passes validation with an openapp section, but rooms
// that fall to the default have no portals, so every invite create is
// refused: the stay never gets a credential and every run plans the same
// create again.
func TestReviewE2EDefaultMethodQRWithoutPortalsNeverConverges(t *testing.T) {
	t.Parallel()
	// Fixed by refusing the config: a qr room needs its door's portals.
	w := newReviewWorld(t, map[string]string{"r101": "pin"}, nil, nil, func(cfg string) string {
		return strings.Replace(cfg, "    rooms:\n", "    default_method: qr\n    rooms:\n", 1)
	})
	var out, errb bytes.Buffer
	err := Run(context.Background(), []string{"backfill", "--config", w.cfg}, &out, &errb, w.getenv)
	if exitCode(err) != ExitConfig || err == nil || !strings.Contains(err.Error(), "default_method") {
		t.Errorf("exit %d, err %v; want the config refused naming default_method", exitCode(err), err)
	}
}

// The answer to an invite create is lost (a 502 after the invite was
// made). The next run abandons the pending record and creates a second
// invite: the stay holds two live invites, and after a cancellation the
// lost one stays enabled until the stay's checkout.
func TestReviewE2ELostInviteCreateLeavesLiveInvite(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t, nil, map[string]string{"L1": "qr"}, loseAnswer(http.MethodPost, "/openapp/", 1), nil)
	if err := w.sb.guestway.AddReservation(gwsandbox.Reservation{ID: "G1", Status: "confirmed", ArrivalDate: day(1),
		DepartureDate: day(3), ListingID: "L1", GuestName: "Guest G1"}); err != nil {
		t.Fatal(err)
	}
	w.run(ExitPartial, "backfill") // the create's answer is lost
	w.run(ExitOK, "run")
	if n := len(w.invites()); n != 1 {
		t.Errorf("stay G1 holds %d live invites, want 1 (invariants 1 and 2)", n)
	}
	if err := w.sb.guestway.SetStatus("G1", "cancelled"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitOK, "run")
	for _, inv := range w.invites() {
		if inv.Enabled {
			t.Errorf("cancelled reservation G1 still has enabled invite %s valid to %s", inv.ID, inv.ValidTo)
		}
	}
}

// An in-house guest's stay is extended. The key box has no update call, so
// keysync cancels the access first and creates the new one second; when the
// create fails, the guest is left with no access at all (old access
// cancelled, 3RPMS key revoked) until the next run, although the old
// access was good until the original checkout.
func TestReviewE2EKeyBoxExtensionFailureLocksGuestOut(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t, map[string]string{"r301": "key_storage"}, nil, failNth(http.MethodPost, "/keybox/", 2), nil)
	w.hotelStay("s1", "r301", -1, 2) // in house
	w.run(ExitOK, "backfill")
	if len(w.accesses()) != 1 {
		t.Fatalf("want one access, got %+v", w.accesses())
	}
	if err := w.sb.rpms.ChangeDates("s1", day(-1), day(3)); err != nil {
		t.Fatal(err)
	}
	w.run(ExitPartial, "run") // the new access's create answers 503
	s, _ := w.sb.rpms.Stay("s1")
	if len(w.accesses()) == 0 && s.KeyID == "" {
		t.Error("in-house guest holds neither a key-box access nor a 3RPMS key after a failed extension")
	}
}

// rewriteCodes makes the key box answer codes in another format (here
// "12-3456", as boxes that print a dash do) once on is set.
func rewriteCodes(on *bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !*on || r.Method != http.MethodPost || !strings.HasPrefix(r.URL.Path, "/keybox/v2/accesses") {
				next.ServeHTTP(w, r)
				return
			}
			rec := &recorder{h: http.Header{}}
			next.ServeHTTP(rec, r)
			body := codeRe.ReplaceAllString(string(rec.body), `"code":"$1-$2"`)
			for k, v := range rec.h {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.status)
			w.Write([]byte(body))
		})
	}
}

var codeRe = regexp.MustCompile(`"code":\s*"(\d\d)(\d+)"`)

type recorder struct {
	h      http.Header
	status int
	body   []byte
}

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) Write(b []byte) (int, error) { r.body = append(r.body, b...); return len(b), nil }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// A key-box code that breaks 3RPMS's PIN rule makes the 3RPMS sink refuse
// the whole chained request before sending it; with a derived key in the
// plan every 3RPMS revocation shares that request (alignKeySteps), so a
// departed guest's PIN key is never revoked, on this run or any later one.
func TestReviewE2EBadKeyBoxCodeBlocksAllRevocations(t *testing.T) {
	t.Parallel()
	on := false
	w := newReviewWorld(t, map[string]string{"r101": "pin", "r301": "key_storage"}, nil, rewriteCodes(&on), nil)
	w.hotelStay("s0", "r101", -2, 0)
	w.run(ExitOK, "backfill")
	on = true
	w.hotelStay("s1", "r301", 1, 3)
	w.setNow(lj(day(0), 14)) // s0 checked out at 11:00, grace ended 13:00
	for range 2 {
		rep := w.run(ExitPartial, "run")
		for _, a := range rep.Actions() {
			if a.Stay.ID == "s0" && a.Result != reconcile.ResultDone {
				t.Logf("%s %s %s: %s %s", a.System, a.Op, a.Stay.ID, a.Result, a.Error)
			}
		}
	}
	if s, _ := w.sb.rpms.Stay("s0"); s.KeyID != "" {
		t.Errorf("departed stay s0 still holds key %s after two runs (invariant 3)", s.KeyID)
	}
}

// crashRun runs keysync in a child process that SIGKILLs itself at a crash
// point (KEYSYNC_CRASH_AT), as TestKilledBetweenCreateAndAssignFinishedByNextRun does.
func (w *world) crashRun(cmd, at string) {
	w.t.Helper()
	args, _ := json.Marshal([]string{cmd, "--config", w.cfg, "--now", w.now.Format(time.RFC3339)})
	c := exec.Command(os.Args[0], "-test.run=^$")
	c.Env = append(os.Environ(), "KEYSYNC_TEST_ARGS="+string(args), "KEYSYNC_CRASH_AT="+at)
	for k, v := range sandboxEnv {
		c.Env = append(c.Env, k+"="+v)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	err := c.Run()
	ws, ok := c.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		w.t.Fatalf("child was not killed at %s: %v\n%s", at, err, stderr.String())
	}
}

// Invariant 1 (checkInvariants): a kill at any point is finished or cleaned up by
// the next run. Killed right after an invite's create was answered, the
// next run abandons the pending record and issues another invite: two live
// invites for the stay, one of them recorded nowhere live.
func TestReviewE2EKillAfterInviteCreateLeavesOrphan(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t, nil, map[string]string{"L1": "qr"}, nil, nil)
	if err := w.sb.guestway.AddReservation(gwsandbox.Reservation{ID: "G1", Status: "confirmed", ArrivalDate: day(1),
		DepartureDate: day(3), ListingID: "L1", GuestName: "Guest G1"}); err != nil {
		t.Fatal(err)
	}
	w.crashRun("backfill", reconcile.CrashAfterRequest)
	w.run(ExitOK, "run")
	w.converges()
	if n := len(w.invites()); n != 1 {
		t.Errorf("stay G1 holds %d live invites after a kill and one more run, want 1", n)
	}
}

// The key box answers a create with an id but no code (the key-box
// document shows no response; the sandbox's CreateWithoutCode; the sink
// records the id with an empty Secret). No 3RPMS key_storage key can carry a code keysync never saw,
// and a new access would come without one too: the access is kept (the
// key box tells the guest, silent false), no key is made, and the report
// says so, needing a person once the guest arrives within 24 hours.
// Before, every run cancelled the access and made another. One cancelled
// upstream is still found out and replaced.
func TestReviewE2EKeyBoxAnswerWithoutCodeKeepsTheAccess(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t, map[string]string{"r301": "key_storage"}, nil, nil, nil)
	w.sb.keybox.SetCreateWithoutCode(true)
	w.hotelStay("s1", "r301", 1, 3)
	// Its key could not be written: the report says why, not that the
	// access (created, and kept) was not created.
	for _, a := range w.run(ExitPartial, "backfill").Actions() {
		if a.System != reconcile.System3RPMS || a.Op != reconcile.OpCreate {
			continue
		}
		if a.Result != reconcile.ResultSkipped || !strings.Contains(a.Error, "came back without its code") || strings.Contains(a.Error, "was not created") {
			t.Errorf("the 3RPMS create of s1: %s %q, want skipped because the key-box access came back without its code", a.Result, a.Error)
		}
	}
	noSecret := func(rep *reconcile.Report) (n int, attention bool) {
		for _, note := range rep.Notes() {
			if note.Kind == reconcile.NoteNoSecret && note.Stay.ID == "s1" {
				n++
				attention = attention || note.Attention
			}
		}
		return n, attention
	}
	for range 2 {
		rep := w.run(ExitOK, "run")
		if n := len(rep.Actions()); n != 0 {
			t.Errorf("a run after the backfill plans %d actions, want none", n)
		}
		if n, _ := noSecret(rep); n != 1 {
			t.Errorf("%d notes that the access came back without its code, want 1", n)
		}
	}
	w.setNow(w.now.Add(24 * time.Hour)) // s1 arrives today
	if n, attention := noSecret(w.run(ExitAttention, "run")); n != 1 || !attention {
		t.Errorf("on the day of arrival: %d notes, attention %v; want 1 needing a person", n, attention)
	}
	if n := len(w.accesses()); n != 1 {
		t.Errorf("%d live accesses, want the one made", n)
	}
	for _, a := range w.sb.keybox.Accesses() {
		if a.Cancelled {
			t.Errorf("access %s cancelled and made again for an unchanged stay", a.ID)
		}
	}
	// Staff cancel it at the key box: the read-back before the key would
	// be written shows it gone, and the guest gets a new one.
	first := w.accesses()[0].ID
	if err := w.sb.keybox.CancelAccess(first, "staff"); err != nil {
		t.Fatal(err)
	}
	w.run(ExitPartial, "run") // the new one's key cannot be written either
	if live := w.accesses(); len(live) != 1 || live[0].ID == first {
		t.Errorf("after staff cancelled %s: live accesses %+v, want one new one", first, live)
	}
	if rep := w.run(ExitAttention, "run"); len(rep.Actions()) != 0 {
		t.Errorf("the run after the replacement plans %d actions, want none", len(rep.Actions()))
	}
}

// TestKeyBoxWithoutCodeOrListKeepsTheAccess: a key box whose create answer
// carries no code and which has no list call (the sandbox's
// CreateWithoutCode and NoList): the access keysync made cannot be read
// back, which is no sign it is gone, so it is kept run after run, not
// cancelled and made again each night.
func TestKeyBoxWithoutCodeOrListKeepsTheAccess(t *testing.T) {
	t.Parallel()
	w := newReviewWorld(t, map[string]string{"r301": "key_storage"}, nil, nil, func(cfg string) string {
		return strings.ReplaceAll(cfg, "    keybox:\n", "    keybox:\n      no_list: true\n")
	})
	w.sb.keybox.SetCreateWithoutCode(true)
	w.sb.keybox.SetNoList(true)
	w.hotelStay("s1", "r301", 1, 3)
	w.run(ExitPartial, "backfill") // its key could not be written
	for range 2 {
		if n := len(w.run(ExitOK, "run").Actions()); n != 0 {
			t.Errorf("a run after the backfill plans %d actions, want none", n)
		}
	}
	if n := len(w.sb.keybox.Accesses()); n != 1 {
		t.Errorf("%d accesses made, want the one", n)
	}
}
