package state

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/keysync/keysync/reconcile"
)

// RunStatus is where a recorded run stands.
type RunStatus string

// Run statuses.
const (
	// RunRunning: begun and not finished; a run that was killed stays so.
	RunRunning RunStatus = "running"
	// RunOK: finished with everything planned done.
	RunOK RunStatus = "ok"
	// RunPartial: finished with something left undone (see Report.Partial).
	RunPartial RunStatus = "partial"
)

// RunRow is one recorded run.
type RunRow struct {
	ID        int64
	Mode      reconcile.Mode
	StartedAt time.Time
	Status    RunStatus
	Partial   bool
	// Report is the run's reconcile.Report as JSON, nil until it finished.
	Report json.RawMessage
	// Ended says whether EndRun recorded how the run ended: its ExitCode
	// and Duration. A run that was killed, or recorded by a keysync older
	// than this field, has not.
	Ended    bool
	ExitCode int
	Duration time.Duration
}

// AuditRow is one recorded audit entry.
type AuditRow struct {
	ID     int64
	RunID  int64
	At     time.Time
	System reconcile.System
	Op     reconcile.Op
	Stay   reconcile.StayRef
	// CredentialID is the credential concerned; 0 when none, or when that
	// credential has been pruned.
	CredentialID int64
	RemoteID     string
	Phase        reconcile.Phase
	Detail       string
}

