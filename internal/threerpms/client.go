// Package threerpms is keysync's one home for the 3RPMS GraphQL API (the
// 3RPMS Room Access Key API): the schema (package schema) that the stay
// source's queries and the key sink's mutations are generated against,
// and Client, the transport every 3RPMS request goes through, both
// directions included.
//
// The API document is silent on authentication and transport; keysync
// assumes GraphQL over HTTP: a POST of {"query", "variables",
// "operationName"} as JSON to the configured endpoint, with
// "Authorization: Bearer <token>" (README, "Assumptions where the API
// documents are silent").
package threerpms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/Khan/genqlient/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/keysync/keysync/internal/httpapi"
	"github.com/keysync/keysync/reconcile"
)

// DefaultMaxResponseBytes caps a response body; a larger one is an error,
// not an allocation.
const DefaultMaxResponseBytes = 8 << 20

// ClientOptions configures a Client.
type ClientOptions struct {
	// Endpoint is the GraphQL URL.
	Endpoint string
	// Token is the integration's API token, sent as a bearer token.
	Token reconcile.Secret
	// Transport is the shared HTTP client's part: 429s waited out, queries
	// retried after an outage, mutations never; MaxResponseBytes 0 means
	// DefaultMaxResponseBytes.
	httpapi.Transport
}

// Client sends GraphQL requests to 3RPMS. It implements graphql.Client, so
// the genqlient-generated functions and the sink's chained mutations share
// its auth, pacing, size cap and error mapping.
type Client struct {
	http  *httpapi.Client
	token reconcile.Secret
}

var _ graphql.Client = (*Client)(nil)

// NewClient returns a Client, or an error when the options cannot work.
func NewClient(opts ClientOptions) (*Client, error) {
	c, err := httpapi.New(httpapi.Options{
		Transport: opts.Transport, System: reconcile.System3RPMS, Name: "3rpms", BaseURL: opts.Endpoint,
		MaxResponseBytes: DefaultMaxResponseBytes,
		Auth:             func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+opts.Token.Reveal()) },
		// A GraphQL request refused as a whole (any 4xx but 401, 403 and
		// 429) is refused as invalid; never "not found", which would
		// settle a revoke or a delete.
		Refusal: func(int) error { return reconcile.ErrRejected },
	})
	if err != nil {
		return nil, err
	}
	return &Client{http: c, token: opts.Token}, nil
}

// MakeRequest implements graphql.Client. Like genqlient's own client it
// returns the GraphQL errors (a gqlerror.List) after decoding data, so
// callers can act on each field. Errors never quote a response body, which
// could echo a secret.
//
// For mutations, a failure after the request was sent (no answer, a 5xx, an
// unreadable answer) wraps reconcile.ErrUnknownOutcome: the server may have
// acted. 401 and 403 wrap reconcile.ErrUnauthorized, 429 is a
// *httpapi.RateLimitedError, other 4xx wrap reconcile.ErrRejected (and,
// for a mutation whose answer has a "data" member, ErrUnknownOutcome too;
// but a mutation's 4xx whose data is an object, with errors, is read as a
// 200 with them would be: its errors are returned, its data decoded). While
// the server has never answered, a 404 wraps reconcile.ErrEndpoint and a
// connection that cannot be made reconcile.ErrUnreachable.
func (c *Client) MakeRequest(ctx context.Context, req *graphql.Request, resp *graphql.Response) error {
	write := isMutation(req.Query)
	what := "query " + req.OpName
	if write {
		what = "mutation " + req.OpName
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("3rpms: %s: encode request: %w", what, err)
	}
	red := newRedactor(body, c.token)
	// A refusal (4xx) whose body has a "data" member may follow fields
	// that ran: for a mutation its outcome is unknown, unless its data is
	// an object (answered is that body), read then as a 200's would be.
	var withData bool
	var answered []byte
	// Every request goes to the one GraphQL endpoint: a 404 as its first
	// answer means the URL is wrong.
	_, err = c.http.Do(ctx, httpapi.Request{
		Call: what, Method: http.MethodPost, Body: json.RawMessage(body), Write: write, Idempotent: !write,
		Endpoint: "nothing serves GraphQL at the endpoint", Out: resp,
		RateLimited: func(b []byte) bool { return rateLimited(b, write) },
		Reason: func(code int, b []byte) string {
			switch code {
			case http.StatusUnauthorized:
				return "the API token was refused; check threerpms.token (sent as Authorization: Bearer)"
			case http.StatusForbidden:
				return "the API token lacks a permission this call needs"
			}
			withData = hasData(b)
			if write && dataObject(b) {
				answered = b
			}
			return red.redact(errorMessages(b))
		},
	})
	if err != nil {
		resp.Errors = nil
		if write && withData && httpapi.Refusal(err) != nil {
			// The 3RPMS Room Access Key API gives no status codes: a
			// server may answer a document whose fields ran, some with
			// errors, with a 400 rather than a 200. Its data and errors
			// say each field's outcome as a 200's do; without errors to
			// name the fields refused, the outcome stays unknown.
			if answered != nil && json.Unmarshal(answered, resp) == nil && len(resp.Errors) > 0 {
				return fieldErrors(resp, red)
			}
			resp.Errors = nil
			return fmt.Errorf("%w (the answer carries data: fields may have run; %w)", err, reconcile.ErrUnknownOutcome)
		}
		return err
	}
	return fieldErrors(resp, red)
}

