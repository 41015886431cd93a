// Package sandboxkit is what the four sandboxes (3RPMS, Guestway, OpenApp,
// the key box) share: the business clock and its admin route, the request
// log and its admin routes, the per-caller rate and daily-cap limiter that
// answers 429 as the real services would, the JSON helpers of their admin
// APIs, and how an API answer is written (Answer) and told from an admin
// request (Route). keysync itself never imports it; it paces with
// reconcile.Pacer.
//
// Every sandbox's admin API, under /_sandbox/, starts from Mount:
//
//	GET    /_sandbox/          the sandbox's route list, as plain text
//	GET    /_sandbox/clock     the business clock {now} (some add {today})
//	POST   /_sandbox/clock     set {"now": RFC 3339} or move {"advance": "36h"} the business clock
//	GET    /_sandbox/requests  the request log {count, requests}
//	DELETE /_sandbox/requests  empty the request log {cleared}
//
// and any other path Mount's mux does not know answers 404 {error} naming
// GET /_sandbox/.
package sandboxkit
