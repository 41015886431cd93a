package guestway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/sourcegraph/conc/pool"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// Defaults for Options; see the package comment for what they assume.
const (
	// DefaultReservationsPath is the assumed path of the reservation list.
	DefaultReservationsPath = "/open/v1/reservations"
	// DefaultReservationPath is the assumed path of one reservation; {id}
	// is replaced by the escaped reservation id.
	DefaultReservationPath = "/open/v1/reservations/{id}"
	// DefaultAccessesPath is the assumed path of a reservation's accesses.
	DefaultAccessesPath = "/open/v1/reservations/{id}/accesses"
	// DefaultPerPage is the page size asked for when Options.PerPage is 0.
	DefaultPerPage = 50
	// MaxPerPage is the largest page size the API accepts.
	MaxPerPage = 100
	// DefaultConcurrency is how many requests Options.Concurrency allows.
	DefaultConcurrency = 4
	// DefaultMaxPages stops a server that keeps saying has_more from
	// holding a run forever: 100,000 reservations at 50 a page.
	DefaultMaxPages = 2000
	// DefaultMaxResponseBytes caps a response body; a larger one is an
	// error, not an allocation.
	DefaultMaxResponseBytes = 8 << 20
	// TokenPrefix starts every Organization Access Token.
	TokenPrefix = "gw_"
)

// Options configures a Source.
type Options struct {
	// BaseURL is the API's scheme and host, such as https://api.guestway.io.
	BaseURL string
	// PartnerKey is the Partnership API Key, sent as X-Api-Key.
	PartnerKey reconcile.Secret
	// Token is the Organization Access Token (gw_…), sent as
	// Authorization: Bearer.
	Token reconcile.Secret
	// Property is the keysync property the stays belong to (StayRef.Property).
	Property string
	// ReservationsPath, ReservationPath and AccessesPath override the
	// assumed paths; empty means the Default… constant. The last two hold
	// {id}.
	ReservationsPath, ReservationPath, AccessesPath string
	// PerPage is the page size asked for; 0 means DefaultPerPage.
	PerPage int
	// MaxPages bounds how many pages one Stays call follows; 0 means
	// DefaultMaxPages.
	MaxPages int
	// Transport is the shared HTTP client's part: every call here is a GET,
	// so any of them is retried after an outage. The Pacer is shared by
	// everything in the process that uses the same partner key.
	httpapi.Transport
	// Concurrency is how many accesses requests (and, in StaysByID,
	// reservation requests) may be in flight at once, all still through
	// Pacer; 0 means DefaultConcurrency.
	Concurrency int
	// Location is the property's time zone, the day of an arrival_date or
	// departure_date sent as a date-time is told in (see stayDate); nil:
	// such a date-time fails the read unless it is at midnight.
	Location *time.Location
}

// Validate reports every problem with the options in one error. Messages
// name the field and never contain a secret.
func (o Options) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("guestway: %s: "+format, append([]any{field}, args...)...))
	}
	if u, err := url.Parse(o.BaseURL); o.BaseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("BaseURL", "want an absolute http(s) URL such as https://api.guestway.io")
	}
	switch {
	case o.Token == "":
		bad("Token", "missing; Organization Access Tokens start with %s and are created in Settings → API Access", TokenPrefix)
	case !strings.HasPrefix(o.Token.Reveal(), TokenPrefix):
		bad("Token", "does not look like an Organization Access Token: Organization Access Tokens start with %s", TokenPrefix)
	}
	if o.PartnerKey == "" {
		bad("PartnerKey", "missing; without a Partnership API Key (X-Api-Key) every request is rejected; support@guestway.io issues them")
	}
	if o.Property == "" {
		bad("Property", "missing")
	}
	for _, p := range []struct {
		field, path string
		id          bool
	}{
		{"ReservationsPath", o.ReservationsPath, false},
		{"ReservationPath", o.ReservationPath, true},
		{"AccessesPath", o.AccessesPath, true},
	} {
		switch {
		case p.path == "":
		case !strings.HasPrefix(p.path, "/"):
			bad(p.field, "must start with /")
		case p.id && !strings.Contains(p.path, "{id}"):
			bad(p.field, "must contain {id}")
		}
	}
	if o.PerPage < 0 || o.PerPage > MaxPerPage {
		bad("PerPage", "must be 1 to %d (0 for %d)", MaxPerPage, DefaultPerPage)
	}
	if o.MaxPages < 0 {
		bad("MaxPages", "must not be negative")
	}
	if o.Concurrency < 0 {
		bad("Concurrency", "must not be negative")
	}
	if o.MaxResponseBytes < 0 {
		bad("MaxResponseBytes", "must not be negative")
	}
	return errors.Join(errs...)
}

// Source reads one property's reservations from Guestway. It implements
// reconcile.StaySource and is safe for concurrent use.
type Source struct {
	opts Options
	http *httpapi.Client
	// serverPages is set once the server refused per_page: the pages are
	// then the server's own size, for the rest of the run (see Stays).
	serverPages atomic.Bool
	// listed holds the ids of the live reservations the latest Stays
	// returned (see checkReservationPath).
	listed atomic.Pointer[[]string]
	// accessesAnswer is set once an accesses call answered 200: the
	// AccessesPath is right, so a 404 there is a reservation without
	// accesses (see accessFailures).
	accessesAnswer atomic.Bool
	log            *slog.Logger
	// others names, by room (listing or unit id), the other properties on
	// the same organisation token that map it (Beside).
	others map[string]string
}

// Beside makes s one of several properties on one Guestway organisation
// token, each with its own listings: others names, by room (listing or
// unit id), the other property that maps it. A reservation in one of them
// is that property's: Stays and StaysByID return it marked
// reconcile.Stay.MovedTo (without its lock accesses, which are not read),
// so this property withdraws what it issued for a guest who moved there,
// in the same read that lets the other key the guest. Call it before the
// first read.
func (s *Source) Beside(others map[string]string) *Source {
	s.others = others
	return s
}

// markMoved marks st MovedTo the property whose room it is in, if another
// property's (Beside).
func (s *Source) markMoved(st *reconcile.Stay) {
	st.MovedTo = s.others[st.RoomID]
}

