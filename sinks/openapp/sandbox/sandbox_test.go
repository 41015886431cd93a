package sandbox

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keysync/keysync/internal/sandboxkit"
	"github.com/keysync/keysync/internal/sandboxkit/sandboxtest"
)

var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

const (
	ourKey   = "key-ours-CANARY"
	staffKey = "key-staff"
	otherKey = "key-other"
	orgA     = "org_a"
	orgB     = "org_b"
	intA     = "int_a"
	intA2    = "int_a2"
	intB     = "int_b"
)

// env is a sandbox served for one test, with the requests the tests send.
type env struct{ *sandboxtest.Env[*Server] }

// newEnv starts a sandbox with two orgs: org_a (keys ourKey and staffKey;
// integrations int_a with portals lobby, garage, door-101, door-102, and
// int_a2 with door-a2) and org_b (otherKey; int_b with gate-b).
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	opts.APIKeys = map[string]string{ourKey: orgA, staffKey: orgA, otherKey: orgB}
	opts.Integrations = map[string]string{intA: orgA, intA2: orgA, intB: orgB}
	opts.Portals = map[string]string{"lobby": intA, "garage": intA, "door-101": intA, "door-102": intA, "door-a2": intA2}
	if opts.Now.IsZero() {
		opts.Now = t0
	}
	sb := New(opts)
	sb.AddPortal("gate-b", intB)
	return &env{sandboxtest.Start(t, sb)}
}

type answer = sandboxtest.Answer

// do sends a request; key and org set Authorization and X-Org when not
// empty, and a body is sent as application/json.
func (e *env) do(method, path, key, org, body string) answer {
	e.T.Helper()
	var bearer string
	if key != "" {
		bearer = "Bearer " + key
	}
	return sandboxtest.Call(e.T, e.Srv, method, path, body, sandboxtest.Header("Authorization", bearer), sandboxtest.Header("X-Org", org))
}

func (e *env) send(req *http.Request) answer {
	e.T.Helper()
	return sandboxtest.Send(e.T, e.Srv.Client(), req)
}

func invitesPath(integration string) string {
	return "/integrations/" + integration + "/access-invites"
}

// create makes an invite as ourKey in int_a and returns its link id and token.
func (e *env) create(body string) (id, token string) {
	e.T.Helper()
	a := e.do("POST", invitesPath(intA), ourKey, orgA, body)
	if a.Status != http.StatusCreated {
		e.T.Fatalf("create: %d %s", a.Status, a.Raw)
	}
	id, _ = a.Body["invite_link_id"].(string)
	token, _ = a.Body["invite_token"].(string)
	if id == "" || token == "" {
		e.T.Fatalf("create answer lacks id or token: %s", a.Raw)
	}
	return id, token
}

func (e *env) invite(id string) InviteView {
	e.T.Helper()
	v, ok := e.SB.Invite(id)
	if !ok {
		e.T.Fatalf("no invite %s", id)
	}
	return v
}