// BeginRun records the start of a run and returns its id.
func (d *DB) BeginRun(ctx context.Context, mode reconcile.Mode, now time.Time) (int64, error) {
	res, err := d.db.ExecContext(ctx, `INSERT INTO runs (mode, started_at, status) VALUES (?, ?, ?)`,
		string(mode), formatTime(now), string(RunRunning))
	if err != nil {
		return 0, d.openError("begin run in", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, d.openError("begin run in", err)
	}
	return id, nil
}

// FinishRun records a run's end: its report as gzip-compressed JSON
// (secrets marshal redacted) and status RunPartial or RunOK as r.Partial()
// says.
func (d *DB) FinishRun(ctx context.Context, id int64, r *reconcile.Report) error {
	if r == nil {
		return fmt.Errorf("state: finish run %d: nil report", id)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("state: finish run %d: encode report: %w", id, err)
	}
	if b, err = compress(b); err != nil {
		return fmt.Errorf("state: finish run %d: compress report: %w", id, err)
	}
	status, partial := RunOK, r.Partial()
	if partial {
		status = RunPartial
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.openError(fmt.Sprintf("finish run %d in", id), err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE runs SET status = ?, partial = ?, report_gzip = ?, report_json = NULL WHERE id = ?`,
		string(status), partial, b, id)
	if err != nil {
		return d.openError(fmt.Sprintf("finish run %d in", id), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return d.openError(fmt.Sprintf("finish run %d in", id), err)
	} else if n == 0 {
		return fmt.Errorf("state: finish run %d: no such run", id)
	}
	// The stays whose work was deferred, per property planned this run.
	for _, p := range r.Plans {
		if _, err := tx.ExecContext(ctx, `DELETE FROM deferred WHERE property = ?`, p.Property); err != nil {
			return d.openError(fmt.Sprintf("finish run %d in", id), err)
		}
		for _, a := range p.Actions {
			if a.Result != reconcile.ResultDeferred {
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO deferred (property, source, stay_id) VALUES (?, ?, ?)`,
				a.Stay.Property, string(a.Stay.Source), a.Stay.ID); err != nil {
				return d.openError(fmt.Sprintf("finish run %d in", id), err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return d.openError(fmt.Sprintf("finish run %d in", id), err)
	}
	return nil
}

// EndRun records how a run ended: the exit status its command returned and
// how long it took.
func (d *DB) EndRun(ctx context.Context, id int64, exitCode int, took time.Duration) error {
	res, err := d.db.ExecContext(ctx, `UPDATE runs SET exit_code = ?, duration_ms = ? WHERE id = ?`, exitCode, took.Milliseconds(), id)
	if err != nil {
		return d.openError(fmt.Sprintf("end run %d in", id), err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return d.openError(fmt.Sprintf("end run %d in", id), err)
	} else if n == 0 {
		return fmt.Errorf("state: end run %d: no such run", id)
	}
	return nil
}

// LastRunAt returns the instant the latest recorded run acted at (its
// --now), or the zero time when none is recorded.
func (d *DB) LastRunAt(ctx context.Context) (time.Time, error) {
	var at sql.NullString
	if err := d.db.QueryRowContext(ctx, `SELECT max(started_at) FROM runs`).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("state: read the last run: %w", err)
	}
	t, err := parseTime(at)
	if err != nil {
		return time.Time{}, fmt.Errorf("state: read the last run: %w", err)
	}
	return t, nil
}

// LastSuccessAt returns when the latest whole run (a run or a backfill:
// not a plan, not a webhook's targeted run) that succeeded ended (when it
// started, for one that did not record its end), or the zero time when
// none is recorded.
func (d *DB) LastSuccessAt(ctx context.Context) (time.Time, error) {
	runs, err := d.runs(ctx, `WHERE status = ? AND mode IN (?, ?) ORDER BY id DESC LIMIT 1`,
		string(RunOK), string(reconcile.ModeRun), string(reconcile.ModeBackfill))
	if err != nil || len(runs) == 0 {
		return time.Time{}, err
	}
	return runs[0].StartedAt.Add(runs[0].Duration), nil
}

// LastWholeRun returns the latest whole run (a run or a backfill) that
// recorded how it ended; ok is false when there is none.
func (d *DB) LastWholeRun(ctx context.Context) (r RunRow, ok bool, err error) {
	runs, err := d.runs(ctx, `WHERE exit_code IS NOT NULL AND mode IN (?, ?) ORDER BY id DESC LIMIT 1`,
		string(reconcile.ModeRun), string(reconcile.ModeBackfill))
	if err != nil || len(runs) == 0 {
		return RunRow{}, false, err
	}
	return runs[0], true, nil
}

// TargetedRunsAfter returns the targeted runs (webhooks', polls', run
// --stay) after run id that recorded how they ended, oldest first, with
// their reports.
func (d *DB) TargetedRunsAfter(ctx context.Context, id int64) ([]RunRow, error) {
	return d.runs(ctx, `WHERE id > ? AND exit_code IS NOT NULL AND mode = ? ORDER BY id`, id, string(reconcile.ModeTargeted))
}

// Runs returns the last n recorded runs (every one when n <= 0), oldest
// first, with their reports: status lists the last few without reading
// every report the retention keeps.
func (d *DB) Runs(ctx context.Context, n int) ([]RunRow, error) {
	if n <= 0 {
		return d.runs(ctx, `ORDER BY id`)
	}
	runs, err := d.runs(ctx, `ORDER BY id DESC LIMIT ?`, n)
	slices.Reverse(runs)
	return runs, err
}

var _ reconcile.UnlistedHistory = (*DB)(nil)

// LastUnlisted implements reconcile.UnlistedHistory from the report of the
// last finished whole run (run or backfill) before run before.
func (d *DB) LastUnlisted(ctx context.Context, property string, before int64) (map[reconcile.StayRef]bool, error) {
	out := map[reconcile.StayRef]bool{}
	err := d.wholeRunReports(ctx, before, 1, func(rep *wholeRunReport) {
		for _, p := range rep.Plans {
			for _, n := range p.Notes {
				if p.Property == property && n.Kind == reconcile.NoteUnlistedOnce {
					out[n.Stay] = true
				}
			}
		}
	})
	return out, err
}

var _ reconcile.ReadFailureHistory = (*DB)(nil)

// RecentReadFailures implements reconcile.ReadFailureHistory from the
// reports of the n finished whole runs (run or backfill) before run
// before.
func (d *DB) RecentReadFailures(ctx context.Context, before int64, n int) (map[string]int, error) {
	out := map[string]int{}
	err := d.wholeRunReports(ctx, before, n, func(rep *wholeRunReport) {
		seen := map[string]bool{}
		for _, f := range rep.Failures {
			if f.Read && !seen[f.Property] {
				seen[f.Property] = true
				out[f.Property]++
			}
		}
	})
	return out, err
}

// wholeRunReport is what the run histories read of a recorded report.
type wholeRunReport struct {
	Failures []reconcile.Failure `json:"failures"`
	Plans    []struct {
		Property string           `json:"property"`
		Notes    []reconcile.Note `json:"notes"`
	} `json:"plans"`
}

// wholeRunReports calls visit with the report of each of the n finished
// whole runs (run or backfill) before run before, the latest first.
func (d *DB) wholeRunReports(ctx context.Context, before int64, n int, visit func(*wholeRunReport)) error {
	runs, err := d.runs(ctx, `WHERE id < ? AND mode IN (?, ?) AND `+d.hasReport()+` ORDER BY id DESC LIMIT ?`,
		before, string(reconcile.ModeRun), string(reconcile.ModeBackfill), n)
	if err != nil {
		return err
	}
	for _, r := range runs {
		var rep wholeRunReport
		if err := json.Unmarshal(r.Report, &rep); err != nil {
			return fmt.Errorf("state: read the report of run %d: %w", r.ID, err)
		}
		visit(&rep)
	}
	return nil
}

// hasReport is the condition that a run's report is recorded (it has
// finished).
func (d *DB) hasReport() string {
	if d.oldReports {
		return "report_json IS NOT NULL"
	}
	return "(report_gzip IS NOT NULL OR report_json IS NOT NULL)"
}

// runs returns the runs a query's tail (WHERE, ORDER BY, LIMIT) selects.
func (d *DB) runs(ctx context.Context, tail string, args ...any) ([]RunRow, error) {
	gzipped := "report_gzip"
	if d.oldReports {
		gzipped = "NULL" // a file read before migration 0011
	}
	rows, err := d.db.QueryContext(ctx, `SELECT id, mode, started_at, status, partial, report_json, `+gzipped+`, exit_code, duration_ms FROM runs `+tail, args...)
	if err != nil {
		return nil, d.openError("load runs of", err)
	}
	defer rows.Close()
	var out []RunRow
	for rows.Next() {
		var (
			r             RunRow
			mode, status  string
			started, body sql.NullString
			gz            []byte
			code, took    sql.NullInt64
		)
		if err := rows.Scan(&r.ID, &mode, &started, &status, &r.Partial, &body, &gz, &code, &took); err != nil {
			return nil, d.openError("load runs of", err)
		}
		r.Mode, r.Status = reconcile.Mode(mode), RunStatus(status)
		if r.StartedAt, err = parseTime(started); err != nil {
			return nil, fmt.Errorf("state: load runs: run %d: started_at: %w", r.ID, err)
		}
		switch {
		case gz != nil:
			b, err := decompress(gz)
			if err != nil {
				return nil, fmt.Errorf("state: %s: load runs: the report of run %d: %w", d.path, r.ID, err)
			}
			r.Report = json.RawMessage(b)
		case body.Valid:
			r.Report = json.RawMessage(body.String)
		}
		r.Ended, r.ExitCode, r.Duration = code.Valid, int(code.Int64), time.Duration(took.Int64)*time.Millisecond
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, d.openError("load runs of", err)
	}
	return out, nil
}

// AuditLog returns the audit entries of one run, or of all runs when runID
// is 0, in the order they were written.
func (d *DB) AuditLog(ctx context.Context, runID int64) ([]AuditRow, error) {
	q := `SELECT id, run_id, at, system, op, property, source, stay_id, credential_id, remote_id, phase, detail FROM audit`
	var args []any
	if runID != 0 {
		q += ` WHERE run_id = ?`
		args = append(args, runID)
	}
	rows, err := d.db.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("state: load audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditRow
	for rows.Next() {
		var (
			a                         AuditRow
			at                        sql.NullString
			credID                    sql.NullInt64
			system, op, source, phase string
		)
		if err := rows.Scan(&a.ID, &a.RunID, &at, &system, &op, &a.Stay.Property, &source, &a.Stay.ID,
			&credID, &a.RemoteID, &phase, &a.Detail); err != nil {
			return nil, fmt.Errorf("state: load audit log: %w", err)
		}
		a.System, a.Op, a.Stay.Source, a.Phase = reconcile.System(system), reconcile.Op(op), reconcile.System(source), reconcile.Phase(phase)
		a.CredentialID = credID.Int64
		if a.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("state: load audit log: entry %d: at: %w", a.ID, err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: load audit log: %w", err)
	}
	return out, nil
}

// Position names where the record stands: the last audit entry and the
// last credential written. Any run, targeted run or event that acts
// writes an audit entry, so two equal positions mean nothing was
// recorded in between (the request ledger, which a plan writes, is not
// part of it). A saved plan keeps the position it was made at.
func (d *DB) Position(ctx context.Context) (string, error) {
	var audit, cred sql.NullInt64
	if err := d.db.QueryRowContext(ctx, `SELECT (SELECT max(id) FROM audit), (SELECT max(id) FROM credentials)`).Scan(&audit, &cred); err != nil {
		return "", fmt.Errorf("state: read the record's position: %w", err)
	}
	return fmt.Sprintf("audit %d, credential %d", audit.Int64, cred.Int64), nil
}

// compress gzips a report at the fastest level: a portfolio's report is
// megabytes of repetitive JSON, and the run's end waits for it.
func compress(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decompress reverses compress.
func decompress(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