// SetLogger makes the source warn on log when Guestway refuses its page
// size.
func (s *Source) SetLogger(log *slog.Logger) { s.log = log }

var _ reconcile.StaySource = (*Source)(nil)

// ReportsCancellations implements reconcile.CancellationReporter: a
// reservation read by id carries its status, so one the list missed but
// the read shows live is live.
func (s *Source) ReportsCancellations() bool { return true }

// New returns a Source, filling defaults into zero options, or the error of
// options the HTTP client cannot be built from (a negative
// MaxResponseBytes). It does not validate them otherwise; call
// Options.Validate first.
func New(opts Options) (*Source, error) {
	opts.ReservationsPath = cmp.Or(opts.ReservationsPath, DefaultReservationsPath)
	opts.ReservationPath = cmp.Or(opts.ReservationPath, DefaultReservationPath)
	opts.AccessesPath = cmp.Or(opts.AccessesPath, DefaultAccessesPath)
	opts.PerPage = cmp.Or(opts.PerPage, DefaultPerPage)
	opts.MaxPages = cmp.Or(opts.MaxPages, DefaultMaxPages)
	opts.Concurrency = max(1, cmp.Or(opts.Concurrency, DefaultConcurrency))
	client, err := httpapi.New(httpapi.Options{
		Transport: opts.Transport, System: reconcile.SystemGuestway, Name: api, BaseURL: opts.BaseURL,
		MaxResponseBytes: DefaultMaxResponseBytes, RateLimitHint: hintRate,
		Auth: func(r *http.Request) {
			r.Header.Set("X-Api-Key", opts.PartnerKey.Reveal())
			r.Header.Set("Authorization", "Bearer "+opts.Token.Reveal())
		},
	})
	if err != nil {
		return nil, err
	}
	return &Source{opts: opts, http: client}, nil
}

// Stays implements reconcile.StaySource: every reservation with departure
// after from and arrival on or before to, cancelled ones included (with
// Cancelled set), each not-cancelled one with its Locks. A reservation
// with an id whose dates, or a field of another JSON type, cannot be read
// comes back marked Unreadable (see stay), without dates or Locks. Any
// other failure, a reservation without an id included, fails the whole
// read, but for one reservation's accesses while others answer
// (accessFailures: its LocksUnread).
func (s *Source) Stays(ctx context.Context, from, to reconcile.Date) ([]reconcile.Stay, error) {
	var stays []reconcile.Stay
	index := map[string]int{}
	saidMore := false // the page before said the list goes on (has_more or total)
	cursor := ""      // the page before's meta.next_cursor, sent as cursor
	firstShort := false
	lastShort := false      // the page before held fewer than the page size
	emptyBefore := false    // the page before held none
	listed, undated := 0, 0 // live reservations read, and those of them sending no dates (and no odd field)
	firstSize := 0          // how many the first page held
	for page := 1; ; page++ {
		if err := ctx.Err(); err != nil {
			return nil, &Error{API: api, Call: fmt.Sprintf("list reservations page %d", page), Err: context.Cause(ctx)}
		}
		if page > s.opts.MaxPages {
			return nil, &Error{API: api, Call: "list reservations", Reason: fmt.Sprintf("more than %d pages (MaxPages); the server keeps saying there are more", s.opts.MaxPages)}
		}
		var linked *listLinks // what the page's Link header says
		c := call{what: fmt.Sprintf("list reservations page %d", page), scope: ScopeReservations,
			endpoint: "nothing at the reservations path; check the base URL and reservations_path",
			header:   func(h http.Header) { linked = linkNext(h) }}
		q := url.Values{
			"from": {from.String()},
			"to":   {to.String()},
			"page": {strconv.Itoa(page)},
		}
		if !s.serverPages.Load() {
			q.Set("per_page", strconv.Itoa(s.opts.PerPage))
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var resp listResponse
		err := s.get(ctx, c, s.opts.ReservationsPath, q, &resp)
		if err != nil && page == 1 && q.Has("per_page") && httpapi.RefusedInput(err) {
			// The API document names no page size (DefaultPerPage is a
			// guess): a server that refuses it is asked for its own.
			q.Del("per_page")
			resp = listResponse{}
			if err = s.get(ctx, c, s.opts.ReservationsPath, q, &resp); err == nil {
				s.serverPages.Store(true)
				if s.log != nil {
					served := 0
					if resp.Meta != nil {
						served = resp.Meta.PerPage
					}
					if served == 0 && resp.Data != nil {
						served = len(*resp.Data) // as many as page 1 holds
					}
					s.log.Warn("Guestway refused the page size; reading its own page size for the rest of the run: set guestway.per_page to what it serves",
						"property", s.opts.Property, "refused", s.opts.PerPage, "serves", served)
				}
			}
		}
		if page > 1 && !saidMore && lastShort && httpapi.RefusedInput(err) {
			// Read on by a guess (nothing said the list went on) past a
			// short page, a page refused 400 or 422 is one past its end,
			// as many servers validate a page number. After a full page
			// the refusal may be of something else (a cap on how deep a
			// list may be paged): the read fails, never cut short.
			if s.log != nil {
				s.log.Warn("Guestway refused the page after a short one; taken as the list's end", "property", s.opts.Property, "page", page, "err", err)
			}
			break
		}
		if errors.Is(err, reconcile.ErrNotFound) && !saidMore {
			// The Guestway document names no list call: a server may
			// answer a page with nothing on it 404. After a page that
			// said neither has_more, total, a cursor nor a next link
			// (read on by a guess), that is the list's end; on the first
			// page it is an empty list when the list itself answers.
			if page > 1 {
				break
			}
			if err = s.listAnswers(ctx, err, from, to); err == nil {
				break
			}
		}
		if err != nil {
			return nil, err
		}
		if resp.bare {
			resp.Links = linked
		}
		switch {
		case resp.Data == nil:
			return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: `malformed JSON response: no "data" array`}
		case resp.Meta == nil:
			return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: `malformed JSON response: no "meta" object`}
		case resp.Meta.Page != 0 && resp.Meta.Page != page:
			return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: fmt.Sprintf("the server answered page %d; it ignores the page parameter", resp.Meta.Page)}
		case resp.Meta.HasMore != nil && *resp.Meta.HasMore && len(*resp.Data) == 0:
			return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: "empty page that says has_more"}
		}
		before := len(stays)
		for _, r := range *resp.Data {
			st, err := s.stay(r)
			if err != nil {
				return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: err.Error()}
			}
			if !st.Cancelled { // a cancelled one may well send no dates
				listed++
				if st.Unreadable == errNoDates.Error() {
					undated++
				}
			}
			// Offset pages shift when reservations are added while we
			// read: keep one stay per id, with the latest data.
			if i, ok := index[st.Ref.ID]; ok {
				stays[i] = st
				continue
			}
			index[st.Ref.ID] = len(stays)
			stays = append(stays, st)
		}
		asked := s.opts.PerPage
		if s.serverPages.Load() {
			// Its own page size: as it says, or else as many as its
			// first page held (a page with fewer is short; the first
			// page itself cannot be told short).
			asked = cmp.Or(resp.Meta.PerPage, firstSize)
		}
		lastShort = asked > 0 && len(*resp.Data) < asked // unknown: no guess
		if page == 1 {
			firstShort, firstSize = lastShort, len(*resp.Data)
		}
		if page > 1 && len(*resp.Data) > 0 && len(stays) == before {
			if !saidMore && cursor == "" && firstShort {
				// Nothing said the list went on and the first page was
				// short: a server that does not page answers every page
				// with the whole list.
				break
			}
			// A page of reservations all read already: the same page
			// again, whatever page was asked for (a server that sends no
			// meta.page to tell), read on by has_more, total or a cursor.
			return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: "the server answered a page already read; it ignores the page parameter"}
		}
		if s.lastPage(resp, len(stays), cursor != "", emptyBefore) {
			break
		}
		emptyBefore = len(*resp.Data) == 0
		cursor = resp.Meta.nextCursor()
		// Read on because the answer said so (has_more, a total that
		// counts more, a next cursor or link), not by a guess: a 404
		// next is no end of the list.
		saidMore = resp.Meta.HasMore != nil || resp.Meta.Total != nil || cursor != "" || resp.Links.next() == 1
	}
	if undated > 1 && undated == listed {
		// Not one reservation's data error, but names this server does
		// not use: a read that would key no one fails, loudly. (One live
		// reservation alone is an unreadable stay, noted.)
		names := make([]string, len(datePairs))
		for i, p := range datePairs {
			names[i] = p[0] + "/" + p[1]
		}
		return nil, &Error{API: api, Call: "list reservations", Status: http.StatusOK,
			Reason: "no reservation sends its dates under a name keysync reads (" + strings.Join(names, ", ") + "): the server names them otherwise"}
	}
	for i := range stays {
		s.markMoved(&stays[i])
	}
	if err := s.fillLocks(ctx, stays); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(stays))
	for _, st := range stays {
		if !st.Cancelled {
			ids = append(ids, st.Ref.ID)
		}
	}
	s.listed.Store(&ids)
	return stays, nil
}

