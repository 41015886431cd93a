package state

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/keysync/keysync/internal/seal"
	"github.com/keysync/keysync/reconcile"
)

const credentialColumns = `id, property, source, stay_id, system, kind, room_id, remote_id,
	status, assigned, adopted, coalesce(sealed_secret, ''), arrival, departure, updated_at, valid_from, valid_to,
	coalesce(derived_from, 0), replace_only, secretless`

// Credentials returns the live (pending, active, disabled or retired)
// credentials of a property, in the order they were first saved, with
// their secrets opened (see Save); without a key (a read-only open for a
// report) the secrets are left empty.
func (d *DB) Credentials(ctx context.Context, property string) ([]reconcile.Credential, error) {
	creds, err := d.queryCredentials(ctx, `SELECT `+credentialColumns+` FROM credentials
		WHERE property = ? AND `+liveIn+` ORDER BY id`, liveArgs(property)...)
	if err != nil {
		return nil, fmt.Errorf("state: load credentials of %s: %w", property, err)
	}
	return creds, nil
}

// LastRecorded implements reconcile.EndedRecords. It reads only the
// dates, so no secret is opened.
func (d *DB) LastRecorded(ctx context.Context, property string, refs []reconcile.StayRef) (map[reconcile.StayRef]reconcile.Stay, error) {
	out := map[reconcile.StayRef]reconcile.Stay{}
	for _, ref := range refs {
		var arrival, departure sql.NullString
		err := d.db.QueryRowContext(ctx, `SELECT arrival, departure FROM credentials
			WHERE property = ? AND source = ? AND stay_id = ? ORDER BY departure DESC, id DESC LIMIT 1`,
			property, string(ref.Source), ref.ID).Scan(&arrival, &departure)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		st := reconcile.Stay{Ref: ref}
		if err == nil {
			st.Arrival, err = parseDate(arrival)
		}
		if err == nil {
			st.Departure, err = parseDate(departure)
		}
		if err != nil {
			return nil, fmt.Errorf("state: read the dates recorded for stay %s: %w", ref, err)
		}
		out[ref] = st
	}
	return out, nil
}

// Released implements reconcile.ReleasedKeys: of the 3RPMS key ids, those
// a released credential of property names, with its stay (the last
// released). It reads no secret.
func (d *DB) Released(ctx context.Context, property string, ids []string) (map[string]reconcile.StayRef, error) {
	out := map[string]reconcile.StayRef{}
	for _, id := range ids {
		var source, stay string
		err := d.db.QueryRowContext(ctx, `SELECT source, stay_id FROM credentials
			WHERE remote_id = ? AND property = ? AND system = ? AND status = ? ORDER BY id DESC LIMIT 1`,
			id, property, string(reconcile.System3RPMS), string(reconcile.StatusReleased)).Scan(&source, &stay)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("state: read the released records of key %s: %w", id, err)
		}
		out[id] = reconcile.StayRef{Property: property, Source: reconcile.System(source), ID: stay}
	}
	return out, nil
}