const stayBody = `{"portal_ids":["door-101","lobby"],"name":"Guest — June stay","valid_from":"2026-06-01T15:00:00Z","valid_to":"2026-06-05T11:00:00Z","max_uses":30}`

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestCreate(t *testing.T) {
	t.Parallel()
	type check func(t *testing.T, v InviteView)
	window := func(from, to string) check {
		return func(t *testing.T, v InviteView) {
			if !v.ValidFrom.Equal(ts(from)) || !v.ValidTo.Equal(ts(to)) {
				t.Errorf("window %s – %s, want %s – %s", v.ValidFrom, v.ValidTo, from, to)
			}
		}
	}
	const portals, name = `"portal_ids":["lobby"],"name":"n"`, `"name":"n"`
	tests := []struct {
		name        string
		key, org    string
		integration string
		contentType string // default application/json
		body        string
		status      int
		contains    string // in the error message
		check       check
	}{
		{name: "no Authorization", key: "-", body: stayBody, status: 401, contains: "Bearer"},
		{name: "unknown key", key: "nope", body: stayBody, status: 401},
		{name: "not a bearer scheme", key: "Basic " + ourKey, body: stayBody, status: 401},
		{name: "no X-Org", org: "-", body: stayBody, status: 403, contains: "X-Org"},
		{name: "X-Org of another organization", org: orgB, body: stayBody, status: 403, contains: "X-Org"},
		{name: "integration of another organization", integration: intB, body: stayBody, status: 404, contains: "integration"},
		{name: "unknown integration", integration: "int_zz", body: stayBody, status: 404},
		{name: "not JSON content type", contentType: "text/plain", body: stayBody, status: 415},
		{name: "malformed JSON", body: `{"portal_ids":`, status: 400, contains: "JSON"},
		{name: "JSON array", body: `[]`, status: 400},
		{name: "portal_ids missing", body: `{"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "portal_ids"},
		{name: "portal_ids empty", body: `{"portal_ids":[],"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "portal_ids"},
		{name: "portal_ids not a list", body: `{"portal_ids":"lobby","name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "portal_ids"},
		{name: "portal of another org", body: `{"portal_ids":["lobby","gate-b"],"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 422, contains: "portal_ids[1]"},
		{name: "portal of another integration", body: `{"portal_ids":["door-a2"],"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 422, contains: "portal_ids[0]"},
		{name: "unknown portal", body: `{"portal_ids":["door-999"],"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 422, contains: "door-999"},
		{name: "empty portal id", body: `{"portal_ids":[""],"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 422, contains: "portal_ids[0]"},
		{name: "name missing", body: `{"portal_ids":["lobby"],"valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "name"},
		{name: "name blank", body: `{"portal_ids":["lobby"],"name":"  ","valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "name"},
		{name: "valid_from not RFC 3339", body: `{` + portals + `,"valid_from":"2026-06-01 15:00","valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "valid_from"},
		{name: "valid_from a date only", body: `{` + portals + `,"valid_from":"2026-06-01","valid_to":"2026-06-05T11:00:00Z"}`, status: 400, contains: "valid_from"},
		{name: "valid_to not RFC 3339", body: `{` + portals + `,"valid_to":"tomorrow"}`, status: 400, contains: "valid_to"},
		{name: "valid_to and expires_in", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z","expires_in":"P1D"}`, status: 400, contains: "mutually exclusive"},
		{name: "valid_from and starts_in", body: `{` + portals + `,"valid_from":"2026-06-01T15:00:00Z","starts_in":"1h","expires_in":"P1D"}`, status: 400, contains: "mutually exclusive"},
		{name: "no end", body: `{` + portals + `,"valid_from":"2026-06-01T15:00:00Z"}`, status: 400, contains: "valid_to or expires_in"},
		{name: "end before start", body: `{` + portals + `,"valid_from":"2026-06-05T11:00:00Z","valid_to":"2026-06-01T15:00:00Z"}`, status: 422, contains: "valid_to"},
		{name: "end equal to start", body: `{` + portals + `,"valid_from":"2026-06-05T11:00:00Z","valid_to":"2026-06-05T11:00:00Z"}`, status: 422},
		{name: "max_uses 0", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z","max_uses":0}`, status: 422, contains: "max_uses"},
		{name: "expires_in in years", body: `{` + portals + `,"expires_in":"P1Y"}`, status: 400, contains: "expires_in"},
		{name: "expires_in garbage", body: `{` + portals + `,"expires_in":"soon"}`, status: 400, contains: "expires_in"},
		{name: "expires_in zero", body: `{` + portals + `,"expires_in":"0h"}`, status: 400, contains: "expires_in"},
		{name: "starts_in garbage", body: `{` + portals + `,"starts_in":"later","expires_in":"1h"}`, status: 400, contains: "starts_in"},

		{
			name: "absolute window", body: stayBody, status: 201,
			check: func(t *testing.T, v InviteView) {
				window("2026-06-01T15:00:00Z", "2026-06-05T11:00:00Z")(t, v)
				if !slices.Equal(v.PortalIDs, []string{"door-101", "lobby"}) || v.Name != "Guest — June stay" || v.MaxUses != 30 ||
					!v.Enabled || v.Org != orgA || v.Integration != intA || v.CreatedBy != KeyFingerprint(ourKey) || v.Deleted {
					t.Errorf("invite %+v", v)
				}
			},
		},
		{name: "offset converted to UTC", body: `{` + portals + `,"valid_from":"2026-06-01T17:00:00+02:00","valid_to":"2026-06-05T13:00:00+02:00"}`, status: 201, check: window("2026-06-01T15:00:00Z", "2026-06-05T11:00:00Z")},
		{name: "no start: now", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z"}`, status: 201, check: window("2026-06-01T10:00:00Z", "2026-06-05T11:00:00Z")},
		{name: "expires_in P1D from now", body: `{` + portals + `,"expires_in":"P1D"}`, status: 201, check: window("2026-06-01T10:00:00Z", "2026-06-02T10:00:00Z")},
		{name: "expires_in PT2H", body: `{` + portals + `,"expires_in":"PT2H"}`, status: 201, check: window("2026-06-01T10:00:00Z", "2026-06-01T12:00:00Z")},
		{name: "expires_in 1h", body: `{` + portals + `,"expires_in":"1h"}`, status: 201, check: window("2026-06-01T10:00:00Z", "2026-06-01T11:00:00Z")},
		{name: "expires_in 1w", body: `{` + portals + `,"expires_in":"1w"}`, status: 201, check: window("2026-06-01T10:00:00Z", "2026-06-08T10:00:00Z")},
		{name: "expires_in 365d", body: `{` + portals + `,"expires_in":"365d"}`, status: 201, check: window("2026-06-01T10:00:00Z", "2027-06-01T10:00:00Z")},
		{name: "expires_in 2h30m from valid_from", body: `{` + portals + `,"valid_from":"2026-06-03T15:00:00Z","expires_in":"2h30m"}`, status: 201, check: window("2026-06-03T15:00:00Z", "2026-06-03T17:30:00Z")},
		{name: "starts_in and expires_in", body: `{` + portals + `,"starts_in":"P1D","expires_in":"PT2H"}`, status: 201, check: window("2026-06-02T10:00:00Z", "2026-06-02T12:00:00Z")},
		{name: "unknown fields ignored", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z","colour":"blue","nested":{"a":[1]}}`, status: 201},
		{name: "null counts as absent", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z","max_uses":null,"expires_in":null}`, status: 201},
		{name: "duplicate portals dropped", body: `{"portal_ids":["lobby","garage","lobby"],"name":"n","valid_to":"2026-06-05T11:00:00Z"}`, status: 201,
			check: func(t *testing.T, v InviteView) {
				if !slices.Equal(v.PortalIDs, []string{"lobby", "garage"}) {
					t.Errorf("portals %q", v.PortalIDs)
				}
			}},
		{name: "created disabled", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z","is_enabled":false}`, status: 201,
			check: func(t *testing.T, v InviteView) {
				if v.Enabled {
					t.Error("enabled")
				}
			}},
		{name: "schedules", body: `{` + name + `,"portal_ids":["garage"],"schedules":[{"valid_from":"2026-06-03T08:00:00Z","expires_in":"PT4H"},{"starts_in":"1h","valid_to":"2026-06-01T12:00:00Z"}]}`, status: 201,
			check: func(t *testing.T, v InviteView) {
				want := []Window{{ts("2026-06-01T11:00:00Z"), ts("2026-06-01T12:00:00Z")}, {ts("2026-06-03T08:00:00Z"), ts("2026-06-03T12:00:00Z")}}
				if !slices.Equal(v.Schedules, want) {
					t.Errorf("schedules %v, want %v", v.Schedules, want)
				}
				window("2026-06-01T11:00:00Z", "2026-06-03T12:00:00Z")(t, v)
			}},
		{name: "schedules and a top-level window", body: `{` + portals + `,"valid_to":"2026-06-05T11:00:00Z","schedules":[{"expires_in":"1h"}]}`, status: 400, contains: "schedules"},
		{name: "schedules entry broken", body: `{` + portals + `,"schedules":[{"expires_in":"1h"},{"valid_to":"x"}]}`, status: 400, contains: "schedules[1].valid_to"},
		{name: "schedules empty", body: `{` + portals + `,"schedules":[]}`, status: 400, contains: "schedules"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			key := "Bearer " + ourKey
			switch {
			case tc.key == "-":
				key = ""
			case strings.Contains(tc.key, " "):
				key = tc.key
			case tc.key != "":
				key = "Bearer " + tc.key
			}
			org := orgA
			if tc.org == "-" {
				org = ""
			} else if tc.org != "" {
				org = tc.org
			}
			integration := intA
			if tc.integration != "" {
				integration = tc.integration
			}
			req, _ := http.NewRequest("POST", e.Srv.URL+invitesPath(integration), strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if key != "" {
				req.Header.Set("Authorization", key)
			}
			if org != "" {
				req.Header.Set("X-Org", org)
			}
			a := e.send(req)
			if a.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tc.status, a.Raw)
			}
			if strings.Contains(a.Raw, ourKey) {
				t.Errorf("answer echoes the API key: %s", a.Raw)
			}
			if tc.status != 201 {
				msg, _ := a.Body["error"].(string)
				if msg == "" || !strings.Contains(msg, tc.contains) {
					t.Errorf("error %q, want it to mention %q", msg, tc.contains)
				}
				if n := len(e.SB.Invites()); n != 0 {
					t.Errorf("%d invites after a refused create", n)
				}
				return
			}
			invites := e.SB.Invites()
			if len(invites) != 1 || invites[0].ID != a.Body["invite_link_id"] || invites[0].Token != a.Body["invite_token"] {
				t.Fatalf("invites %+v after answer %s", invites, a.Raw)
			}
			if tc.check != nil {
				tc.check(t, invites[0])
			}
		})
	}
}

// TestErrorsNeverEcho sends values that must not come back in a refusal.
func TestErrorsNeverEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	_, token := e.create(stayBody)
	for _, body := range []string{
		`{"portal_ids":["lobby"],"name":"n","valid_from":"` + token + `","valid_to":"2026-06-05T11:00:00Z"}`,
		`{"portal_ids":["lobby"],"name":"n","valid_to":"` + token + `"}`,
		`{"portal_ids":["lobby"],"name":"n","expires_in":"` + token + `"}`,
		`{"portal_ids":["lobby"],"name":"n","starts_in":"` + token + `","expires_in":"1h"}`,
		`{"portal_ids":["lobby"],"name":"` + token + `","valid_to":"` + token,
	} {
		a := e.do("POST", invitesPath(intA), ourKey, orgA, body)
		if a.Status < 400 || strings.Contains(a.Raw, token) {
			t.Errorf("%d %s", a.Status, a.Raw)
		}
	}
	for _, path := range []string{"/public/access/invites/" + token + "x", "/public/access/invites/" + token + "x/claim"} {
		method := "GET"
		if strings.HasSuffix(path, "claim") {
			method = "POST"
		}
		if a := e.do(method, path, "", "", ""); a.Status != 404 || strings.Contains(a.Raw, token) {
			t.Errorf("%s: %d %s", path, a.Status, a.Raw)
		}
	}
	for _, r := range e.SB.Requests() {
		if strings.Contains(r.Path, token) {
			t.Errorf("request log holds a token: %+v", r)
		}
	}
}

func (e *env) public(token string) PublicInvite {
	e.T.Helper()
	a := e.do("GET", "/public/access/invites/"+token, "", "", "")
	if a.Status != 200 {
		e.T.Fatalf("guest GET: %d %s", a.Status, a.Raw)
	}
	var p PublicInvite
	if err := json.Unmarshal([]byte(a.Raw), &p); err != nil {
		e.T.Fatal(err)
	}
	return p
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	put := func(e *env, id, body string) answer {
		return e.do("PUT", invitesPath(intA)+"/"+id, ourKey, orgA, body)
	}
	tests := []struct {
		name     string
		body     string
		status   int
		contains string
		check    func(t *testing.T, before, after InviteView)
	}{
		{
			name: "narrow the end", body: `{"valid_to":"2026-06-04T11:00:00Z"}`, status: 200,
			check: func(t *testing.T, before, after InviteView) {
				if !after.ValidFrom.Equal(before.ValidFrom) || !after.ValidTo.Equal(ts("2026-06-04T11:00:00Z")) {
					t.Errorf("window %s – %s", after.ValidFrom, after.ValidTo)
				}
			},
		},
		{
			name: "move the start, keep the end", body: `{"valid_from":"2026-06-02T15:00:00Z"}`, status: 200,
			check: func(t *testing.T, before, after InviteView) {
				if !after.ValidFrom.Equal(ts("2026-06-02T15:00:00Z")) || !after.ValidTo.Equal(before.ValidTo) {
					t.Errorf("window %s – %s", after.ValidFrom, after.ValidTo)
				}
			},
		},
		{
			name: "new dates, portals and name", status: 200,
			body: `{"portal_ids":["door-102","garage","lobby"],"name":"moved","valid_from":"2026-06-02T15:00:00Z","valid_to":"2026-06-07T11:00:00Z","is_enabled":true}`,
			check: func(t *testing.T, before, after InviteView) {
				if !slices.Equal(after.PortalIDs, []string{"door-102", "garage", "lobby"}) || after.Name != "moved" ||
					!after.ValidFrom.Equal(ts("2026-06-02T15:00:00Z")) || !after.ValidTo.Equal(ts("2026-06-07T11:00:00Z")) {
					t.Errorf("after %+v", after)
				}
			},
		},
		{
			name: "expires_in counts from the current start", body: `{"expires_in":"P1D"}`, status: 200,
			check: func(t *testing.T, before, after InviteView) {
				if !after.ValidTo.Equal(before.ValidFrom.Add(24 * time.Hour)) {
					t.Errorf("valid_to %s", after.ValidTo)
				}
			},
		},
		{
			name: "disable", body: `{"is_enabled":false}`, status: 200,
			check: func(t *testing.T, before, after InviteView) {
				if after.Enabled || !after.ValidTo.Equal(before.ValidTo) || !slices.Equal(after.PortalIDs, before.PortalIDs) {
					t.Errorf("after %+v", after)
				}
			},
		},
		{name: "empty body object changes nothing", body: `{}`, status: 200},
		{name: "end before start", body: `{"valid_to":"2026-05-01T00:00:00Z"}`, status: 422, contains: "valid_to"},
		{name: "valid_to and expires_in", body: `{"valid_to":"2026-06-04T11:00:00Z","expires_in":"1h"}`, status: 400, contains: "mutually exclusive"},
		{name: "bad RFC 3339", body: `{"valid_from":"01.06.2026"}`, status: 400, contains: "valid_from"},
		{name: "foreign portal", body: `{"portal_ids":["gate-b"]}`, status: 422, contains: "portal_ids[0]"},
		{name: "empty portal_ids", body: `{"portal_ids":[]}`, status: 400, contains: "portal_ids"},
		{name: "blank name", body: `{"name":""}`, status: 400, contains: "name"},
		{name: "all or nothing", body: `{"is_enabled":false,"portal_ids":["gate-b"]}`, status: 422},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, Options{})
			id, token := e.create(stayBody)
			before := e.invite(id)
			e.SB.Advance(time.Hour)
			a := put(e, id, tc.body)
			if a.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.Status, tc.status, a.Raw)
			}
			after := e.invite(id)
			if after.ID != id || after.Token != token {
				t.Fatalf("update changed the link: %s/%s", after.ID, after.Token)
			}
			if strings.Contains(a.Raw, token) {
				t.Errorf("answer holds the token: %s", a.Raw)
			}
			if tc.status != 200 {
				if msg, _ := a.Body["error"].(string); !strings.Contains(msg, tc.contains) {
					t.Errorf("error %q, want it to mention %q", msg, tc.contains)
				}
				if !equalViews(before, after) {
					t.Errorf("refused update changed the invite:\n%+v\n%+v", before, after)
				}
				return
			}
			if tc.check != nil {
				tc.check(t, before, after)
			}
			// The guest side shows the same.
			p := e.public(token)
			if !p.ValidFrom.Equal(after.ValidFrom) || !p.ValidTo.Equal(after.ValidTo) || p.Enabled != after.Enabled || !slices.Equal(p.PortalIDs, after.PortalIDs) {
				t.Errorf("guest view %+v, invite %+v", p, after)
			}
		})
	}
}

// equalViews compares invites, ignoring UpdatedAt.
func equalViews(a, b InviteView) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	aj, _ := json.Marshal(a)
	bj, _ := json.Marshal(b)
	return bytes.Equal(aj, bj)
}

func TestUpdateAndDeleteScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	id, token := e.create(stayBody)
	a2 := e.do("POST", invitesPath(intA2), ourKey, orgA, `{"portal_ids":["door-a2"],"name":"n","expires_in":"1h"}`)
	if a2.Status != 201 {
		t.Fatal(a2.Raw)
	}
	otherID := a2.Body["invite_link_id"].(string)
	for _, tc := range []struct {
		method, path, key, org, body string
		status                       int
	}{
		{"PUT", invitesPath(intA) + "/inv_999999", ourKey, orgA, `{"is_enabled":false}`, 404},
		{"DELETE", invitesPath(intA) + "/inv_999999", ourKey, orgA, ``, 404},
		{"PUT", invitesPath(intA) + "/" + otherID, ourKey, orgA, `{"is_enabled":false}`, 404}, // another integration's invite
		{"DELETE", invitesPath(intA) + "/" + otherID, ourKey, orgA, ``, 404},
		{"PUT", invitesPath(intA) + "/" + id, otherKey, orgB, `{"is_enabled":false}`, 404}, // another org's integration
		{"PUT", invitesPath(intA) + "/" + id, otherKey, orgA, `{"is_enabled":false}`, 403},
		{"DELETE", invitesPath(intA) + "/" + id, "", orgA, ``, 401},
		{"PUT", invitesPath(intA) + "/" + id, ourKey, "", `{"is_enabled":false}`, 403},
	} {
		if a := e.do(tc.method, tc.path, tc.key, tc.org, tc.body); a.Status != tc.status {
			t.Errorf("%s %s as %s/%s: %d, want %d: %s", tc.method, tc.path, tc.key, tc.org, a.Status, tc.status, a.Raw)
		}
	}
	if v := e.invite(id); !v.Enabled || v.Deleted {
		t.Fatalf("invite changed: %+v", v)
	}

	// A key of the same organisation may change invites it did not create.
	if a := e.do("PUT", invitesPath(intA)+"/"+id, staffKey, orgA, `{"name":"renamed by staff"}`); a.Status != 200 {
		t.Errorf("staff PUT: %d %s", a.Status, a.Raw)
	}

	if a := e.do("DELETE", invitesPath(intA)+"/"+id, ourKey, orgA, ""); a.Status != 204 || a.Raw != "" {
		t.Fatalf("DELETE: %d %q", a.Status, a.Raw)
	}
	if v := e.invite(id); !v.Deleted {
		t.Errorf("not marked deleted: %+v", v)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"DELETE", invitesPath(intA) + "/" + id, ""},
		{"PUT", invitesPath(intA) + "/" + id, `{"is_enabled":true}`},
		{"GET", "/public/access/invites/" + token, ""},
	} {
		if a := e.do(tc.method, tc.path, ourKey, orgA, tc.body); a.Status != 404 {
			t.Errorf("%s after delete: %d %s", tc.method, a.Status, a.Raw)
		}
	}
}

// TestChangesForbidden checks SetChangesForbidden: a PUT or DELETE of a
// live invite is refused 403 with the invite left as it was, one of a
// missing invite is still 404, and switching it off lets the change
// through.
func TestChangesForbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	id, _ := e.create(stayBody)
	e.SB.SetChangesForbidden(true)
	for _, tc := range []struct{ method, path, body, msg string }{
		{"PUT", invitesPath(intA) + "/" + id, `{"is_enabled":false}`, "forbidden: this invite cannot be changed"},
		{"DELETE", invitesPath(intA) + "/" + id, ``, "forbidden: this invite cannot be deleted"},
	} {
		a := e.do(tc.method, tc.path, ourKey, orgA, tc.body)
		if a.Status != http.StatusForbidden || a.Body["error"] != tc.msg {
			t.Errorf("%s while forbidden: %d %s, want 403 %q", tc.method, a.Status, a.Raw, tc.msg)
		}
	}
	if a := e.do("PUT", invitesPath(intA)+"/inv_999999", ourKey, orgA, `{"is_enabled":false}`); a.Status != http.StatusNotFound {
		t.Errorf("PUT of a missing invite while forbidden: %d %s, want 404", a.Status, a.Raw)
	}
	if v := e.invite(id); !v.Enabled || v.Deleted {
		t.Fatalf("invite changed while forbidden: %+v", v)
	}
	e.SB.SetChangesForbidden(false)
	if a := e.do("DELETE", invitesPath(intA)+"/"+id, ourKey, orgA, ""); a.Status != http.StatusNoContent {
		t.Errorf("DELETE once allowed: %d %s", a.Status, a.Raw)
	}
}

// TestList checks the list route: the integration's invites that are not
// deleted, enabled or not and by any key of the organisation, oldest
// first, in pages; the same auth and X-Org checks as the other routes.
func TestList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	var ids []string
	for i := range 5 {
		id, _ := e.create(`{"portal_ids":["lobby"],"name":"n` + string(rune('0'+i)) + `","valid_from":"2026-06-01T15:00:00Z","valid_to":"2026-06-05T11:00:00Z"}`)
		ids = append(ids, id)
	}
	if a := e.do("DELETE", invitesPath(intA)+"/"+ids[1], ourKey, orgA, ""); a.Status != 204 {
		t.Fatal(a.Raw)
	}
	if a := e.do("PUT", invitesPath(intA)+"/"+ids[2], ourKey, orgA, `{"is_enabled":false}`); a.Status != 200 {
		t.Fatal(a.Raw)
	}
	staff, err := e.SB.AddInvite(Planted{Integration: intA, CreatedBy: staffKey, Name: "staff", PortalIDs: []string{"garage"}, ValidFrom: t0, ValidTo: t0.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.SB.AddInvite(Planted{Integration: intA2, CreatedBy: ourKey, Name: "other integration", PortalIDs: []string{"door-a2"}, ValidFrom: t0, ValidTo: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	want := []string{ids[0], ids[2], ids[3], ids[4], staff.ID}

	page := func(query string) ([]string, answer) {
		t.Helper()
		a := e.do("GET", invitesPath(intA)+query, ourKey, orgA, "")
		if a.Status != 200 {
			t.Fatalf("GET %s: %d %s", query, a.Status, a.Raw)
		}
		var got []string
		for _, d := range a.Body["data"].([]any) {
			got = append(got, d.(map[string]any)["invite_link_id"].(string))
		}
		return got, a
	}
	got, a := page("")
	if !slices.Equal(got, want) || a.Body["has_more"] != false || a.Body["page"] != 1.0 || a.Body["per_page"] != float64(DefaultPerPage) {
		t.Errorf("first page %v %s, want %v", got, a.Raw, want)
	}
	item := a.Body["data"].([]any)[1].(map[string]any)
	v := e.invite(ids[2])
	for field, w := range map[string]any{
		"invite_token": v.Token, "name": "n2", "valid_from": "2026-06-01T15:00:00Z",
		"valid_to": "2026-06-05T11:00:00Z", "is_enabled": false,
	} {
		if item[field] != w {
			t.Errorf("%s = %v, want %v", field, item[field], w)
		}
	}
	if p, _ := item["portal_ids"].([]any); len(p) != 1 || p[0] != "lobby" {
		t.Errorf("portal_ids %v", item["portal_ids"])
	}
	var walked []string
	for n := 1; ; n++ {
		got, a := page("?per_page=2&page=" + string(rune('0'+n)))
		walked = append(walked, got...)
		if a.Body["has_more"] != true {
			break
		}
	}
	if !slices.Equal(walked, want) {
		t.Errorf("pages of 2: %v, want %v", walked, want)
	}
	if got, a := page("?page=9"); len(got) != 0 || a.Body["has_more"] != false || !strings.Contains(a.Raw, `"data":[]`) {
		t.Errorf("past the end: %s", a.Raw)
	}
	for _, q := range []string{"?page=0", "?page=x", "?per_page=0", "?per_page=101", "?page=-1"} {
		if a := e.do("GET", invitesPath(intA)+q, ourKey, orgA, ""); a.Status != 400 {
			t.Errorf("%s: %d %s", q, a.Status, a.Raw)
		}
	}
	for _, tc := range []struct {
		path, key, org string
		status         int
	}{
		{invitesPath(intA), "", orgA, 401},
		{invitesPath(intA), "nope", orgA, 401},
		{invitesPath(intA), ourKey, "", 403},
		{invitesPath(intA), otherKey, orgA, 403},
		{invitesPath(intA), otherKey, orgB, 404},
		{invitesPath(intB), ourKey, orgA, 404},
		{invitesPath("int_nope"), ourKey, orgA, 404},
	} {
		if a := e.do("GET", tc.path, tc.key, tc.org, ""); a.Status != tc.status || strings.Contains(a.Raw, "oat_") {
			t.Errorf("GET %s as %q/%q: %d, want %d: %s", tc.path, tc.key, tc.org, a.Status, tc.status, a.Raw)
		}
	}
	if a := e.do("GET", invitesPath(intB), otherKey, orgB, ""); a.Status != 200 || !strings.Contains(a.Raw, `"data":[]`) {
		t.Errorf("org_b's integration: %d %s", a.Status, a.Raw)
	}
	reqs := e.SB.Requests()
	if r := reqs[len(reqs)-1]; r.Method != "GET" || r.Path != invitesPath(intB) || r.Status != 200 || r.Org != orgB {
		t.Errorf("request log %+v", r)
	}
}

func TestGuestSide(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	id, token := e.create(`{"portal_ids":["lobby","door-101"],"name":"n","valid_from":"2026-06-01T15:00:00Z","valid_to":"2026-06-05T11:00:00Z","max_uses":2}`)
	p := e.public(token)
	if p.ID != id || !p.ValidFrom.Equal(ts("2026-06-01T15:00:00Z")) || !p.ValidTo.Equal(ts("2026-06-05T11:00:00Z")) ||
		!p.Enabled || p.MaxUses == nil || *p.MaxUses != 2 || p.Uses != 0 || p.Status != StatusNotYetValid ||
		!slices.Equal(p.PortalIDs, []string{"lobby", "door-101"}) || len(p.Grants) != 2 || p.Grants[0].Action != "portal_open" {
		t.Fatalf("guest view %+v", p)
	}
	execute := func(grant string) answer {
		return e.do("POST", "/public/access/invites/"+token+"/execute", "", "", `{"grant_id":"`+grant+`"}`)
	}
	if a := execute(p.Grants[0].GrantID); a.Status != 403 || !strings.Contains(a.Raw, "not yet valid") {
		t.Errorf("execute before the window: %d %s", a.Status, a.Raw)
	}
	if a := e.do("POST", "/public/access/invites/"+token+"/claim", "", "", ""); a.Status != 200 {
		t.Errorf("claim: %d %s", a.Status, a.Raw)
	}
	e.SB.SetNow(ts("2026-06-02T09:00:00Z"))
	if s := e.public(token).Status; s != StatusActive {
		t.Errorf("status in the window: %s", s)
	}
	if a := execute("grant_gate-b"); a.Status != 400 {
		t.Errorf("execute with a foreign grant: %d %s", a.Status, a.Raw)
	}
	for i := 0; i < 2; i++ {
		if a := execute(p.Grants[1].GrantID); a.Status != 200 || a.Body["opened"] != "door-101" {
			t.Errorf("execute %d: %d %s", i, a.Status, a.Raw)
		}
	}
	if a := execute(p.Grants[0].GrantID); a.Status != 403 || !strings.Contains(a.Raw, "used up") {
		t.Errorf("execute past max_uses: %d %s", a.Status, a.Raw)
	}
	if p := e.public(token); p.Uses != 2 || p.Status != StatusUsedUp {
		t.Errorf("after two uses: %+v", p)
	}
	e.do("PUT", invitesPath(intA)+"/"+id, ourKey, orgA, `{"max_uses":10}`)
	e.SB.Advance(96 * time.Hour)
	if s := e.public(token).Status; s != StatusExpired {
		t.Errorf("status after the window: %s", s)
	}
	e.do("PUT", invitesPath(intA)+"/"+id, ourKey, orgA, `{"is_enabled":false}`)
	if p := e.public(token); p.Enabled || p.Status != StatusDisabled {
		t.Errorf("disabled: %+v", p)
	}
	if a := e.do("GET", "/public/access/invites/nope", "", "", ""); a.Status != 404 {
		t.Errorf("unknown token: %d", a.Status)
	}
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	now := t0
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: func() time.Time { return now }}}.WithSeedLimits())
	put := func(key, org string) answer {
		return e.do("PUT", invitesPath(intA)+"/inv_000404", key, org, `{"is_enabled":false}`)
	}
	ours := func() answer { return put(ourKey, orgA) }
	sandboxtest.Admits(t, "the burst", DefaultBurst, 404, ours)
	a := ours()
	sandboxtest.RateLimited(t, "burst + 1", a, "1")
	if !strings.Contains(a.Body["error"].(string), "rate limited") {
		t.Fatalf("burst + 1: %s", a.Raw)
	}
	if a := put(staffKey, orgA); a.Status != 404 {
		t.Errorf("another key is limited apart: %d", a.Status)
	}
	if a := put("nope", orgA); a.Status != 401 {
		t.Errorf("unknown key: %d, want 401 before rate limiting", a.Status)
	}
	now = now.Add(time.Second) // 5 tokens back
	sandboxtest.Admits(t, "after a second", 5, 404, ours)
	if a := ours(); a.Status != 429 {
		t.Errorf("sixth after a second: %d", a.Status)
	}
	if a := e.do("GET", "/public/access/invites/x", "", "", ""); a.Status != 404 {
		t.Errorf("public routes are not limited: %d", a.Status)
	}
}

func TestDailyCap(t *testing.T) {
	t.Parallel()
	now := ts("2026-06-01T23:59:00Z")
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: func() time.Time { return now }, DailyCap: 3}})
	put := func() answer {
		return e.do("PUT", invitesPath(intA)+"/inv_000404", ourKey, orgA, `{"is_enabled":false}`)
	}
	sandboxtest.Admits(t, "within the cap", 3, 404, put)
	sandboxtest.RateLimited(t, "over the cap", put(), "60")
	now = now.Add(time.Minute)
	if a := put(); a.Status != 404 {
		t.Errorf("next day: %d", a.Status)
	}
}