// listAnswers decides what a 404 for the list's first page (notFound)
// over from..to means from the next read, never from its body: it asks
// for the list's first page without from, to or per_page. When that
// answers, the reservations path is right and the window was empty (nil),
// unless that page shows a reservation in the window: then the window is
// not empty and the 404 was about something else the request carried (its
// per_page, say, or its dates), and the read fails rather than key no
// new arrival in the window, silently. When it 404s too, notFound stands (a
// wrong reservations_path, ErrEndpoint when it was the system's first
// answer); any other failure is returned.
func (s *Source) listAnswers(ctx context.Context, notFound error, from, to reconcile.Date) error {
	c := call{what: "list reservations (to check the reservations path after a 404)", scope: ScopeReservations}
	var resp listResponse
	err := s.get(ctx, c, s.opts.ReservationsPath, url.Values{"page": {"1"}}, &resp)
	switch {
	case errors.Is(err, reconcile.ErrNotFound):
		return notFound
	case err != nil:
		return err
	case resp.Data == nil:
		return &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: `malformed JSON response: no "data" array`}
	}
	for _, r := range *resp.Data {
		st, err := s.stay(r)
		if err == nil && from.Before(st.Departure) && !to.Before(st.Arrival) {
			return &Error{API: api, Call: fmt.Sprintf("list reservations %s to %s page 1", from, to), Status: http.StatusNotFound, Err: reconcile.ErrNotFound,
				Reason: fmt.Sprintf("not found, yet the list asked without from, to and per_page shows reservation %s in that window, so it is not empty; check guestway.per_page and what the server takes for from and to", st.Ref.ID)}
		}
	}
	return nil
}

// lastPage reports whether resp, a page of the list, ends it, with read
// reservations read so far. The Guestway document names no paging:
// has_more says whether the list goes on; without it, the list goes on
// while total says reservations are left and this page had some (a
// server that pages by its total alone; a total that counts more than
// the list holds costs one empty page); without either, while
// meta.next_cursor (sent back as cursor) or links.next is set, and ends
// where one of them is null, or where a list read by cursor (byCursor:
// this page was asked for with one) names none; with none of these, until
// a page comes empty (or 404s, or repeats a short first page: see Stays).
// A page shorter than asked is no end: a server may serve fewer than it
// was asked for, and say per_page as asked. A server that ignores page
// and cursor fails the read on the page it repeats. An empty page that
// links a next one is no end, unless the page before was empty too
// (emptyBefore).
func (s *Source) lastPage(resp listResponse, read int, byCursor, emptyBefore bool) bool {
	m, n := resp.Meta, len(*resp.Data)
	switch {
	case m.HasMore != nil:
		return !*m.HasMore
	case m.Total != nil:
		return *m.Total <= read || n == 0
	case n == 0 && !emptyBefore && m.NextCursor == nil && !byCursor && resp.Links.next() == 1:
		// An empty page that links a next one: a server that filters a
		// page after paging it may leave one empty mid-list; one that
		// links a next page from every page ends at two empty ones.
		return false
	case n == 0:
		return true
	case m.NextCursor != nil || byCursor:
		return m.nextCursor() == ""
	}
	return resp.Links.next() == 0
}