// fieldErrors returns resp's GraphQL errors redacted, or nil when there are
// none.
func fieldErrors(resp *graphql.Response, red *redactor) error {
	if len(resp.Errors) == 0 {
		return nil
	}
	for _, e := range resp.Errors {
		// Error() prints the path and extensions too: redact them,
		// keeping only the code callers branch on.
		e.Message = red.redact(e.Message)
		for i, p := range e.Path {
			if name, ok := p.(ast.PathName); ok {
				e.Path[i] = ast.PathName(red.redact(string(name)))
			}
		}
		if code, ok := e.Extensions["code"]; ok {
			e.Extensions = map[string]any{"code": code}
		} else {
			e.Extensions = nil
		}
		e.Rule = ""
	}
	return resp.Errors
}

// rateLimited reports whether a 200's body is a refusal for the rate
// limit: GraphQL errors of which one says rate limited (its code, or its
// message where there is none), and nothing that ran. The 3RPMS document
// does not say how its rate limits are signalled; a GraphQL server may
// answer them in a 200, and sending the document again at once, or in
// halves (sinks/threerpms), would only be refused again. A mutation counts
// only without a "data" member (the GraphQL rule for a request that never
// executed): "data": null may follow fields that ran, and is never sent
// again. A query may go again either way.
func rateLimited(raw []byte, write bool) bool {
	var r struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string         `json:"message"`
			Extensions map[string]any `json:"extensions"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &r) != nil || len(r.Errors) == 0 {
		return false
	}
	switch {
	case write && r.Data != nil:
		return false // a "data" member, null or not
	case !write && r.Data != nil && string(r.Data) != "null":
		return false
	}
	for _, e := range r.Errors {
		if code, ok := e.Extensions["code"].(string); ok {
			switch strings.ToUpper(code) {
			case "RATE_LIMITED", "RATE_LIMIT_EXCEEDED", "TOO_MANY_REQUESTS", "THROTTLED":
				return true
			}
			continue
		}
		if rateWords.MatchString(e.Message) {
			return true
		}
	}
	return false
}

// rateWords are the words of a rate limit's refusal in an error message
// that carries no code.
var rateWords = regexp.MustCompile(`(?i)\brate[ _-]?limit|\btoo many requests\b|\bthrottl`)

// redactor removes from server messages every string value the request
// carried (PINs, compartments, QR data) and the token: a server may quote
// what it was sent ("got invalid value {pin: ...}"). Ids, dates, page
// sizes and cursors are not secrets and an operator needs them ("room stay
// rs_1042 not found"), so values under those keys are kept; any other
// value, a field added later included, is removed.
type redactor struct {
	secrets []string
	// short are the values of one or two characters (a compartment such as
	// the API document's "3R"): removed only where they stand alone, as a
	// word, so that the rest of a message survives.
	short []*regexp.Regexp
}

func newRedactor(body []byte, token reconcile.Secret) *redactor {
	r := &redactor{}
	if t := token.Reveal(); t != "" {
		r.secrets = append(r.secrets, t)
	}
	var req struct {
		Variables any `json:"variables"`
	}
	if json.Unmarshal(body, &req) == nil {
		r.collect("", req.Variables)
	}
	// Longest first, so a value containing another is removed whole.
	slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	return r
}

// collect gathers the secret string values of v, found under key.
func (r *redactor) collect(key string, v any) {
	switch v := v.(type) {
	case string:
		switch {
		case v == "" || notSecret(key):
		case len(v) >= 3:
			r.secrets = append(r.secrets, v)
		default:
			r.short = append(r.short, regexp.MustCompile(`(^|[^\pL\pN])`+regexp.QuoteMeta(v)+`($|[^\pL\pN])`))
		}
	case map[string]any:
		for k, x := range v {
			r.collect(k, x)
		}
	case []any:
		for _, x := range v {
			r.collect(key, x)
		}
	}
}

// notSecret reports a variable key whose values are ids or paging (id,
// ids, roomStayId, roomAccessKeyId, start, end, first, cursor).
func notSecret(key string) bool {
	switch key {
	case "id", "ids", "start", "end", "first", "cursor":
		return true
	}
	return strings.HasSuffix(key, "Id") || strings.HasSuffix(key, "ID") || strings.HasSuffix(key, "_id")
}

func (r *redactor) redact(msg string) string {
	for _, s := range r.secrets {
		msg = strings.ReplaceAll(msg, s, "[redacted]")
	}
	for _, re := range r.short {
		// Twice: a match takes the character after the value, which may
		// start the next standalone occurrence.
		for range 2 {
			msg = re.ReplaceAllString(msg, "${1}[redacted]${2}")
		}
	}
	return msg
}

// hasData reports whether raw is a JSON object with a "data" member, null
// or not.
func hasData(raw []byte) bool {
	var r map[string]json.RawMessage
	if json.Unmarshal(raw, &r) != nil {
		return false
	}
	_, ok := r["data"]
	return ok
}

// dataObject reports whether raw is a JSON object whose "data" member is
// an object: the answer of fields that ran.
func dataObject(raw []byte) bool {
	var r struct {
		Data json.RawMessage `json:"data"`
	}
	return json.Unmarshal(raw, &r) == nil && bytes.HasPrefix(bytes.TrimSpace(r.Data), []byte("{"))
}

// errorMessages extracts GraphQL error messages from an error response for
// the operator, or says there were none.
func errorMessages(raw []byte) string {
	var r graphql.Response
	if json.Unmarshal(raw, &r) != nil || len(r.Errors) == 0 {
		return "no GraphQL error in the response"
	}
	msgs := make([]string, 0, len(r.Errors))
	for _, e := range r.Errors {
		msgs = append(msgs, e.Message)
	}
	return strings.Join(msgs, "; ")
}

func isMutation(query string) bool {
	return strings.HasPrefix(strings.TrimSpace(query), "mutation")
}
