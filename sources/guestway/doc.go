// Package guestway reads reservations and their smart-lock PINs
// ("reservation accesses") from the Guestway Open API.
//
// # What the API document says
//
// Every request carries two headers: X-Api-Key, the Partnership API Key,
// which identifies the partner and carries the rate limits (5 requests per
// second with bursts up to 10, 10,000 a day); and Authorization: Bearer
// gw_…, the Organization Access Token, whose scopes decide what may be read
// ("Reservations - Read" for reservations, "Reservation Accesses - Read" for
// accesses, or "Full Access - Read"). A request without a valid X-Api-Key is
// rejected before the token is even checked; a missing, revoked or incorrect
// token is 401; a token without the scope is 403; too many requests is 429.
//
// # What the API document leaves to its OpenAPI reference: our assumptions
//
// The API document names no paths or payloads. keysync assumes the following, keeps
// the paths and page size configurable (Options), and the sandbox in
// sources/guestway/sandbox implements exactly this:
//
//   - List: GET {base}{ReservationsPath} (default /open/v1/reservations) with
//     query from and to (YYYY-MM-DD; reservations with departure_date > from
//     and arrival_date <= to), page (1-based) and per_page (default 50, at
//     most 100; more is 400). A first page refused with 400 or 422 is
//     asked again without per_page, and the run reads the server's own
//     page size after that. The answer is
//     {"data":[reservation…],"meta":{"page":1,"per_page":50,"total":123,"has_more":true}},
//     ordered stably (arrival date, then id), every status included.
//     has_more, else total, says whether the list goes on; a meta with
//     neither (a server paging by cursor) is read on while pages come
//     full (Source.lastPage). A later page answered 404 (a server may say
//     "nothing found" so) ends the list only where that page was a guess
//     (the meta said neither has_more nor total, and the page before came
//     full); where has_more or total says more, it fails the read. A
//     first page answered 404 is an empty window when the list asked for
//     without from, to or per_page answers with no reservation in the
//     window; an answer showing one fails the read, naming per_page and
//     the dates; and a 404 there too is a wrong reservations_path.
//   - One: GET {base}{ReservationPath} (default /open/v1/reservations/{id})
//     answers {"data": reservation}, or 404 when there is no such reservation.
//   - Accesses: GET {base}{AccessesPath} (default
//     /open/v1/reservations/{id}/accesses) answers
//     {"data":[{"id","lock_id","lock_name","pin","valid_from","valid_to"}…]}
//     (valid_from/valid_to RFC 3339; keysync does not use them). A 404
//     there is a reservation without accesses once an accesses call has
//     answered 200 at the path (a server may say "nothing found" so); with
//     none yet, it fails the read naming accesses_path. pin is a JSON
//     string: a PIN sent as a number (its leading zeros lost) or any other
//     type is read as unreadable (reconcile.LockAccess.Unreadable), never
//     shown to a guest as a PIN that may not open the door, and the read
//     goes on (a PIN is only shown; the read also decides whose access is
//     kept or withdrawn). The sandbox's SetPINAsNumber sends them so.
//   - A reservation is {"id","status","arrival_date","departure_date"
//     (YYYY-MM-DD),"listing_id","unit_id" (null, or 0, for single-unit listings),
//     "guest_name","guests":{"adults","children"}}. Ids may be JSON strings
//     or integers. The dates are the stay's nights as the property counts
//     them; the check-in and check-out times, and the zone they are in,
//     come from keysync's config. A date-time instead is read for its day
//     in the property's zone (stayDates): one without an offset is local;
//     instants are told in Options.Location, unless neither of the two has
//     a time of day but midnight in its own offset (dates written as
//     date-times, read as written); anything else fails the read naming
//     the field, since a day off either way would key the guest late or
//     end their access early.
//   - status is "confirmed", "cancelled", "pending" or another value.
//     A status with the word "cancelled" (or "canceled") in it, in any
//     case, marks Stay.Cancelled: "CANCELLED_BY_GUEST" and
//     "canceled-by-host" do, "cancellation_requested" does not, nor does
//     one with a word before it denying it ("not_cancelled",
//     "un-cancelled") or one anywhere undoing it ("cancelled_reverted",
//     "reinstated"); a word after it only qualifies it
//     ("cancelled_no_refund" is cancelled). So does a status that, as a
//     whole, ends the booking without naming a cancellation (ended:
//     "declined", "rejected", "expired", "void", "deleted", "no_show",
//     "checked_out", with leading words for who ended it or for the
//     booking, or a trailing "by …": "auto_declined", "request_declined",
//     "inquiry_expired", "declined_by_host"; an end word
//     inside a longer status, "payment_declined", is about something
//     else), and an "is_cancelled" or "cancelled" flag that is true, or a
//     "cancelled_at", "canceled_at" or "deleted_at" time (not a zero date
//     or "null"), beside any status. Any other value, unknown
//     ones included, is treated as not cancelled, so a new status never
//     makes keysync revoke a guest's access (an "inquiry" or "pending"
//     booking is keyed like a confirmed one). Other unknown JSON fields
//     are ignored.
//   - A rejected partner key is answered 401 with the JSON error code
//     {"error":"invalid_api_key"}; any other 401 is about the token. The
//     same code on a 403 is also read as a partner key problem. The code
//     only picks the hint in the message: any 401 or 403 stops Guestway
//     for the run (reconcile.ErrUnauthorized), and the run names both
//     guestway.partner_key and guestway.token, so a server that words a
//     refused partner key otherwise (a gateway's bare 403, say) misleads
//     no decision.
//
// # Mapping to the domain
//
// A reservation becomes one reconcile.Stay: Ref {Property, "guestway", id};
// RoomID and RoomName are unit_id when set, else listing_id (the payload
// carries no names); Guests is adults + children. Locks are the
// reservation's accesses with the PIN as a reconcile.Secret, fetched with
// one request per reservation that is not cancelled, Options.Concurrency at
// a time, all through the one Options.Pacer. Every call is a GET, so
// Options.Retry waits out a 429 and retries any call after a 5xx or no
// answer, each attempt counted in the Meter. Stays returns cancelled
// reservations with Cancelled set; StaysByID, per the StaySource contract,
// leaves out reservations that are gone (404) or cancelled.
//
// Errors name guestway, the call and the cause, with the API document's
// troubleshooting hint for 401, 403, rejected partner keys and 429, and
// never quote a response body, the token, the partner key or a PIN.
package guestway
