// Package sandbox is an in-memory fake of the Guestway Open API
// for tests and for `keysync demo`. It implements the API document's rules and the
// assumptions package guestway states for what the API document leaves to its
// OpenAPI reference, and nothing more.
//
// # Open API
//
// Every request needs the two headers of the API document, checked in the API document's
// order, each failure answered {"error": code, "message": "..."}:
//
//  1. X-Api-Key must be one of Options.PartnerKeys (AddPartnerKey);
//     otherwise 401 invalid_api_key, before the token is even looked at.
//  2. Authorization: Bearer <token> must be one of Options.Tokens
//     (AddToken, RevokeToken); otherwise 401 unauthorized.
//  3. The token needs the endpoint's scope, "Reservations - Read" or
//     "Reservation Accesses - Read" ("Full Access - Read" and "Full Access -
//     Edit" grant both); otherwise 403 forbidden.
//  4. Rate limits per partner key, when set (Options.WithSeedLimits: 5 per
//     second, burst 10, 10,000 per UTC day, timed by Options.RateNow);
//     otherwise 429 rate_limited with Retry-After in seconds. Requests
//     refused by 1-3 are not counted.
//
// Endpoints (GET only, else 405; paths configurable in Options):
//
//	GET /open/v1/reservations?from=&to=&page=&per_page=
//	    {"data":[reservation...],"meta":{"page","per_page","total","has_more"}}
//	    departure_date > from and arrival_date <= to (each optional), every
//	    status, ordered by arrival_date then id; page from 1, per_page 1-100
//	    (default 50); a malformed or out-of-range parameter is 400 bad_request.
//	GET /open/v1/reservations/{id}            {"data": reservation}, or 404 not_found
//	GET /open/v1/reservations/{id}/accesses   {"data":[{"id","lock_id","lock_name","pin","valid_from","valid_to"}]}, or 404
//
// A reservation is {"id","status","arrival_date","departure_date",
// "listing_id","unit_id" (null when none),"guest_name","guests":{"adults",
// "children"}}. Unknown paths are 404 after the header checks. Every API
// request is recorded in the request log (Requests), with the partner key
// as sent and the token masked.
//
// # Admin API
//
// JSON, no auth, served under /_sandbox/ (GET /_sandbox/ returns this list
// as text). Errors are {"error": "..."} with 400, 404 or 409; no message
// quotes a PIN.
//
//	Guestway sandbox admin API (JSON, no auth)
//	GET    /_sandbox/                               this list
//	GET    /_sandbox/listings                       every listing
//	POST   /_sandbox/listings                       add or rename a listing {id, name}
//	GET    /_sandbox/reservations                   every reservation with its accesses (PINs included)
//	POST   /_sandbox/reservations                   add a reservation {id?, status?, arrival_date, departure_date, listing_id, unit_id?, guest_name?, guests?, accesses?}
//	PATCH  /_sandbox/reservations/{id}              change {status?, arrival_date?, departure_date?, listing_id?, unit_id?, guest_name?, guests?, unreadable_dates?}
//	POST   /_sandbox/reservations/{id}/cancel       set the status to "cancelled" (accesses are kept)
//	DELETE /_sandbox/reservations/{id}              delete a reservation and its accesses (the API then answers 404)
//	POST   /_sandbox/reservations/{id}/accesses     add a lock access {id?, lock_id, lock_name?, pin, valid_from?, valid_to?}
//	DELETE /_sandbox/reservations/{id}/accesses     remove every access of a reservation
//	GET    /_sandbox/clock                          the business clock {now, today}
//	POST   /_sandbox/clock                          set {"now": RFC 3339} or move {"advance": "36h"} the business clock
//	GET    /_sandbox/requests                       the API request log {count, requests}
//	DELETE /_sandbox/requests                       empty the request log
//	GET    /_sandbox/assumptions                    the switches that break keysync's assumptions {max_per_page, no_has_more, ignore_page, no_reservation_get, accesses_not_found_when_empty, list_not_found_when_empty, cursor_meta, short_pages, cancelled_as, pin_as_number, gone_as_null, bare_lists}
//	POST   /_sandbox/assumptions                    set them {"max_per_page": 20, "no_has_more": true}
//
// Dates are "2006-01-02" (DateLayout) throughout; the business clock (Now,
// SetNow, Advance) is what SeedDemo builds around and is independent of
// the rate limiter's clock.
package sandbox
