// Package sandbox is an in-memory fake of a key box's "Create Access" API
// (the key-box "Create Access" API, Keycafe style) for tests and for `keysync demo`. It enforces what
// the API document says, and where the API document is silent it makes the same assumptions as
// package keybox (the sink), so the two are tested against each other.
//
// # API
//
// Every API request needs HTTP Basic auth with a user of Options.Users (or
// AddUser); a missing or wrong one is 401 with a WWW-Authenticate header. Each
// user has its own rate limit (Options.RatePerSecond and Burst, timed by
// Options.RateNow) and UTC daily cap (Options.DailyCap); beyond them the
// answer is 429 with Retry-After in seconds. Bodies are at most MaxBodyBytes
// (413 beyond). Every API request is recorded in the request log (Requests)
// with its body but never its Authorization header.
//
// Create is POST Options.CreatePath (default /v2/accesses) with the API document's
// JSON body:
//
//   - key (required): an object with exactly one of id or serialNumber, naming
//     a key added with AddKey (400 when the shape is wrong, 422 when no key
//     matches);
//   - startDate, endDate ("YYYY-MM-DD") with startTime, endTime ("HH:MM",
//     24-hour) and timeZone (an IANA zone such as Europe/Ljubljana), read as
//     local wall-clock times in that zone; a time that a DST switch skips or
//     repeats is resolved as Go's time.Date resolves it (02:30 on a spring
//     night becomes 03:30; on an autumn night, the second 02:30);
//   - or, deprecated, startDate and endDate as ISO 8601 date-times without
//     milliseconds ("2025-07-21T12:45:00Z"), with no startTime/endTime;
//     timeZone is then optional (UTC) and only shapes the local view;
//   - a missing start means the access starts now (business clock), a missing
//     end that it is ongoing; when both are given the end must be after the
//     start;
//   - visitorName, required unless user is given; user is an object with id,
//     email or mobileNumber;
//   - locale, one of en, fr, ja, es, nl, it, pt;
//   - returnReminder and silent, JSON booleans;
//   - any other field is ignored.
//
// A field that breaks a rule is 400 (422 for an unknown key) with a JSON body
// {"message": "<field>: <rule>", "field": "<field>"}; messages name the field
// and the rule and never echo a code or a password. Success is 201 with the
// access as JSON: {"id", "code", "key": {"id", "serialNumber"}, "startDate",
// "startTime", "endDate", "endTime", "timeZone", "visitorName", "locale",
// "silent", "returnReminder", "status"}, where code is a fresh 6-digit PIN
// (crypto/rand) unique among the accesses not cancelled.
//
// List, an assumption package keybox shares, is GET Options.ListPath
// (default /v2/accesses) with the query keyId=<key id> or
// keySerialNumber=<serial number> (exactly one, else 400): 200 {"data":
// [...]}, the accesses to that key that the authenticated user created,
// oldest first and all in one answer, each as a create returns it plus
// "cancelled" (true for a cancelled one). An unknown key lists nothing.
// With Options.CancelledAsStatus (the switch cancelled_as_status) no
// access has "cancelled": a cancelled one has "status": "CANCELLED" and
// "cancelledAt" (RFC 3339), and the other statuses are upper case too.
// With Options.ListInUTC (list_in_utc) each listed window is shown in UTC
// ("timeZone": "UTC"), whatever zone its create gave. With
// Options.CodeAsBookingCode (code_as_booking_code) the code is
// "bookingCode", not "code", in a create's answer and in the list.
//
// Cancel is Options.CancelMethod Options.CancelPath (default DELETE
// /v2/accesses/{id}): 204 with no body, or 404 when the access does not exist
// or is already cancelled. Any authenticated user may cancel any access of
// the account; each access records who created it (its creator) so tests can
// plant accesses keysync did not create (AddAccess) and check they survive.
//
// # Admin API
//
// JSON, no auth, served under /_sandbox/ (GET /_sandbox/ returns this list as
// text). Errors are {"error": "..."} with 400, 404 or 409.
//
//	Key box sandbox admin API (JSON, no auth)
//	GET    /_sandbox/              this list
//	GET    /_sandbox/accesses      every access, cancelled ones included, with its code and creator
//	GET    /_sandbox/keys          every key in the box
//	POST   /_sandbox/keys          add a key {id, serial_number?}
//	GET    /_sandbox/clock         the business clock {now}
//	POST   /_sandbox/clock         set {"now": RFC 3339} or move {"advance": "36h"} the business clock
//	GET    /_sandbox/requests      the API request log {count, requests}
//	DELETE /_sandbox/requests      empty the request log
//	GET    /_sandbox/assumptions   the switches that break keysync's assumptions {no_list, list_without_codes, visitor_name_limit, create_without_code, cancelled_as_status, cancel_not_found, list_in_utc, code_as_booking_code}
//	POST   /_sandbox/assumptions   set any of them {"no_list": true, "list_without_codes": true, "visitor_name_limit": 5}
//
// The business clock (Now, SetNow, Advance) stamps creations and
// cancellations and decides each access's status (upcoming, active, ended,
// cancelled); it is independent of the rate limiter's clock.
package sandbox
