// Package openapp issues OpenApp time-bound access invites (the OpenApp access invites API) for
// rooms opened by QR code (method qr): one invite per stay, to the room's
// portals plus the property's shared portals (lobby, garage), valid for the
// stay's window. Sink implements reconcile.Sink, one invite per request:
//
//   - OpCreate:  POST   {base}/integrations/{integration_id}/access-invites
//     {portal_ids, name, valid_from, valid_to, max_uses?} → invite_token,
//     invite_link_id (Outcome.Secret, Outcome.RemoteID);
//   - OpUpdate:  PUT    …/access-invites/{invite_link_id}
//     {portal_ids, name, valid_from, valid_to, is_enabled: true}: a date
//     change or room move keeps the link, so the guest's URL keeps working;
//   - OpDisable: PUT    …/access-invites/{invite_link_id} {is_enabled: false};
//   - OpDelete:  DELETE …/access-invites/{invite_link_id}.
//
// Sink also implements reconcile.Finder: Find reads back a create whose
// answer was lost by listing the integration's invites (GET
// …/access-invites?page=&per_page=, every page) and picking the one whose
// name carries the stay's OwnerTag (see Sink.Find).
//
// Every request carries "Authorization: Bearer <API key>", "X-Org: <org
// id>" and "Content-Type: application/json", waits on the Pacer and is
// counted in the Meter, each retry included: the list as a read, the rest
// as writes. Options.Retry waits out 429s and retries GET, PUT and DELETE
// (never a create) after an outage. Errors name the operation and the
// stay, wrap the reconcile sentinels (see Sink.Apply) and never hold the
// API key, an invite token or a response body: of a 4xx answer only the
// server's message is quoted, with the API key, the credential's token and
// any mixed-case word of 20 or more characters (a token, perhaps) cut out.
// GuestURL builds the link a guest opens, which keysync writes to 3RPMS as
// RoomAccessQR qrData.
//
// Assumptions where the API document is silent, made here and in package sandbox
// alike:
//   - PUT accepts the create fields (portal_ids, name, valid_from,
//     valid_to, max_uses) besides is_enabled, and changes only those sent;
//     the API document says only that PUT can "disable (is_enabled:false) or narrow
//     validity". An update also re-sends the name, whose dates would
//     otherwise go stale; max_uses is left as created. A refused update or
//     switch-off makes the planner replace or delete the invite from then
//     on (reconcile.Credential.ReplaceOnly; the sandbox's PutOnlyNarrows).
//   - Errors are JSON {"error": "..."} (a "message" field is read too);
//     401 is a refused key, 403 a key outside the X-Org organisation, 404
//     an unknown integration or invite, 409 a conflict, 400 and 422 invalid
//     input, 429 rate limiting with Retry-After in seconds or as an HTTP
//     date. A 404 on DELETE is taken as "already gone"; it cannot be told
//     apart from a wrong integration id, which the creates would have
//     exposed first. A 404 on PUT is not: a server without a PUT route
//     may answer it for a live invite, so the invite is replaced or
//     deleted (reconcile.Credential.ReplaceOnly; the sandbox's
//     PutNotFound), never forgotten.
//   - The response to a create is 201 (any 2xx is accepted) with JSON
//     {invite_token, invite_link_id}, the id (here and in the list) a
//     string or an integer, kept as its text; PUT and DELETE answer 2xx with an
//     empty or JSON body, which the sink does not read further.
//   - GET /integrations/{integration_id}/access-invites lists the
//     integration's invites that are not deleted (enabled or not, whoever
//     created them), oldest first, a page at a time: query page (from 1,
//     default 1) and per_page (1 to 100, default 50); the answer is 200
//     {"data": [{invite_link_id, invite_token, name, portal_ids,
//     valid_from, valid_to, is_enabled}, …], "has_more": bool} (an
//     invite also counts as switched off when "enabled" is false or a
//     "status" or "state" says disabled, revoked, cancelled,
//     deleted, suspended or void, not "inactive", which may mean not yet
//     started: listedInvite.off; the sandbox's
//     SetDisabledAsStatus), valid_from
//     and valid_to as RFC 3339 (the first start and last end of a
//     multi-window invite). The sink asks for 100 a page and follows
//     has_more, up to maxListPages pages; a first page refused with 400 or
//     422 is asked again without per_page, and the list is then read at
//     the server's own page size. The OpenApp document shows no
//     list call at all: a 405 to it, or Options.NoList, is
//     reconcile.ErrNoList, on which a backfill creates rather than adopts
//     and a lost create is issued again (the sandbox's NoList); a 404 stays
//     a failure that names openapp.no_list.
//   - Invites carry no owner field, so keysync marks its own in the name:
//     a human part (guest name or "Guest stay", and the dates) followed by
//     OwnerTag, "[keysync:<property>:<source>:<stay id>]". ParseOwnerTag
//     reads it back. The sink only ever changes invite ids it is given;
//     Find reads invites and returns the id of one carrying the stay's tag,
//     never one without it.
//   - valid_from and valid_to are sent as RFC 3339 UTC with whole seconds
//     (fractions cut), and the window is always absolute (no expires_in,
//     no schedules), valid_to the first instant the invite no longer
//     opens; a list's valid_from and valid_to may carry any offset or
//     fraction. valid_from is sent as the stay's start even once it has
//     passed (an in-house guest's update, a room move, a backfill): the
//     document says nothing of a start in the past; a server that refuses
//     one refuses that create or update (400 or 422), which leaves the
//     guest the invite they hold and is retried and then named for a
//     person, never answered by an invite with another window.
//   - max_uses is sent only when Options.MaxUses is set: the document
//     shows max_uses: 30 but not what an invite without it allows; keysync
//     takes it as unlimited. A server whose default is a small number
//     locks the guest out once it is spent: set max_uses then.
//   - A create's answer must hold both fields in its body, whatever its
//     2xx status (200, 201 or 202); one that does not (a token only in a
//     Location header, an empty 202) is an unknown outcome, read back from
//     the list by the owner tag; without a list it is issued again.
//   - The guest URL is deployment-specific ("build the guest URL per your
//     deployment"), so its base is configuration: a URL with a {token}
//     placeholder, or one the token is appended to as a path segment.
package openapp
