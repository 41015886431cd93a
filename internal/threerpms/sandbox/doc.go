// Package sandbox is an in-memory fake of the 3RPMS GraphQL API (the 3RPMS
// Room Access Key API) for tests and for `keysync sandbox` / `keysync demo`.
// It follows the API document, not whatever a client sends: every document is parsed
// and validated against the schema in package schema and run by a small
// executor over the gqlparser AST.
//
// # GraphQL
//
// POST /graphql with a JSON body {"query", "variables", "operationName"} (at
// most 1 MiB) and "Authorization: Bearer <token>", where the token maps to an
// integration id (Options.Integrations, AddIntegration). Queries: room_stays
// and reservations (with rooms), cursor-paginated (first defaults to 20, at
// most Options.MaxPageSize), ordered by arrival, then id. Mutations:
// createRoomAccessKey, addRoomAccessKey, removeRoomAccessKey and
// deleteRoomAccessKey; root fields run serially in document order, and a field
// that breaks a rule is null with an error whose path is its alias and whose
// extensions.code is one of the Code… constants, while the other fields still
// run. Error messages name the field and the rule, never a PIN, compartment
// or qrData value.
//
// The API document's rules: exactly one key type per create; PINs are 1-10
// alphanumerics, not mixed case; compartments 1-10 alphanumerics; qrData
// 1-512 characters. A key is invisible until assigned; an integration may
// add, remove and delete only keys it created (FORBIDDEN); a stay holds at
// most one key (CONFLICT), re-adding the key a stay holds succeeds without
// change; one key may serve several stays; remove of a key the stay does not
// hold is NOT_FOUND; delete needs the key assigned to no stay (CONFLICT).
// The codes are the sandbox's guess: the API document defines no error
// shape, so Options.MessageOnlyErrors (or POST /_sandbox/errors) answers
// every error with its message alone, no code, path or locations, the way
// another server may; keysync's tests run both ways. The document does not
// say either whether chained mutations stand alone: here each field does,
// and Options.RollbackDocuments (or POST /_sandbox/errors) undoes a whole
// document one of whose fields failed, as a server running each request in
// one transaction would.
// Stays of cancelled reservations are hidden from queries and refuse
// addRoomAccessKey (NOT_FOUND) but accept removeRoomAccessKey. The business
// clock (Now, SetNow, Advance) drives the API document's cleanup: a key is revoked
// from a stay 2 days after its departure date and deleted when it is then
// assigned nowhere, and a key assigned to no stay for 2 days is deleted.
//
// Request-level failures have no "data": 401 (missing or unknown token), 429
// with Retry-After (per-token rate and daily cap, timed by Options.RateNow),
// 413 (body too large), 400 (bad JSON, parse or validation error, variables
// that do not coerce, more than Options.MaxRootFields mutation fields).
// Every /graphql request is recorded in the request log (Requests).
//
// # Admin API
//
// JSON, no auth, served under /_sandbox/ (GET /_sandbox/ returns this list as
// text). Errors are {"error": "..."} with 400, 404 or 409.
//
//	3RPMS sandbox admin API (JSON, no auth)
//	GET    /_sandbox/                               this list
//	GET    /_sandbox/stays                          every stay, cancelled and deleted included
//	POST   /_sandbox/stays                          add a stay {id?, room_id, arrival, departure, reservation_id?, reservation_code?}
//	PATCH  /_sandbox/stays/{id}                     change {arrival?, departure?, room_id?}
//	POST   /_sandbox/stays/{id}/move                move to another room {room_id}
//	DELETE /_sandbox/stays/{id}                     delete a stay; its key assignment is dropped
//	POST   /_sandbox/reservations/{id}/cancel       cancel a reservation (its stays disappear from queries)
//	POST   /_sandbox/reservations/{id}/reactivate   re-activate a cancelled reservation
//	GET    /_sandbox/rooms                          every room
//	POST   /_sandbox/rooms                          add or rename a room {id, name}
//	GET    /_sandbox/clock                          the business clock {now, today}
//	POST   /_sandbox/clock                          set {"now": RFC 3339} or move {"advance": "36h"} the business clock
//	GET    /_sandbox/keys                           every room access key, its owner, content and assignments
//	GET    /_sandbox/requests                       the GraphQL request log {count, requests}
//	DELETE /_sandbox/requests                       empty the request log
//	POST   /_sandbox/cleanup                        run 3RPMS's cleanup of unassigned keys now {deleted: [ids]}
//	GET    /_sandbox/errors                         how GraphQL errors are answered {message_only, rollback_documents}
//	POST   /_sandbox/errors                         {"message_only": true}: errors carry only a message (no code, path or locations);
//	                                                {"rollback_documents": true}: a mutation document with a failed field is undone whole
//	GET    /_sandbox/assumptions                    the switches that break keysync's assumptions {message_only, rollback_documents, hide_qr_data, max_page_size, max_root_fields, refuse_readd, rename_delete_input, non_null_payloads, deleted_as_id, cancelled_by_id, field_errors_as_400}
//	POST   /_sandbox/assumptions                    set any of them {"hide_qr_data": true, "max_page_size": 20, "max_root_fields": 10, …}
//	DELETE /_sandbox/keys/{id}                      delete a key as hotel staff would (taken off its stays)
//	GET    /_sandbox/webhook                        where events go and what was sent {url, deliveries}
//	POST   /_sandbox/webhook                        send signed events {"url", "secret"} ("url": "" stops them)
//
// Dates are "2006-01-02" (DateLayout) throughout.
package sandbox