func TestAddInvite(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	v, err := e.SB.AddInvite(Planted{
		Integration: intA, CreatedBy: "dashboard", Name: "Cleaner", PortalIDs: []string{"lobby"},
		ValidFrom: t0, ValidTo: t0.Add(8 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	if v.CreatedBy != "dashboard" || v.Org != orgA || !v.Enabled || v.Token == "" || v.ID == "" {
		t.Errorf("planted %+v", v)
	}
	w, err := e.SB.AddInvite(Planted{Integration: intB, CreatedBy: otherKey, Name: "B", PortalIDs: []string{"gate-b"}, ValidFrom: t0, ValidTo: t0.Add(time.Hour), Disabled: true})
	if err != nil || w.CreatedBy != KeyFingerprint(otherKey) || w.Org != orgB || w.Enabled {
		t.Errorf("planted by a key: %+v, %v", w, err)
	}
	if p := e.public(v.Token); p.Name != "Cleaner" || p.Status != StatusActive {
		t.Errorf("guest view of a planted invite: %+v", p)
	}
	for _, p := range []Planted{
		{Integration: "nope", Name: "x", PortalIDs: []string{"lobby"}, ValidFrom: t0, ValidTo: t0.Add(time.Hour)},
		{Integration: intA, Name: "x", PortalIDs: []string{"gate-b"}, ValidFrom: t0, ValidTo: t0.Add(time.Hour)},
		{Integration: intA, Name: "", PortalIDs: []string{"lobby"}, ValidFrom: t0, ValidTo: t0.Add(time.Hour)},
		{Integration: intA, Name: "x", PortalIDs: []string{"lobby"}, ValidFrom: t0, ValidTo: t0},
	} {
		if _, err := e.SB.AddInvite(p); err == nil {
			t.Errorf("AddInvite(%+v) succeeded", p)
		}
	}
	if n := len(e.SB.Invites()); n != 2 {
		t.Errorf("%d invites", n)
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	now := t0
	e := newEnv(t, Options{Rates: sandboxkit.Rates{RateNow: func() time.Time { return now }}})
	id, token := e.create(stayBody)
	e.do("GET", "/public/access/invites/"+token, "", "", "")
	e.do("DELETE", invitesPath(intA)+"/"+id, "", "", "")
	e.do("GET", "/_sandbox/invites", "", "", "") // admin calls are not logged
	want := []Request{
		{Time: t0, Method: "POST", Path: invitesPath(intA), Status: 201, Org: orgA},
		{Time: t0, Method: "GET", Path: "/public/access/invites/[token]", Status: 200},
		{Time: t0, Method: "DELETE", Path: invitesPath(intA) + "/" + id, Status: 401},
	}
	if got := e.SB.Requests(); !slices.Equal(got, want) {
		t.Errorf("request log:\n got %+v\nwant %+v", got, want)
	}
	e.SB.ResetRequests()
	if got := e.SB.Requests(); len(got) != 0 {
		t.Errorf("after reset: %+v", got)
	}
}

func TestAdmin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	call := func(method, path, body string, status int) map[string]any {
		t.Helper()
		return sandboxtest.Want(t, e.Srv, method, path, body, status).Body
	}
	id, token := e.create(stayBody)
	got := call("GET", "/_sandbox/invites", "", 200)
	inv, _ := got["invites"].([]any)
	if len(inv) != 1 {
		t.Fatalf("invites: %v", got)
	}
	first := inv[0].(map[string]any)
	if first["invite_link_id"] != id || first["invite_token"] != token || first["org_id"] != orgA || first["created_by"] != KeyFingerprint(ourKey) {
		t.Errorf("invite: %v", first)
	}
	if got := call("GET", "/_sandbox/portals", "", 200); len(got["portals"].([]any)) != 6 {
		t.Errorf("portals: %v", got)
	}
	call("POST", "/_sandbox/portals", `{"id":"door-103","integration_id":"int_a"}`, 201)
	call("POST", "/_sandbox/portals", `{"id":"door-104","integration_id":"int_zz"}`, 404)
	call("POST", "/_sandbox/portals", `{"id":""}`, 400)
	call("POST", "/_sandbox/portals", `{"id":"x","integration_id":"int_a","extra":1}`, 400)
	e.create(`{"portal_ids":["door-103"],"name":"n","expires_in":"1h"}`)

	if got := call("GET", "/_sandbox/clock", "", 200); got["now"] != "2026-06-01T10:00:00Z" {
		t.Errorf("clock: %v", got)
	}
	if got := call("POST", "/_sandbox/clock", `{"advance":"36h"}`, 200); got["now"] != "2026-06-02T22:00:00Z" {
		t.Errorf("advance: %v", got)
	}
	if got := call("POST", "/_sandbox/clock", `{"now":"2026-07-01T08:00:00+02:00"}`, 200); got["now"] != "2026-07-01T06:00:00Z" {
		t.Errorf("set: %v", got)
	}
	call("POST", "/_sandbox/clock", `{"now":"2026-07-01T08:00:00Z","advance":"1h"}`, 400)
	call("POST", "/_sandbox/clock", `{"advance":"soon"}`, 400)
	call("POST", "/_sandbox/clock", `{"now":"July"}`, 400)

	if got := call("GET", "/_sandbox/requests", "", 200); got["count"] != 2.0 || dig(got, "requests", 0, "method") != "POST" || dig(got, "requests", 0, "status") != 201.0 {
		t.Errorf("requests: %v", got)
	}
	sandboxtest.ClearRequests(t, e.Srv)
	call("GET", "/_sandbox/nope", "", 404)
	call("GET", "/nope", "", 404)

	// The route list served at GET /_sandbox/ is the one in the package comment.
	list := sandboxtest.RoutesDocumented(t, e.Srv)
	if n := len(strings.Split(strings.TrimSpace(list), "\n")); n != 11 {
		t.Errorf("route list has %d lines", n)
	}
}

var dig = sandboxtest.Dig

func TestParseDuration(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"P1D", day},
		{"PT2H", 2 * time.Hour},
		{"P1W", 7 * day},
		{"P1DT2H30M", day + 150*time.Minute},
		{"PT90S", 90 * time.Second},
		{"PT1H30M15S", time.Hour + 30*time.Minute + 15*time.Second},
		{"+P2D", 2 * day},
		{"P1W2D", 9 * day},
		{"1h", time.Hour},
		{"1w", 7 * day},
		{"365d", 365 * day},
		{"2h30m", 150 * time.Minute},
		{"45m", 45 * time.Minute},
		{"30s", 30 * time.Second},
		{"1d12h", 36 * time.Hour},
		{"", 0},
		{"P", 0},
		{"PT", 0},
		{"P1Y", 0},
		{"P1M", 0},
		{"P1H", 0}, // hours need T
		{"PT1D", 0},
		{"-P1D", 0},
		{"P0D", 0},
		{"P1.5D", 0},
		{"PT2H1H", 0},
		{"p1d", 0},
		{"1", 0},
		{"h", 0},
		{"30m2h", 0}, // units out of order
		{"1h1h", 0},
		{"1y", 0},
		{"1.5h", 0},
		{"-1h", 0},
		{"0h", 0},
		{" 1h", 0},
		{"1H", 0},
		{"999999999w", 0}, // beyond 100 years
		{"P999999999W", 0},
		{"1234567890s", 0},
	}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if tc.want == 0 {
			if err == nil {
				t.Errorf("ParseDuration(%q) = %s, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDuration(%q) = %s, %v; want %s", tc.in, got, err, tc.want)
		}
	}
}