// AllCredentials returns every credential of every property and status, in
// the order they were first saved, for reports and invariant checks.
func (d *DB) AllCredentials(ctx context.Context) ([]reconcile.Credential, error) {
	creds, err := d.queryCredentials(ctx, `SELECT `+credentialColumns+` FROM credentials ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("state: load all credentials: %w", err)
	}
	return creds, nil
}

func (d *DB) queryCredentials(ctx context.Context, query string, args ...any) ([]reconcile.Credential, error) {
	rows, err := d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []reconcile.Credential
	for rows.Next() {
		var (
			c                            reconcile.Credential
			sealed                       string
			arrival, departure, updated  sql.NullString
			validFrom, validTo           sql.NullString
			source, system, kind, status string
		)
		if err := rows.Scan(&c.ID, &c.Stay.Property, &source, &c.Stay.ID, &system, &kind, &c.RoomID, &c.RemoteID,
			&status, &c.Assigned, &c.Adopted, &sealed, &arrival, &departure, &updated, &validFrom, &validTo, &c.DerivedFrom, &c.ReplaceOnly, &c.Secretless); err != nil {
			return nil, err
		}
		c.Stay.Source, c.System, c.Kind, c.Status = reconcile.System(source), reconcile.System(system), reconcile.Kind(kind), reconcile.Status(status)
		if c.Arrival, err = parseDate(arrival); err != nil {
			return nil, fmt.Errorf("credential %d: arrival: %w", c.ID, err)
		}
		if c.Departure, err = parseDate(departure); err != nil {
			return nil, fmt.Errorf("credential %d: departure: %w", c.ID, err)
		}
		if c.UpdatedAt, err = parseTime(updated); err != nil {
			return nil, fmt.Errorf("credential %d: updated_at: %w", c.ID, err)
		}
		if c.Valid.Start, err = parseTime(validFrom); err != nil {
			return nil, fmt.Errorf("credential %d: valid_from: %w", c.ID, err)
		}
		if c.Valid.End, err = parseTime(validTo); err != nil {
			return nil, fmt.Errorf("credential %d: valid_to: %w", c.ID, err)
		}
		if sealed != "" && d.key != nil {
			secret, err := d.open(c.ID, sealed)
			if err != nil {
				return nil, err
			}
			setSecret(&c, secret)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Save writes creds and appends the audit entries in one transaction.
// Credentials with ID 0 are inserted, the others updated by ID (an ID the
// file does not hold is an error). A credential's secret (its PIN for a
// 3RPMS key, its Secret for an invite or a key-box access) is written only
// sealed under the DB's key and bound to the credential's id; it is never
// written in plain text, a credential without one keeps the value recorded,
// and a secret to seal without a key is an error. An audit entry refers to
// a.Cred by its ID, including one inserted by this Save. IDs are set on
// creds only once the transaction has committed: after an error they are
// as they were, and nothing was written.
//
// requests are appended to the daily request ledger in the same
// transaction.
func (d *DB) Save(ctx context.Context, creds []*reconcile.Credential, audit []reconcile.Audit, requests ...reconcile.RequestRecord) error {
	if len(creds) == 0 && len(audit) == 0 && len(requests) == 0 {
		return nil
	}
	for _, c := range creds {
		if c == nil {
			return errors.New("state: save credentials: nil credential")
		}
		if err := validStatus(c.Status); err != nil {
			return fmt.Errorf("state: save credential %d of stay %s: %w", c.ID, c.Stay, err)
		}
		if secretOf(c) != "" && d.key == nil {
			return fmt.Errorf("state: save credential of stay %s: %w: its secret cannot be sealed (opened read-only, or without state_key_file?)", c.Stay, seal.ErrNoKey)
		}
	}
	ps := &pendingSave{ctx: ctx, creds: creds, audit: audit, requests: requests}
	d.saves.Wait(ps, func() bool { return ps.done }, func(queued []*pendingSave) []*pendingSave {
		d.commit(queued)
		return nil
	})
	return ps.err
}

// pendingSave is one Save waiting for the writer, and its result.
type pendingSave struct {
	ctx      context.Context
	creds    []*reconcile.Credential
	audit    []reconcile.Audit
	requests []reconcile.RequestRecord
	err      error
	done     bool
}

// commit commits the queued Saves in one transaction: properties applying
// at once queue behind the one writer, and one commit for all of them
// writes the pages they share once (a portfolio's 25 properties spent more
// time waiting for the writer than for their APIs). Each Save still stands
// alone: one whose context is done fails without writing, and if the
// shared transaction fails, each is retried in a transaction of its own,
// so a Save's error is its own and a failed Save wrote nothing.
func (d *DB) commit(queued []*pendingSave) {
	var live []*pendingSave
	for _, ps := range queued {
		if err := ps.ctx.Err(); err != nil {
			ps.err, ps.done = d.openError("save credentials to", err), true
			continue
		}
		live = append(live, ps)
	}
	if len(live) > 1 {
		var creds []*reconcile.Credential
		var audit []reconcile.Audit
		var requests []reconcile.RequestRecord
		for _, ps := range live {
			creds = append(creds, ps.creds...)
			audit = append(audit, ps.audit...)
			requests = append(requests, ps.requests...)
		}
		if inserted, err := d.save(context.WithoutCancel(live[0].ctx), creds, audit, requests); err == nil {
			for c, id := range inserted {
				c.ID = id
			}
			for _, ps := range live {
				ps.done = true
			}
			return
		}
	}
	for _, ps := range live {
		inserted, err := d.save(ps.ctx, ps.creds, ps.audit, ps.requests)
		ps.done = true
		if err != nil {
			ps.err = d.openError("save credentials to", err)
			continue
		}
		for c, id := range inserted {
			c.ID = id
		}
	}
}

// secretOf returns what Save seals for c: the PIN of a 3RPMS key, the
// secret a create of an invite or a key-box access returned.
func secretOf(c *reconcile.Credential) reconcile.Secret {
	if c.System == reconcile.System3RPMS {
		return c.PIN
	}
	return c.Secret
}

// setSecret puts an opened secret where secretOf found it.
func setSecret(c *reconcile.Credential, s reconcile.Secret) {
	if c.System == reconcile.System3RPMS {
		c.PIN = s
	} else {
		c.Secret = s
	}
}

// sealContext binds a sealed value to its credential, so a value copied to
// another row does not open.
func sealContext(id int64) string { return "keysync credential " + strconv.FormatInt(id, 10) }

// open opens the sealed secret of credential id.
func (d *DB) open(id int64, sealed string) (reconcile.Secret, error) {
	pt, err := d.key.Open(sealed, sealContext(id))
	if err != nil {
		return "", fmt.Errorf("state: %s: credential %d: %w; %s", d.path, id, err, wrongKeyRemedy)
	}
	return reconcile.Secret(pt), nil
}

// wrongKeyRemedyOld is what to do about a value the key does not open, up
// to the previous key's id, which names the file `keysync rekey` kept it in.
const wrongKeyRemedyOld = "use the state key the file was sealed with (state_key_file, KEYSYNC_STATE_KEY or the state-key credential); after `keysync rekey` the previous key is kept beside the key file as .old-"

// wrongKeyRemedy says what to do about a value the key does not open.
const wrongKeyRemedy = wrongKeyRemedyOld + "ID, ID being its id"

// wrongKeyRemedyFor is wrongKeyRemedy for a file sealed under the key
// with the given id: the file `keysync rekey` kept it in is named by it.
func wrongKeyRemedyFor(id string) string {
	if id == "" {
		return wrongKeyRemedy
	}
	return wrongKeyRemedyOld + id
}

// save runs Save's transaction and returns the IDs of inserted credentials.
func (d *DB) save(ctx context.Context, creds []*reconcile.Credential, audit []reconcile.Audit, requests []reconcile.RequestRecord) (map[*reconcile.Credential]int64, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()

	// Each statement is prepared once per connection (DB.exec), not parsed
	// again for every row.
	exec := func(query string, args ...any) (sql.Result, error) { return d.exec(ctx, tx, query, args...) }
	inserted := make(map[*reconcile.Credential]int64)
	idOf := func(c *reconcile.Credential) int64 {
		if id, ok := inserted[c]; ok {
			return id
		}
		return c.ID
	}
	// A new row's id is chosen here, as SQLite would (one past the
	// largest; the transaction holds the write lock), so its secret is
	// sealed to it and written with the row in one statement. Rows go in
	// statements of many rows (see rowStatement), updates first, then
	// inserts, so an id the file does not hold fails the Save before a
	// new row can take it. A row listed twice is written once, as writing
	// the list in order would leave it: the same pointer twice is one
	// row; of two copies with one id, the later one's fields and the
	// latest secret either carries.
	var nextID int64
	var newRows, oldRows []credentialRow
	at := map[int64]int{} // index in oldRows by id
	for _, c := range creds {
		if _, ok := inserted[c]; ok {
			continue // inserted by this Save, as it is now
		}
		id := c.ID
		if id == 0 {
			if nextID == 0 {
				if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) + 1 FROM credentials`).Scan(&nextID); err != nil {
					return nil, fmt.Errorf("insert credential for stay %s: %w", c.Stay, err)
				}
			}
			id = nextID
			nextID++
			inserted[c] = id
			newRows = append(newRows, credentialRow{c: c, id: id, secret: secretOf(c)})
			continue
		}
		if i, ok := at[id]; ok {
			// One after the other, an earlier copy's secret stays when a
			// later one carries none.
			oldRows[i] = credentialRow{c: c, id: id, secret: cmp.Or(secretOf(c), oldRows[i].secret)}
			continue
		}
		at[id] = len(oldRows)
		oldRows = append(oldRows, credentialRow{c: c, id: id, secret: secretOf(c)})
	}
	for chunk := range chunks(oldRows) {
		res, err := exec(credentialUpdate.sql(len(chunk)), d.credentialArgs(chunk)...)
		if err == nil {
			var n int64
			if n, err = res.RowsAffected(); err == nil && n != int64(len(chunk)) {
				return nil, missingCredential(ctx, tx, chunk)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("update %d credentials, the first %d of stay %s: %w", len(chunk), chunk[0].id, chunk[0].c.Stay, err)
		}
	}
	for chunk := range chunks(newRows) {
		if _, err := exec(credentialInsert.sql(len(chunk)), d.credentialArgs(chunk)...); err != nil {
			return nil, fmt.Errorf("insert %d credentials, the first for stay %s: %w", len(chunk), chunk[0].c.Stay, err)
		}
	}

	if err := d.appendAudit(ctx, tx, audit, idOf); err != nil {
		return nil, err
	}
	for chunk := range chunks(requests) {
		args := make([]any, 0, len(chunk)*4)
		for _, q := range chunk {
			args = append(args, string(q.System), string(q.Account), formatTime(q.At), q.Write)
		}
		if _, err := exec(requestInsert.sql(len(chunk)), args...); err != nil {
			return nil, fmt.Errorf("append %d requests to the ledger: %w", len(chunk), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return inserted, nil
}

// appendAudit appends audit lines in tx, in statements of many rows; idOf
// gives the row id of the credential a line is about (0: none saved).
func (d *DB) appendAudit(ctx context.Context, tx *sql.Tx, audit []reconcile.Audit, idOf func(*reconcile.Credential) int64) error {
	for chunk := range chunks(audit) {
		args := make([]any, 0, len(chunk)*11)
		for _, a := range chunk {
			var credID any // NULL when the entry concerns no saved credential
			if a.Cred != nil {
				if id := idOf(a.Cred); id != 0 {
					credID = id
				}
			}
			args = append(args, a.RunID, formatTime(a.At), string(a.System), string(a.Op), a.Stay.Property, string(a.Stay.Source), a.Stay.ID,
				credID, a.RemoteID, string(a.Phase), a.Detail)
		}
		if _, err := d.exec(ctx, tx, auditInsert.sql(len(chunk)), args...); err != nil {
			a := chunk[0]
			return fmt.Errorf("append %d audit lines from %s %s for stay %s: %w", len(chunk), a.System, a.Op, a.Stay, err)
		}
	}
	return nil
}

// Spent implements reconcile.Store: the ledger's requests per account at
// or after since. Rows without an account (written before migration 0008)
// come under reconcile.AnyAccount of their system: they count against
// every account of it.
func (d *DB) Spent(ctx context.Context, since time.Time) (map[reconcile.Account]int, error) {
	return d.spent(ctx, since, "")
}

// SpentWrites implements reconcile.WriteSpender: Spent of the writes alone.
func (d *DB) SpentWrites(ctx context.Context, since time.Time) (map[reconcile.Account]int, error) {
	return d.spent(ctx, since, " AND write = 1")
}

func (d *DB) spent(ctx context.Context, since time.Time, only string) (map[reconcile.Account]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT system, account, count(*) FROM requests WHERE at >= ?`+only+` GROUP BY system, account`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("state: read the request ledger: %w", err)
	}
	defer rows.Close()
	out := map[reconcile.Account]int{}
	for rows.Next() {
		var sys, acct string
		var n int
		if err := rows.Scan(&sys, &acct, &n); err != nil {
			return nil, fmt.Errorf("state: read the request ledger: %w", err)
		}
		out[d.ledgerAccount(sys, acct)] += n
	}
	return out, rows.Err()
}

// ledgerAccount is the account a ledger row counts against: its own (or
// the one CountAs renamed it to), or for a row without one, every account
// of its system (AnyAccount).
func (d *DB) ledgerAccount(sys, acct string) reconcile.Account {
	if acct == "" {
		return reconcile.AnyAccount(reconcile.System(sys))
	}
	if m := d.renamed.Load(); m != nil {
		if to, ok := (*m)[reconcile.Account(acct)]; ok {
			return to
		}
	}
	return reconcile.Account(acct)
}

// CountAs makes the ledger's rows recorded under an account that is a key
// of renamed count under its value, in Spent, SpentWrites and
// RequestTimes: a credential whose name changed (a fingerprint computed
// another way since) keeps the requests it sent under its earlier name, so
// its day's budget and its pace go on from where they were instead of
// starting afresh. The rows themselves are left as they are.
func (d *DB) CountAs(renamed map[reconcile.Account]reconcile.Account) {
	m := maps.Clone(renamed)
	d.renamed.Store(&m)
}

// RequestTimes returns the ledger's request times per account at or after
// since, in order: what a new process replays into its pacers. Rows
// without an account come under reconcile.AnyAccount of their system, as
// in Spent.
func (d *DB) RequestTimes(ctx context.Context, since time.Time) (map[reconcile.Account][]time.Time, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT system, account, at FROM requests WHERE at >= ? ORDER BY at`, formatTime(since))
	if err != nil {
		return nil, fmt.Errorf("state: read the request ledger: %w", err)
	}
	defer rows.Close()
	out := map[reconcile.Account][]time.Time{}
	for rows.Next() {
		var sys, acct string
		var at sql.NullString
		if err := rows.Scan(&sys, &acct, &at); err != nil {
			return nil, fmt.Errorf("state: read the request ledger: %w", err)
		}
		t, err := parseTime(at)
		if err != nil {
			return nil, fmt.Errorf("state: read the request ledger: %w", err)
		}
		a := d.ledgerAccount(sys, acct)
		out[a] = append(out[a], t)
	}
	return out, rows.Err()
}

// DeferredStays implements reconcile.Store.
func (d *DB) DeferredStays(ctx context.Context, property string) (map[reconcile.StayRef]bool, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT source, stay_id FROM deferred WHERE property = ?`, property)
	if err != nil {
		return nil, fmt.Errorf("state: read deferred stays of %s: %w", property, err)
	}
	defer rows.Close()
	out := map[reconcile.StayRef]bool{}
	for rows.Next() {
		var source, id string
		if err := rows.Scan(&source, &id); err != nil {
			return nil, fmt.Errorf("state: read deferred stays of %s: %w", property, err)
		}
		out[reconcile.StayRef{Property: property, Source: reconcile.System(source), ID: id}] = true
	}
	return out, rows.Err()
}

// nullID stores 0 as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

func validStatus(s reconcile.Status) error {
	switch s {
	case reconcile.StatusPending, reconcile.StatusActive, reconcile.StatusDisabled, reconcile.StatusDeleted, reconcile.StatusReleased,
		reconcile.StatusAbandoned, reconcile.StatusRetired:
		return nil
	}
	return fmt.Errorf("unknown status %q", s)
}

// liveIn is the condition that a credentials row is live
// (reconcile.Status.Live); liveArgs appends its arguments to args.
const liveIn = `status IN (?, ?, ?, ?)`

func liveArgs(args ...any) []any {
	return append(args, string(reconcile.StatusPending), string(reconcile.StatusActive), string(reconcile.StatusDisabled), string(reconcile.StatusRetired))
}

// RecentFailures implements reconcile.Store.
func (d *DB) RecentFailures(ctx context.Context, property string, before int64, n int) (map[reconcile.FailureKey]int, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT source, stay_id, system, op, COUNT(DISTINCT run_id) FROM audit
		WHERE property = ? AND phase IN (?, ?)
		AND run_id IN (SELECT id FROM runs WHERE id < ? ORDER BY id DESC LIMIT ?)
		GROUP BY source, stay_id, system, op`,
		property, string(reconcile.PhaseFailed), string(reconcile.PhaseUnknown), before, n)
	if err != nil {
		return nil, fmt.Errorf("state: recent failures of %s: %w", property, err)
	}
	defer rows.Close()
	out := map[reconcile.FailureKey]int{}
	for rows.Next() {
		var (
			k                  reconcile.FailureKey
			source, system, op string
			runs               int
		)
		if err := rows.Scan(&source, &k.Stay.ID, &system, &op, &runs); err != nil {
			return nil, fmt.Errorf("state: recent failures of %s: %w", property, err)
		}
		k.Stay.Property, k.Stay.Source, k.System, k.Op = property, reconcile.System(source), reconcile.System(system), reconcile.Op(op)
		out[k] = runs
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: recent failures of %s: %w", property, err)
	}
	return out, nil
}

var _ reconcile.PropertyLister = (*DB)(nil)

// LiveProperties implements reconcile.PropertyLister.
func (d *DB) LiveProperties(ctx context.Context) (map[string]int, error) {
	out, err := liveProperties(ctx, d.db)
	if err != nil {
		return nil, fmt.Errorf("state: list properties: %w", err)
	}
	return out, nil
}

// liveProperties counts the live credentials of every property db records
// any of.
func liveProperties(ctx context.Context, db *sql.DB) (map[string]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT property, COUNT(*) FROM credentials
		WHERE `+liveIn+` GROUP BY property`, liveArgs()...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		out[name] = n
	}
	return out, rows.Err()
}

// backfilledKey is the meta key recording a property's completed backfill.
func backfilledKey(property string) string { return "backfilled/" + property }

// Backfilled implements reconcile.Store.
func (d *DB) Backfilled(ctx context.Context, property string) (bool, error) {
	var v string
	err := d.db.QueryRowContext(ctx, "SELECT value FROM meta WHERE key = ?", backfilledKey(property)).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("state: read whether %s was backfilled: %w", property, err)
	}
	return true, nil
}

// MarkBackfilled implements reconcile.Store.
func (d *DB) MarkBackfilled(ctx context.Context, property string, at time.Time) error {
	if _, err := d.db.ExecContext(ctx, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", backfilledKey(property), formatTime(at)); err != nil {
		return fmt.Errorf("state: record that %s was backfilled: %w", property, err)
	}
	return nil
}

// Rekey seals every secret in the file again under next, in one
// transaction, and from then on uses next. Each value is opened with the
// DB's key first: a value that does not open fails the whole rekey, and
// nothing is written. It returns how many values were sealed again.
func (d *DB) Rekey(ctx context.Context, next *seal.Key) (int, error) {
	if next == nil {
		return 0, errors.New("state: rekey: no new key")
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, d.openError("rekey", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, "SELECT id, sealed_secret FROM credentials WHERE sealed_secret IS NOT NULL ORDER BY id")
	if err != nil {
		return 0, d.openError("rekey", err)
	}
	resealed := map[int64]string{}
	for rows.Next() {
		var id int64
		var sealed string
		if err := rows.Scan(&id, &sealed); err != nil {
			rows.Close()
			return 0, d.openError("rekey", err)
		}
		if d.key == nil {
			rows.Close()
			return 0, fmt.Errorf("state: rekey %s: %w: the file holds sealed secrets", d.path, seal.ErrNoKey)
		}
		secret, err := d.open(id, sealed)
		if err != nil {
			rows.Close()
			return 0, err
		}
		resealed[id] = next.Seal(secret.Reveal(), sealContext(id))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, d.openError("rekey", err)
	}
	for id, sealed := range resealed {
		if _, err := tx.ExecContext(ctx, "UPDATE credentials SET sealed_secret = ? WHERE id = ?", sealed, id); err != nil {
			return 0, d.openError("rekey", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, d.openError("rekey", err)
	}
	d.key = next
	return len(resealed), nil
}

// requestInsert appends requests to the daily ledger.
var requestInsert = newRowStatement("INSERT INTO requests (system, account, at, write) VALUES ", 4, "")

// auditInsert appends audit lines.
var auditInsert = newRowStatement("INSERT INTO audit (run_id, at, system, op, property, source, stay_id, credential_id, remote_id, phase, detail) VALUES ", 11, "")

// credentialRow is a credential to write and the id of its row.
type credentialRow struct {
	c      *reconcile.Credential
	id     int64
	secret reconcile.Secret // what to seal: c's, or an earlier copy's
}

// credentialArgs are the values of rows, in the order of
// credentialInsert's and credentialUpdate's columns, each secret sealed to
// its row's id (NULL, where a credential has none, leaves a stored one).
func (d *DB) credentialArgs(rows []credentialRow) []any {
	args := make([]any, 0, len(rows)*credentialValues)
	for _, r := range rows {
		c := r.c
		var sealed any
		if s := r.secret; s != "" {
			sealed = d.key.Seal(s.Reveal(), sealContext(r.id))
		}
		args = append(args, c.Stay.Property, string(c.Stay.Source), c.Stay.ID, string(c.System), string(c.Kind), c.RoomID, c.RemoteID,
			string(c.Status), c.Assigned, c.Adopted, formatDate(c.Arrival), formatDate(c.Departure), formatTime(c.UpdatedAt),
			formatTime(c.Valid.Start), formatTime(c.Valid.End), nullID(c.DerivedFrom), c.ReplaceOnly, c.Secretless, sealed, r.id)
	}
	return args
}

// credentialValues is the number of values credentialArgs gives a row.
const credentialValues = 20

// credentialInsert writes new credential rows; credentialUpdate writes
// existing ones, joined by id to a VALUES list (SQLite names its columns
// column1 to column20), and its changes count the rows that exist.
var (
	credentialInsert = newRowStatement(`INSERT INTO credentials (property, source, stay_id, system, kind, room_id, remote_id,
	status, assigned, adopted, arrival, departure, updated_at, valid_from, valid_to, derived_from, replace_only, secretless,
	sealed_secret, id) VALUES `, credentialValues, "")
	credentialUpdate = newRowStatement(`UPDATE credentials SET property = v.column1, source = v.column2, stay_id = v.column3,
	system = v.column4, kind = v.column5, room_id = v.column6, remote_id = v.column7, status = v.column8,
	assigned = v.column9, adopted = v.column10, arrival = v.column11, departure = v.column12, updated_at = v.column13,
	valid_from = v.column14, valid_to = v.column15, derived_from = v.column16, replace_only = v.column17,
	secretless = v.column18, sealed_secret = coalesce(v.column19, credentials.sealed_secret)
	FROM (VALUES `, credentialValues, `) AS v WHERE credentials.id = v.column20`)
)

// missingCredential names the first of rows whose id the file does not
// hold, after an UPDATE changed fewer rows than it carried.
func missingCredential(ctx context.Context, tx *sql.Tx, rows []credentialRow) error {
	for _, r := range rows {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM credentials WHERE id = ?`, r.id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("update credential %d of stay %s: no such credential", r.id, r.c.Stay)
		}
		if err != nil {
			return fmt.Errorf("update credential %d of stay %s: %w", r.id, r.c.Stay, err)
		}
	}
	return fmt.Errorf("update %d credentials, the first %d of stay %s: fewer rows changed than the statement carried", len(rows), rows[0].id, rows[0].c.Stay)
}