// StaysByID implements reconcile.StaySource with one GET per distinct id
// (and one for the accesses of each reservation found).
// Reservations that are gone (404) or cancelled are left out, as the
// StaySource contract asks; the rest come back in the order of ids, with
// their Locks (an unreadable one without: see stay).
func (s *Source) StaysByID(ctx context.Context, ids []string) ([]reconcile.Stay, error) {
	var uniq []string
	for _, id := range ids {
		if id != "" && !slices.Contains(uniq, id) {
			uniq = append(uniq, id)
		}
	}
	found := make([]*reconcile.Stay, len(uniq))
	var gone atomic.Bool
	var nf accessFailures
	p := s.pool(ctx)
	for i, id := range uniq {
		p.Go(func(ctx context.Context) error {
			c := call{what: "get reservation " + id, scope: ScopeReservations}
			var resp oneResponse
			err := s.get(ctx, c, expand(s.opts.ReservationPath, id), nil, &resp)
			if errors.Is(err, reconcile.ErrNotFound) || err == nil && resp.Null {
				// Gone, as far as the answer goes; the reservation path is
				// checked below before it is taken as such.
				gone.Store(true)
				return nil
			}
			if err != nil {
				return err
			}
			if resp.Data == nil {
				return &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: `malformed JSON response: no "data" object`}
			}
			st, err := s.stay(*resp.Data)
			if err != nil {
				return &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: err.Error()}
			}
			if st.Ref.ID != id {
				return &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: fmt.Sprintf("the server answered reservation %s", st.Ref.ID)}
			}
			if st.Cancelled {
				return nil
			}
			if s.markMoved(&st); st.MovedTo == "" && st.Unreadable == "" {
				if err := nf.locks(ctx, s, &st); err != nil {
					return err
				}
			}
			found[i] = &st
			return nil
		})
	}
	if err := p.Wait(); err != nil {
		return nil, err
	}
	if err := nf.check(s); err != nil {
		return nil, err
	}
	if gone.Load() {
		if err := s.checkReservationPath(ctx, uniq); err != nil {
			return nil, err
		}
	}
	var out []reconcile.Stay
	for _, st := range found {
		if st != nil {
			out = append(out, *st)
		}
	}
	return out, nil
}

// pool runs access requests Concurrency at a time, stopping at the first
// error.
func (s *Source) pool(ctx context.Context) *pool.ContextPool {
	return pool.New().WithMaxGoroutines(s.opts.Concurrency).WithErrors().WithFirstError().WithContext(ctx).WithCancelOnError()
}

// fillLocks fetches the accesses of every stay that is not cancelled,
// unreadable, nor another property's (Beside).
func (s *Source) fillLocks(ctx context.Context, stays []reconcile.Stay) error {
	var nf accessFailures
	p := s.pool(ctx)
	for i := range stays {
		if stays[i].Cancelled || stays[i].MovedTo != "" || stays[i].Unreadable != "" {
			continue
		}
		p.Go(func(ctx context.Context) error { return nf.locks(ctx, s, &stays[i]) })
	}
	if err := p.Wait(); err != nil {
		return err
	}
	return nf.check(s)
}

// accessFailures collects the accesses calls of one read that failed. The
// Guestway document names no accesses call: a server may answer 404 for a
// reservation that has no accesses, or the AccessesPath may be wrong; one
// reservation's accesses may fail (a 5xx after the retries, an answer
// keysync cannot read) while the others answer. What the other calls show
// decides, never an error's body: once an accesses call answered 200 at
// the path (in this read or an earlier one), a 404 is a reservation
// without accesses (no PIN: a missing-PIN note), and any other failure
// but a rate limit, the budget or a refused credential (which fail the
// read) leaves that stay's PINs unread (Stay.LocksUnread: a note for a person),
// never a failed read for every guest: the PINs are only shown, while the
// read decides whose access is kept or withdrawn. With none answered, the
// read fails with the first failure (naming AccessesPath for a 404).
type accessFailures struct {
	mu     sync.Mutex
	first  error // the first 404
	failed error // the first other failure
}

// locks reads one reservation's accesses into st, noting a failure for
// check to judge; a stop is returned.
func (nf *accessFailures) locks(ctx context.Context, s *Source, st *reconcile.Stay) error {
	locks, err := s.locks(ctx, st.Ref.ID)
	var e *Error
	switch {
	case err == nil:
		st.Locks = locks
		return nil
	case ctx.Err() != nil, errors.Is(err, reconcile.ErrRateLimited), errors.Is(err, reconcile.ErrOverBudget), errors.Is(err, reconcile.ErrUnauthorized):
		// A stop, a limit or a credential: the calls after it would
		// meet the same, and spend the budget for nothing.
		return err
	case errors.As(err, &e) && e.Status == http.StatusNotFound:
		nf.note(&nf.first, err)
		return nil
	}
	nf.note(&nf.failed, err)
	st.LocksUnread = err.Error()
	if s.log != nil {
		s.log.Warn("could not read a reservation's lock PINs; its stay is planned all the same, with a note for a person",
			"property", s.opts.Property, "reservation", st.Ref.ID, "err", err)
	}
	return nil
}

// note keeps err in *first unless it holds one already.
func (nf *accessFailures) note(first *error, err error) {
	nf.mu.Lock()
	defer nf.mu.Unlock()
	if *first == nil {
		*first = err
	}
}

// check fails the read with the first 404, or else the first other
// failure, unless an accesses call has answered 200 at the path.
func (nf *accessFailures) check(s *Source) error {
	nf.mu.Lock()
	defer nf.mu.Unlock()
	if s.accessesAnswer.Load() {
		return nil
	}
	return cmp.Or(nf.first, nf.failed)
}

// locks reads one reservation's accesses. A 404 is an error naming
// AccessesPath, which accessFailures may forgive.
func (s *Source) locks(ctx context.Context, id string) ([]reconcile.LockAccess, error) {
	c := call{what: "list accesses of reservation " + id, scope: ScopeAccesses}
	var resp accessesResponse
	if err := s.get(ctx, c, expand(s.opts.AccessesPath, id), nil, &resp); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusNotFound {
			e.Reason = "not found, and no reservation's accesses answered there; check accesses_path"
		}
		return nil, err
	}
	if resp.Data == nil {
		return nil, &Error{API: api, Call: c.what, Status: http.StatusOK, Reason: `malformed JSON response: no "data" array`}
	}
	s.accessesAnswer.Store(true)
	var out []reconcile.LockAccess
	for _, a := range *resp.Data {
		out = append(out, reconcile.LockAccess{LockID: string(a.LockID), LockName: a.LockName, PIN: reconcile.Secret(a.PIN.value), Unreadable: a.PIN.unreadable})
	}
	return out, nil
}

