// Package sandbox is an in-memory fake of OpenApp's time-bound access
// invites (the OpenApp access invites API, "Create a time-bound guest invitation via API") for
// tests and for `keysync demo`. It follows the API document, not whatever a client
// sends, and states below each rule it had to assume.
//
// # Integration API
//
//	GET    /integrations/{integration_id}/access-invites                   list; 200 {data, page, per_page, has_more}
//	POST   /integrations/{integration_id}/access-invites                   create; 201 {invite_token, invite_link_id}
//	PUT    /integrations/{integration_id}/access-invites/{invite_link_id}  change the fields sent; 200 with the invite
//	DELETE /integrations/{integration_id}/access-invites/{invite_link_id}  delete; 204
//
// Every call needs "Authorization: Bearer <API key>" for a known key (401
// otherwise) and "X-Org" equal to the key's organisation (403 when missing
// or different). The integration must belong to that organisation (404).
// Bodies are JSON ("Content-Type: application/json", else 415) of at most
// MaxBodyBytes (413); unknown fields are ignored and null counts as absent.
//
// Create needs portal_ids (at least one, 400; each a portal of the
// integration, 422; duplicates dropped) and a non-empty name (400). The
// window is one of:
//   - valid_from / valid_to, RFC 3339 (400 naming the field when malformed;
//     any offset is accepted and stored as UTC);
//   - starts_in / expires_in, relative: ISO 8601 durations as RFC 5545
//     §3.3.6 writes them (P1D, PT2H, P1DT2H30M, P1W) or compact tokens
//     (1h, 1w, 365d, 2h30m); see ParseDuration;
//   - schedules, a list of such entries (several windows).
//
// valid_from and starts_in are mutually exclusive, and so are valid_to and
// expires_in (400). Without a start the window opens at the business
// clock's now; expires_in counts from the resolved start; one of valid_to
// or expires_in is required (400); the end must be after the start (422).
// max_uses, when present, is at least 1 (422); is_enabled defaults to true.
//
// List (GET), an assumption package openapp shares, returns the
// integration's invites that are not deleted, enabled or not and whoever
// created them, oldest first, as {"data": [{invite_link_id, invite_token,
// name, portal_ids, valid_from, valid_to, is_enabled}, …], "page",
// "per_page", "has_more"}; valid_from and valid_to are RFC 3339 UTC, the
// first start and the last end of a multi-window invite. The query's page
// (from 1, default 1) and per_page (1 to MaxPerPage, default
// DefaultPerPage) choose the page; a value out of range is 400, and a page
// past the end is empty with has_more false. With SetDisabledAsStatus
// (disabled_as_status) a listed invite has "status" ("active" or
// "disabled") instead of is_enabled.
//
// Update (PUT) takes the same fields and changes only those present, after
// checking all of them: portal_ids, name, max_uses, is_enabled and the
// window. A window bound left out keeps its current value, so
// {"valid_to": …} alone narrows or extends the end. Unknown, deleted or
// other integrations' invites are 404, for PUT and DELETE alike. Neither
// the API document nor this fake restricts an invite to the key that created it:
// any key of the organisation may change any invite of the integration.
// Each invite records the key (KeyFingerprint) and organisation that
// created it, so tests can plant invites keysync did not make (AddInvite).
//
// # Guest side
//
//	GET    /public/access/invites/{token}          the invite: portal_ids, valid_from, valid_to, is_enabled, max_uses, uses, status, grants
//	POST   /public/access/invites/{token}/claim    associate the invite with a device (no-op here)
//	POST   /public/access/invites/{token}/execute  open a portal {grant_id}; 403 unless active
//
// No auth. Deleted invites are 404; disabled ones still answer, with
// is_enabled false and status "disabled". Status is computed from the
// business clock (Now, SetNow, Advance). Each execute counts one use
// against max_uses.
//
// # Errors, limits and the request log
//
// Refusals are {"error": "..."} naming the field and the rule; they never
// quote an API key, an invite token or a submitted value. With rate limits
// set (Options.WithSeedLimits: 5 req/s, burst 10, 10,000 a UTC day per API
// key, timed by Options.RateNow; the API document names no limits, these
// are the ones the other three give) an authenticated call over the limit
// is 429 with Retry-After in seconds. The public routes are not limited.
// Every integration and public request is logged (Requests): time, method,
// path with any invite token replaced by "[token]", status and caller org.
//
// # Admin API
//
// JSON, no auth, served under /_sandbox/ (GET /_sandbox/ returns this list as
// text). Errors are {"error": "..."} with 400 or 404.
//
//	OpenApp sandbox admin API (JSON, no auth)
//	GET    /_sandbox/             this list
//	GET    /_sandbox/invites      every invite, deleted included, with its token, org and creator
//	GET    /_sandbox/portals      every portal and its integration
//	POST   /_sandbox/portals      add or move a portal {id, integration_id}
//	GET    /_sandbox/clock        the business clock {now}
//	POST   /_sandbox/clock        set {"now": RFC 3339} or move {"advance": "36h"} the business clock
//	GET    /_sandbox/requests     the request log {count, requests}
//	DELETE /_sandbox/requests     empty the request log
//	GET    /_sandbox/assumptions  the switches that break keysync's assumptions {no_list, list_without_tokens, put_only_narrows, put_conflicts, put_not_found, changes_forbidden, max_per_page, name_limit, disabled_as_status, list_without_has_more, refuse_past_start}
//	POST   /_sandbox/assumptions  set any of them {"no_list": true, "list_without_tokens": true, "put_only_narrows": true, "max_per_page": 10}
package sandbox