// liveRemotes returns how many live credentials of property the file
// holds, and the id of each that has a remote id, by heldKey (a 3RPMS key
// on two stays is a row for each).
func liveRemotes(ctx context.Context, tx *sql.Tx, property string) (map[string]int64, int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, system, remote_id, stay_id FROM credentials WHERE property = ? AND `+liveIn, liveArgs(property)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out, n := map[string]int64{}, 0
	for rows.Next() {
		var id int64
		var system, remote, stay string
		if err := rows.Scan(&id, &system, &remote, &stay); err != nil {
			return nil, 0, err
		}
		n++
		if remote != "" {
			out[heldKey(system, remote, stay)] = id
		}
	}
	return out, n, rows.Err()
}

// heldKey names a credential across state files: its system, remote id and
// stay.
func heldKey(system, remote, stay string) string { return system + " " + remote + " " + stay }

// OpCarryOver is the operation of the audit lines CarryOver writes: a
// record taken over from another state file, not an action of a plan.
const OpCarryOver reconcile.Op = "carry_over"

// Carried is what another state file knew of a property: when it last
// took in a read of it (ReconciledAt) and its live credentials (read with
// that file's Credentials).
type Carried struct {
	Property     string
	ReconciledAt time.Time
	Credentials  []reconcile.Credential
	// From names the file the record comes from, for the audit trail.
	From string
	// Replace drops this file's live credentials of the property, whose
	// record here is older than the one carried (the property was
	// reconciled elsewhere since, and came back); their audit lines follow
	// the carried credentials of the same remote credentials and stays.
	Replace bool
}

// CarryOver records in this file what other state files knew of properties
// this file has no live credential of: a shard's file takes over the
// record of the file a property was last reconciled in, after the number
// of shards changed or the property moved to this shard, so its runs
// withdraw what a stay cancelled meanwhile still holds. The credentials
// get new ids of this file, in order; a key made from another credential
// (DerivedFrom) names that credential's new id when it is of the same
// property, and nothing when not. Secrets are sealed to their new rows.
// Each property's ReconciledAt becomes this file's, so the record is as
// recent here as where it came from. A property with live credentials here
// is refused, unless Replace. The audit trail says what happened, at at
// (outside any run): a line for each credential taken over, naming the
// file and its id there, and one for a record replaced. Nothing is
// written unless all is.
func (d *DB) CarryOver(ctx context.Context, at time.Time, records ...Carried) error {
	if len(records) == 0 {
		return nil
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: carry records over into %s: %w", d.path, err)
	}
	defer tx.Rollback()
	var id int64
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM credentials`).Scan(&id); err != nil {
		return fmt.Errorf("state: carry records over into %s: %w", d.path, err)
	}
	first := id // the rows carried over come after
	var rows []credentialRow
	var audit []reconcile.Audit
	var drop []string          // the properties whose older record goes
	moved := map[int64]int64{} // a dropped credential's id → its carried counterpart's
	for _, rec := range records {
		held, n, err := liveRemotes(ctx, tx, rec.Property)
		if err != nil {
			return fmt.Errorf("state: carry records over into %s: %w", d.path, err)
		}
		switch {
		case n > 0 && rec.Replace:
			drop = append(drop, rec.Property)
			audit = append(audit, reconcile.Audit{At: at, Op: OpCarryOver, Stay: reconcile.StayRef{Property: rec.Property}, Phase: reconcile.PhaseDone,
				Detail: fmt.Sprintf("dropped the %d live credentials recorded here: %s read the property since, and its record is taken over", n, rec.From)})
		case n > 0:
			return fmt.Errorf("state: carry the record of %s over into %s: it records %d live credentials of it already", rec.Property, d.path, n)
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", reconciledKey(rec.Property), formatTime(rec.ReconciledAt)); err != nil {
			return fmt.Errorf("state: carry the record of %s over into %s: %w", rec.Property, d.path, err)
		}
		ids := make(map[int64]int64, len(rec.Credentials)) // old id → new
		first := len(rows)
		for i := range rec.Credentials {
			c := rec.Credentials[i] // a copy: its id and DerivedFrom change
			if c.Stay.Property != rec.Property {
				return fmt.Errorf("state: carry the record of %s over: credential %d is of %s", rec.Property, c.ID, c.Stay.Property)
			}
			if err := validStatus(c.Status); err != nil {
				return fmt.Errorf("state: carry over credential %d of stay %s: %w", c.ID, c.Stay, err)
			}
			if secretOf(&c) != "" && d.key == nil {
				return fmt.Errorf("state: carry over credential %d of stay %s: %w", c.ID, c.Stay, seal.ErrNoKey)
			}
			id++
			ids[c.ID] = id
			if old, ok := held[heldKey(string(c.System), c.RemoteID, c.Stay.ID)]; ok {
				moved[old] = id
			}
			rows = append(rows, credentialRow{c: &c, id: id, secret: secretOf(&c)})
			audit = append(audit, reconcile.Audit{At: at, System: c.System, Op: OpCarryOver, Stay: c.Stay, Cred: &c, RemoteID: c.RemoteID, Phase: reconcile.PhaseDone,
				Detail: fmt.Sprintf("taken over from %s, where it was credential %d", rec.From, c.ID)})
		}
		for _, r := range rows[first:] {
			r.c.ID, r.c.DerivedFrom = r.id, ids[r.c.DerivedFrom]
		}
	}
	for chunk := range chunks(rows) {
		if _, err := d.exec(ctx, tx, credentialInsert.sql(len(chunk)), d.credentialArgs(chunk)...); err != nil {
			return fmt.Errorf("state: carry %d credentials over into %s: %w", len(chunk), d.path, err)
		}
	}
	// The audit lines of a dropped credential follow it to the one carried
	// over for the same remote credential, so history still finds them by
	// its room; then the older record goes.
	for old, carried := range moved {
		if _, err := tx.ExecContext(ctx, `UPDATE audit SET credential_id = ? WHERE credential_id = ?`, carried, old); err != nil {
			return fmt.Errorf("state: carry records over into %s: %w", d.path, err)
		}
	}
	for _, property := range drop {
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE property = ? AND `+liveIn+` AND id <= ?`, append(liveArgs(property), first)...); err != nil {
			return fmt.Errorf("state: carry the record of %s over into %s: drop the older one: %w", property, d.path, err)
		}
	}
	if err := d.appendAudit(ctx, tx, audit, func(c *reconcile.Credential) int64 { return c.ID }); err != nil {
		return fmt.Errorf("state: carry records over into %s: %w", d.path, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: carry records over into %s: %w", d.path, err)
	}
	return nil
}

// ReleaseHeld implements reconcile.Releaser: in one transaction, each live
// credential of property whose remote credential (its system and remote
// id) one of holders records live for the same stay (its source and id)
// and room, and which the holder claimed or adopted (a renamed property's
// new name takes its credentials over so), becomes released, with an audit
// line naming the holder and its credential. (Ids need be unique only
// within an account: two hotels on their own 3RPMS may both hold a key
// "rak_1", for stays and rooms numbered alike too, as every sandbox seeds
// them; a credential a holder created is on its own systems, never the
// removed property's.) A property that had any
// released is no longer marked backfilled. It returns how many; with
// dryRun it writes nothing.
func (d *DB) ReleaseHeld(ctx context.Context, property string, holders []string, at time.Time, dryRun bool) (int, error) {
	if len(holders) == 0 {
		return 0, nil
	}
	fail := func(err error) (int, error) {
		return 0, fmt.Errorf("state: release the credentials of %s that other properties hold: %w", property, err)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	args := liveArgs(property)
	for _, h := range holders {
		args = append(args, h)
	}
	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.source, c.stay_id, c.system, c.remote_id, min(o.property), min(o.id)
		FROM credentials c JOIN credentials o ON o.system = c.system AND o.remote_id = c.remote_id
			AND o.source = c.source AND o.stay_id = c.stay_id AND o.room_id = c.room_id
		WHERE c.property = ? AND c.`+liveIn+` AND c.remote_id != ''
			AND o.property IN (`+strings.Repeat("?, ", len(holders)-1)+`?) AND o.`+liveIn+` AND o.adopted = 1
		GROUP BY c.id ORDER BY c.id`, liveArgs(args...)...)
	if err != nil {
		return fail(err)
	}
	var audit []reconcile.Audit
	var ids []int64
	for rows.Next() {
		var c reconcile.Credential
		var source, system, holder string
		var holderID int64
		if err := rows.Scan(&c.ID, &source, &c.Stay.ID, &system, &c.RemoteID, &holder, &holderID); err != nil {
			rows.Close()
			return fail(err)
		}
		c.Stay.Property, c.Stay.Source, c.System = property, reconcile.System(source), reconcile.System(system)
		ids = append(ids, c.ID)
		audit = append(audit, reconcile.Audit{At: at, System: c.System, Op: reconcile.OpRelease, Stay: c.Stay, Cred: &c, RemoteID: c.RemoteID, Phase: reconcile.PhaseDone,
			Detail: fmt.Sprintf("property %s holds it now (its credential %d): %s is no longer in the config (renamed?)", holder, holderID, property)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(err)
	}
	if dryRun || len(ids) == 0 {
		return len(ids), nil
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `UPDATE credentials SET status = ?, updated_at = ? WHERE id = ?`, string(reconcile.StatusReleased), formatTime(at), id); err != nil {
			return fail(err)
		}
	}
	if err := d.appendAudit(ctx, tx, audit, func(c *reconcile.Credential) int64 { return c.ID }); err != nil {
		return fail(err)
	}
	// Its credentials went with its stays to another name: should this
	// name come back (renamed back), its first run claims and adopts them
	// again, as a new property's does.
	if _, err := tx.ExecContext(ctx, `DELETE FROM meta WHERE key = ?`, backfilledKey(property)); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return len(ids), nil
}