// stay converts a wire reservation to the domain's. One with an id whose
// fields keysync cannot read (a field of another JSON type, a date it
// cannot parse, a departure before the arrival) is not the read's failure
// but a stay marked Unreadable, with why (quoting no field value), its
// room where that could be read and Cancelled where its status says so:
// the run leaves what it issued for it as recorded and asks a person to
// look, while the property's other guests are keyed. A reservation
// without an id fails the read: nothing could be held for it.
func (s *Source) stay(r reservation) (reconcile.Stay, error) {
	if r.ID == "" {
		return reconcile.Stay{}, errors.New("a reservation has no id")
	}
	room := roomOf(r)
	st := reconcile.Stay{
		Ref:       reconcile.StayRef{Property: s.opts.Property, Source: reconcile.SystemGuestway, ID: string(r.ID)},
		RoomID:    room,
		RoomName:  room,
		Cancelled: r.over(),
		Guest:     string(r.GuestName),
	}
	if r.Guests.set {
		st.Guests = r.Guests.n
	}
	if r.bad != "" {
		st.Unreadable = r.bad
		return st, nil
	}
	af, df, names, err := r.dates()
	if err == nil {
		st.Arrival, st.Departure, err = s.stayDates(names, af, df)
	}
	if err == nil && st.Departure.Before(st.Arrival) {
		err = fmt.Errorf("%s is before %s", names[1], names[0])
	}
	if err != nil {
		st.Arrival, st.Departure, st.Unreadable = reconcile.Date{}, reconcile.Date{}, err.Error()
	}
	return st, nil
}

// dateField is a reservation's date field as sent: whether it was sent
// at all, and its text, or what other JSON it was (never its value).
type dateField struct {
	sent  bool
	value string
	other string // "null", "number", "object", …: not a string
}

// given reports whether the field was sent with a value: null or a blank
// string is as good as not sent (a server that sends every field).
func (d dateField) given() bool {
	return d.sent && d.other != "null" && (d.other != "" || strings.TrimSpace(d.value) != "")
}

// text reports whether the field was sent as a JSON string, not blank.
func (d dateField) text() bool { return d.sent && d.other == "" && strings.TrimSpace(d.value) != "" }

func (d *dateField) UnmarshalJSON(b []byte) error {
	*d = dateField{sent: true}
	if k := jsonKind(b); k != "string" || json.Unmarshal(b, &d.value) != nil {
		d.other = k
	}
	return nil
}

// jsonKind names the kind of a JSON value: null, boolean, number, array,
// object, string.
func jsonKind(b []byte) string {
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return "nothing"
	case t[0] == 'n':
		return "null"
	case t[0] == 't' || t[0] == 'f':
		return "boolean"
	case t[0] == '[':
		return "array"
	case t[0] == '{':
		return "object"
	case t[0] == '"':
		return "string"
	}
	return "number"
}

// datePairs are the names a reservation's arrival and departure may be
// sent under: the first as keysync assumes (the document names none),
// the others as other booking APIs name them. A pair that names an end
// date (start_date/end_date) is not among them: an end date is often the
// last night, which would end the guest's access a day early.
var datePairs = [][2]string{
	{"arrival_date", "departure_date"},
	{"check_in", "check_out"},
	{"checkin", "checkout"},
	{"check_in_date", "check_out_date"},
	{"arrival", "departure"},
}

// errNoDates is dates' error for a reservation that sends its dates under
// none of datePairs' names.
var errNoDates = errors.New("sends no arrival and departure dates under a name keysync reads")

// dates returns a reservation's arrival and departure fields and their
// names: arrival_date and departure_date where either is given; else the
// other pair of datePairs whose both are strings (two such pairs only
// where they agree, as aliases). Two that differ, or none, is an error.
func (r reservation) dates() (arr, dep dateField, names [2]string, err error) {
	fields := [][2]dateField{
		{r.Arrival, r.Departure},
		{r.CheckIn, r.CheckOut},
		{r.CheckInAlt, r.CheckOutAlt},
		{r.CheckInDate, r.CheckOutDate},
		{r.ArrivalAlt, r.DepartureAlt},
	}
	if f := fields[0]; f[0].given() || f[1].given() {
		return f[0], f[1], datePairs[0], nil
	}
	found := -1
	for i := 1; i < len(fields); i++ {
		// Another pair counts only as two strings: an "arrival" object of
		// flight details beside check_in/check_out is no date.
		if fields[i][0].text() && fields[i][1].text() {
			if found >= 0 && fields[found] != fields[i] {
				return arr, dep, names, fmt.Errorf("sends two different dates, as %s/%s and %s/%s", datePairs[found][0], datePairs[found][1], datePairs[i][0], datePairs[i][1])
			}
			if found < 0 {
				found = i
			}
		}
	}
	if found < 0 {
		return arr, dep, names, errNoDates
	}
	return fields[found][0], fields[found][1], datePairs[found], nil
}

// idField is a reservation's listing_id or unit_id: a string or an
// integer (httpapi.FlexString), or, for any other JSON, no id and the
// kind it was. It never fails the reservation's decoding, which would
// stop encoding/json reading the fields after it (the status, the
// cancellation flags).
type idField struct {
	id    httpapi.FlexString
	other string // the JSON kind, when not a string or an integer
}

func (f *idField) UnmarshalJSON(b []byte) error {
	*f = idField{}
	if f.id.UnmarshalJSON(b) != nil {
		f.other = jsonKind(b)
	}
	return nil
}

// shownString is a field keysync only shows (a guest's name): a JSON
// string, or "" for anything else, which fails no read.
type shownString string

func (s *shownString) UnmarshalJSON(b []byte) error {
	var v string
	if json.Unmarshal(b, &v) == nil {
		*s = shownString(v)
	}
	return nil
}

// guestsField is a reservation's guest count, only shown: an object of
// adults and children, or a number; anything else is no count.
type guestsField struct {
	n   int
	set bool
}

func (g *guestsField) UnmarshalJSON(b []byte) error {
	var o struct {
		Adults   int `json:"adults"`
		Children int `json:"children"`
	}
	var n int
	switch jsonKind(b) {
	case "object":
		if json.Unmarshal(b, &o) == nil {
			*g = guestsField{n: o.Adults + o.Children, set: true}
		}
	case "number":
		if json.Unmarshal(b, &n) == nil {
			*g = guestsField{n: n, set: true}
		}
	}
	return nil
}

// roomOf is the room a reservation is in: its unit, or where it has none
// its listing. A unit id of 0 is taken as none, as null is: ids start at
// 1, and a unit "0" no config names would leave the listing's guest
// unkeyed.
func roomOf(r reservation) string {
	if r.UnitID.other != "" || r.ListingID.other != "" {
		return "" // not known: see stay
	}
	unit := r.UnitID.id
	if unit == "0" {
		unit = ""
	}
	return string(cmp.Or(unit, r.ListingID.id))
}

// stayDates reads a reservation's arrival_date and departure_date: each a
// YYYY-MM-DD date, as keysync assumes, or a date-time, as a server may
// send (the Guestway document names no field). A date-time without an
// offset is the property's own: its date. Instants (with an offset, or Z)
// are check-in and check-out times, read for their day in the property's
// zone (Options.Location), which a server that writes local midnight in
// UTC (2026-11-22T23:00:00Z for the 23rd in Ljubljana) also gets right;
// but where neither instant has a time of day but midnight in its own
// offset, they are dates written as date-times (2026-11-23T00:00:00Z for
// the 23rd), read as written: a midnight instant alone cannot tell the
// two apart, while 16:00 in Los Angeles is 00:00Z the next day. Beside a
// timed arrival, a departure at midnight in its own offset is still
// either: it is read for the later of its two days, so a date written
// that way west of UTC does not end the guest's access a night early
// (a check-out as late as 16:00 in Los Angeles then keeps the door a day
// longer instead). Its errors name the field and quote no value.
func (s *Source) stayDates(names [2]string, arrival, departure dateField) (arr, dep reconcile.Date, err error) {
	a, aerr := readWireDate(arrival)
	d, derr := readWireDate(departure)
	switch {
	case aerr != nil:
		return arr, dep, fmt.Errorf("%s %w", names[0], aerr)
	case derr != nil:
		return arr, dep, fmt.Errorf("%s %w", names[1], derr)
	}
	timed := a.instant && !a.midnight || d.instant && !d.midnight
	for _, f := range []struct {
		name string
		w    *wireDate
	}{{names[0], &a}, {names[1], &d}} {
		if !f.w.instant || !timed {
			continue
		}
		if s.opts.Location == nil {
			return arr, dep, fmt.Errorf("%s is a date-time, and the property's time zone to tell its day in is not known", f.name)
		}
		local := reconcile.DateOf(f.w.at.In(s.opts.Location))
		if f.w == &d && d.midnight && local.Before(d.date) {
			continue // the later of its days: as written
		}
		f.w.date = local
	}
	return a.date, d.date, nil
}

// wireDate is a date field as sent: its date as written, and for an
// instant (a date-time with an offset) the instant and whether it is
// midnight in its own offset.
type wireDate struct {
	date              reconcile.Date
	at                time.Time
	instant, midnight bool
}

// readWireDate reads a YYYY-MM-DD date, a date-time without an offset, or
// an RFC 3339 date-time, sent as a JSON string.
func readWireDate(f dateField) (wireDate, error) {
	switch {
	case !f.sent:
		return wireDate{}, errors.New("is not sent")
	case f.other != "":
		return wireDate{}, fmt.Errorf("is a JSON %s, not a date", f.other)
	}
	v := f.value
	if d, err := reconcile.ParseDate(v); err == nil {
		return wireDate{date: d}, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02T15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			return wireDate{date: reconcile.DateOf(t)}, nil
		}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return wireDate{}, errors.New("is not a YYYY-MM-DD date or an RFC 3339 date-time")
	}
	midnight := t.Hour() == 0 && t.Minute() == 0 && t.Second() == 0 && t.Nanosecond() == 0
	return wireDate{date: reconcile.DateOf(t), at: t, instant: true, midnight: midnight}, nil
}

// cancelled reports whether a status means the reservation is cancelled:
// one of its words (split at anything but a letter, any case) is
// "cancelled" or "canceled", so "CANCELLED_BY_GUEST" and
// "canceled-by-host" are, and "cancellation_requested" is not; and no
// word undoes it (undoWords, anywhere: "cancelled_reverted") and none
// before it denies it (notWords: "not_cancelled", "un-cancelled"), while
// one after it qualifies the cancellation ("cancelled_no_refund",
// "cancelled_no_show" are cancelled). Unknown statuses are not: a new
// status must never revoke a guest's door.
func cancelled(status string) bool {
	said := false
	for _, w := range statusWords(status) {
		switch {
		case undoWords[w], notWords[w] && !said:
			return false
		case w == "cancelled" || w == "canceled":
			said = true
		}
	}
	return said
}

// statusWords splits a status into its words, lower case, at anything but
// a letter.
func statusWords(status string) []string {
	return strings.FieldsFunc(strings.ToLower(status), func(r rune) bool { return !unicode.IsLetter(r) })
}

// ended reports whether a status that names no cancellation says the
// booking will not be stayed, or is no longer: the status as a whole, its
// words joined, is an end (endWords: "declined", "expired", "no_show",
// "checked_out", …), once leading words for who ended it or for the
// booking itself (actorWords: "auto_declined", "request_declined",
// "inquiry_expired") and a trailing "by …" ("declined_by_host") are set
// aside. An end word inside a longer
// status ("payment_declined", "expired_payment_retry") is about something
// else: a live booking. A guest who checked out early is ended: a door
// left open after the guest left is the failure to avoid.
func ended(status string) bool {
	words := statusWords(status)
	if i := slices.Index(words, "by"); i > 0 {
		words = words[:i]
	}
	for len(words) > 1 && actorWords[words[0]] {
		words = words[1:]
	}
	return endWords[strings.Join(words, "")]
}

// actorWords, lower case, may lead a status to say who ended a booking,
// or that it is the booking that ended ("request_declined",
// "inquiry_expired").
var actorWords = map[string]bool{
	"auto": true, "host": true, "guest": true, "owner": true, "system": true, "admin": true,
	"booking": true, "reservation": true, "request": true, "inquiry": true, "enquiry": true, "stay": true,
}

// endWords are the statuses, lower case and their words joined, that end
// a booking without naming a cancellation.
var endWords = map[string]bool{
	"declined": true, "rejected": true, "denied": true, "refused": true, "expired": true,
	"void": true, "voided": true, "annulled": true, "deleted": true, "removed": true,
	"noshow": true, "checkedout": true,
}

// notWords, lower case, deny a cancellation named after them
// ("not_cancelled", "un-cancelled", "never_cancelled").
var notWords = map[string]bool{"not": true, "no": true, "non": true, "un": true, "never": true}

// undoWords, lower case, undo a cancellation a status names, wherever
// they stand ("cancelled_reverted", "reinstated_after_cancelled").
var undoWords = map[string]bool{
	"reverted": true, "reversed": true, "undone": true, "undo": true, "revoked": true,
	"reinstated": true, "restored": true, "withdrawn": true, "rejected": true, "declined": true, "denied": true,
}

// checkReservationPath tells a gone reservation from a wrong
// ReservationPath, which the Guestway document does not name: after a
// look-up answered 404, it looks up one reservation the latest list
// returned (or, with no list read yet, the list's first page), not one of
// asked. A 404 for that one means the path is wrong, a failure naming
// reservation_path (ErrEndpoint), so no stay is taken for gone; any other
// failure fails the look-up too. With no such reservation the 404s stand.
func (s *Source) checkReservationPath(ctx context.Context, asked []string) error {
	var listed []string
	if l := s.listed.Load(); l != nil {
		listed = *l
	} else {
		// No list read yet (a targeted run reads by id only): the first
		// page of the list, unfiltered, names reservations that exist.
		c := call{what: "list reservations (to check the reservation path after a 404)", scope: ScopeReservations}
		var resp listResponse
		if err := s.get(ctx, c, s.opts.ReservationsPath, url.Values{"page": {"1"}}, &resp); err != nil {
			return err
		}
		if resp.Data != nil {
			for _, r := range *resp.Data {
				if !r.over() {
					listed = append(listed, string(r.ID))
				}
			}
		}
		s.listed.Store(&listed) // a later 404 in the run checks against it
	}
	i := slices.IndexFunc(listed, func(id string) bool { return !slices.Contains(asked, id) })
	if i < 0 {
		return nil
	}
	c := call{what: "get reservation " + listed[i] + " (listed, to check the path after a 404)", scope: ScopeReservations}
	var resp oneResponse
	err := s.get(ctx, c, expand(s.opts.ReservationPath, listed[i]), nil, &resp)
	if errors.Is(err, reconcile.ErrNotFound) || err == nil && resp.Null {
		return &Error{API: api, Call: c.what, Status: http.StatusNotFound, Err: reconcile.ErrEndpoint, Field: "guestway.reservation_path",
			Reason: "nothing at the reservation path for a reservation the list returned; check reservation_path"}
	}
	return err
}

// expand puts an escaped id into a path's {id}.
func expand(path, id string) string {
	return strings.ReplaceAll(path, "{id}", url.PathEscape(id))
}

// Wire types: only the fields keysync reads; unknown ones are ignored.

type listResponse struct {
	Data  *[]reservation `json:"data"`
	Meta  *listMeta      `json:"meta"`
	Links *listLinks     `json:"links"`
	// bare says the page was a bare JSON array: only then does its Link
	// header speak for it (linkNext).
	bare bool
}

// UnmarshalJSON reads a page of the list. The Guestway document shows no
// answer: besides {"data": [...], "meta": {...}}, a page may be a bare
// JSON array of reservations, as many APIs answer, with nothing said of
// the paging in the body (its Link header may say it: linkNext).
func (r *listResponse) UnmarshalJSON(b []byte) error {
	if bare, err := bareArray(b, &r.Data); bare {
		r.Meta, r.bare = &listMeta{}, true
		return err
	}
	type plain listResponse
	return json.Unmarshal(b, (*plain)(r))
}

// bareArray decodes b into *data when b is a JSON array (bare true), as
// a list answered without an envelope.
func bareArray[T any](b []byte, data **[]T) (bare bool, err error) {
	if jsonKind(b) != "array" {
		return false, nil
	}
	var v []T
	if err := json.Unmarshal(b, &v); err != nil {
		return true, err
	}
	*data = &v
	return true, nil
}

// linkNext reads an RFC 8288 Link header as links.next is read: a link
// of rel "next" says the list goes on; one that links other pages of the
// list (rel "prev", "first" or "last") but no next, that it ends; no
// Link header, or one of links that are not pages (a gateway's
// "deprecation", "describedby"), says nothing (nil). The next link's
// target is not followed: the list is paged by page, as ever.
func linkNext(h http.Header) *listLinks {
	paging := false
	for _, v := range h.Values("Link") {
		for _, link := range strings.Split(v, ",") {
			target, params, _ := strings.Cut(link, ";")
			for _, p := range strings.Split(params, ";") {
				name, value, _ := strings.Cut(strings.TrimSpace(p), "=")
				if !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.ToLower(strings.Trim(strings.TrimSpace(value), `"`))) {
					switch {
					case rel == "next" && strings.TrimSpace(target) != "":
						return &listLinks{Next: json.RawMessage(`"next"`)}
					case rel == "prev" || rel == "previous" || rel == "first" || rel == "last":
						paging = true
					}
				}
			}
		}
	}
	if !paging {
		return nil
	}
	return &listLinks{Next: json.RawMessage(`null`)}
}

type listMeta struct {
	Page    int   `json:"page"`
	PerPage int   `json:"per_page"`
	Total   *int  `json:"total"`    // nil: not sent
	HasMore *bool `json:"has_more"` // nil: not sent
	// NextCursor is nil when not sent, JSON null at the list's end.
	NextCursor json.RawMessage `json:"next_cursor"`
}

// nextCursor is the meta's next_cursor, a string or an integer, or "".
func (m *listMeta) nextCursor() string {
	var c httpapi.FlexString
	if json.Unmarshal(m.NextCursor, &c) != nil {
		return ""
	}
	return string(c)
}

type listLinks struct {
	// Next is nil when not sent, JSON null at the list's end.
	Next json.RawMessage `json:"next"`
}

// next says what links.next says of the list: 1 it goes on (a link), 0
// it ends (null or ""), -1 nothing (not sent, or no links).
func (l *listLinks) next() int {
	if l == nil || l.Next == nil {
		return -1
	}
	var u string
	if json.Unmarshal(l.Next, &u) != nil || u == "" {
		return 0
	}
	return 1
}

type oneResponse struct {
	Data *reservation `json:"data"`
	// Null says the answer held "data": null, where a missing member
	// leaves it false: a server that answers for a deleted reservation
	// that way, not with 404 or 410, is read as saying it is gone.
	Null bool `json:"-"`
}

// UnmarshalJSON reads the answer and whether its data is null. An
// object without "data" that has an "id" is the reservation itself, as a
// server answering without an envelope sends it (the Guestway document
// shows no answer).
func (r *oneResponse) UnmarshalJSON(b []byte) error {
	var raw struct {
		Data json.RawMessage `json:"data"`
		ID   json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = oneResponse{Null: string(raw.Data) == "null"}
	switch {
	case (len(raw.Data) == 0 || r.Null) && len(raw.ID) > 0 && string(raw.ID) != "null":
		// The reservation itself, whatever a field of its own named
		// "data" holds.
		raw.Data, r.Null = b, false
	case len(raw.Data) == 0 || r.Null:
		return nil
	}
	r.Data = new(reservation)
	return json.Unmarshal(raw.Data, r.Data)
}

type reservation struct {
	ID        httpapi.FlexString `json:"id"`
	Status    string             `json:"status"`
	Arrival   dateField          `json:"arrival_date"`
	Departure dateField          `json:"departure_date"`
	// The same dates named as other APIs name them, read only where
	// neither arrival_date nor departure_date is sent (see dates).
	CheckIn      dateField   `json:"check_in"`
	CheckOut     dateField   `json:"check_out"`
	CheckInAlt   dateField   `json:"checkin"`
	CheckOutAlt  dateField   `json:"checkout"`
	CheckInDate  dateField   `json:"check_in_date"`
	CheckOutDate dateField   `json:"check_out_date"`
	ArrivalAlt   dateField   `json:"arrival"`
	DepartureAlt dateField   `json:"departure"`
	ListingID    idField     `json:"listing_id"`
	UnitID       idField     `json:"unit_id"`
	GuestName    shownString `json:"guest_name"`
	Guests       guestsField `json:"guests"`
	// A cancellation or deletion said beside the status, as a server may
	// (the Guestway document names no field): read as a cancelled status.
	IsCancelled httpapi.LooseFlag  `json:"is_cancelled"`
	Cancelled   httpapi.LooseFlag  `json:"cancelled"`
	CancelledAt httpapi.LooseStamp `json:"cancelled_at"`
	CanceledAt  httpapi.LooseStamp `json:"canceled_at"`
	DeletedAt   httpapi.LooseStamp `json:"deleted_at"`
	// bad is why the reservation's JSON could not be read as a whole (a
	// field of a type keysync does not read); its id is read all the same.
	bad string
}

// UnmarshalJSON reads a reservation. One with a field of a JSON type
// keysync does not read fails no list: its other fields are read all the
// same (its id, status and cancellation flags; its room unknown when the
// odd field is a listing or unit id), and bad says which field was of
// what kind (never its value), for stay to mark the stay unreadable.
// One whose id cannot be read fails the list.
func (r *reservation) UnmarshalJSON(b []byte) error {
	type plain reservation
	err := json.Unmarshal(b, (*plain)(r))
	if err == nil {
		for _, f := range []struct {
			name string
			id   idField
		}{{"listing_id", r.ListingID}, {"unit_id", r.UnitID}} {
			if f.id.other != "" {
				r.bad = fmt.Sprintf("%s is a JSON %s, not an id", f.name, f.id.other)
			}
		}
		return nil
	}
	// Only a field of a plain Go type (the status) fails with a type
	// error, after which the others are read; any other error (the id's
	// own) fails the list.
	var te *json.UnmarshalTypeError
	if r.ID == "" || !errors.As(err, &te) || te.Field == "id" {
		return err
	}
	r.bad = fmt.Sprintf("%s is a JSON %s, not what keysync reads", cmp.Or(te.Field, "a field"), te.Value)
	return nil
}

// over reports whether r will not be stayed, or is no longer: its status
// is cancelled or ended, or a flag or time beside it says it is cancelled
// or deleted.
func (r *reservation) over() bool {
	return cancelled(r.Status) || ended(r.Status) ||
		bool(r.IsCancelled) || bool(r.Cancelled) || bool(r.CancelledAt) || bool(r.CanceledAt) || bool(r.DeletedAt)
}

type accessesResponse struct {
	Data *[]access `json:"data"`
}

type access struct {
	ID       httpapi.FlexString `json:"id"`
	LockID   httpapi.FlexString `json:"lock_id"`
	LockName string             `json:"lock_name"`
	PIN      pinField           `json:"pin"`
}

// UnmarshalJSON reads a reservation's accesses, as {"data": [...]} or a
// bare JSON array (see listResponse).
func (r *accessesResponse) UnmarshalJSON(b []byte) error {
	if bare, err := bareArray(b, &r.Data); bare {
		return err
	}
	type plain accessesResponse
	return json.Unmarshal(b, (*plain)(r))
}

// pinField is an access's "pin", a JSON string. Any other value (a
// number, whose leading zeros are lost: 004821 arrives as 4821) is no PIN
// keysync can show a person, and is kept as unreadable instead of failing
// the read: a PIN is only shown (the plan's lock notes), while the read
// also decides whose access is kept or withdrawn.
type pinField struct {
	value      string
	unreadable bool
}

func (p *pinField) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if json.Unmarshal(b, &p.value) != nil {
		p.value, p.unreadable = "", true
	}
	return nil
}
