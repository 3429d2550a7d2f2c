//! Hour totals kept beside the minutes, so that a report over a month reads
//! hours, not minutes.
//!
//! A report groups a workload's use by chart bucket and class. Over 30 days
//! with 1 000 busy workloads that is 43 M minute rows, which SQLite reads,
//! sorts and sums in minutes on a small machine. The writer therefore also
//! adds every minute to its hour's total (`usage_hour`, keyed by hour,
//! workload and class, in the same transaction), and a report takes:
//! - the totals of every hour that lies wholly in its range and in one
//!   chart bucket;
//! - the minute rows of the rest (the range's ragged ends, and the hours a
//!   bucket boundary cuts when the range does not start on the hour);
//!
//! which sum to exactly what the minute rows alone give, up to the order of
//! floating-point additions (`report_tests` checks both paths agree).
//! Buckets shorter than an hour (ranges under 30 hours) read minutes.
//! Verdicts are summarised the same way (`active_hour`: per hour, workload
//! and verdict, the highest level and the first and last minute), as a
//! report needs only those.
//!
//! The totals follow every change to `usage`: a minute's write adds to its
//! hour, a rollup leaves the sums as they are (it only marks the hours as
//! whole, as the rolled rows say), retention deletes the hours it deletes
//! the rows of. A ledger written before the totals existed gets them on the
//! agent's next start ([`backfill`]); until then a report reads minutes.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension as _, Transaction, params};

use super::store::Row;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS usage_hour(
    hour INTEGER NOT NULL,
    workload INTEGER NOT NULL,
    class TEXT NOT NULL,
    last_end INTEGER NOT NULL,
    cpu_core_s REAL NOT NULL,
    gpu_s REAL NOT NULL,
    gpu_mem_bytes INTEGER NOT NULL,
    energy_rapl_j REAL NOT NULL,
    energy_nvml_j REAL NOT NULL,
    energy_estimated_j REAL NOT NULL,
    PRIMARY KEY(hour, workload, class)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS active_hour(
    hour INTEGER NOT NULL,
    workload INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    level INTEGER NOT NULL,
    first_minute INTEGER NOT NULL,
    last_minute INTEGER NOT NULL,
    PRIMARY KEY(hour, workload, verdict)) WITHOUT ROWID;
";

const ACTIVE_SUMMARY: &str = "
    SELECT (minute / 60) * 60, workload, verdict, max(level), min(minute), max(minute)
    FROM active";

/// The `meta` key saying the totals cover every row.
const MARK: &str = "hour_totals";

/// Whether this ledger's hour totals cover all of its rows.
pub(super) fn complete(conn: &Connection) -> rusqlite::Result<bool> {
    let mark: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [MARK], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(mark.is_some())
}

/// Computes the totals from the rows, once, for a ledger that has none
/// (written by an assay before them).
pub(super) fn backfill(conn: &Connection) -> rusqlite::Result<()> {
    if complete(conn)? {
        return Ok(());
    }
    let tx = conn.unchecked_transaction()?;
    tx.execute("DELETE FROM usage_hour", [])?;
    tx.execute("DELETE FROM active_hour", [])?;
    tx.execute(
        &format!(
            "INSERT INTO active_hour(hour, workload, verdict, level, first_minute, last_minute)
             {ACTIVE_SUMMARY} GROUP BY minute / 60, workload, verdict"
        ),
        [],
    )?;
    tx.execute(
        "INSERT INTO usage_hour(hour, workload, class, last_end, cpu_core_s, gpu_s,
             gpu_mem_bytes, energy_rapl_j, energy_nvml_j, energy_estimated_j)
         SELECT (minute / 60) * 60, workload, class, max(minute + span), sum(cpu_core_s),
             sum(gpu_s), max(gpu_mem_bytes), sum(energy_rapl_j), sum(energy_nvml_j),
             sum(energy_estimated_j)
         FROM usage GROUP BY minute / 60, workload, class",
        [],
    )?;
    tx.execute("INSERT INTO meta(key, value) VALUES (?1, '1')", [MARK])?;
    tx.commit()
}

/// A minute row's use, added to its hour (in the minute's transaction).
pub(super) struct MinuteUse {
    pub workload: i64,
    pub minute: i64,
    pub cpu_core_s: f64,
    pub gpu_s: f64,
    pub gpu_mem_bytes: i64,
    pub energy_rapl_j: f64,
    pub energy_nvml_j: f64,
    pub energy_estimated_j: f64,
}

pub(super) fn add(tx: &Transaction<'_>, class: &str, u: &MinuteUse) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO usage_hour(hour, workload, class, last_end, cpu_core_s, gpu_s,
             gpu_mem_bytes, energy_rapl_j, energy_nvml_j, energy_estimated_j)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT(hour, workload, class) DO UPDATE SET
             last_end = max(last_end, excluded.last_end),
             cpu_core_s = cpu_core_s + excluded.cpu_core_s,
             gpu_s = gpu_s + excluded.gpu_s,
             gpu_mem_bytes = max(gpu_mem_bytes, excluded.gpu_mem_bytes),
             energy_rapl_j = energy_rapl_j + excluded.energy_rapl_j,
             energy_nvml_j = energy_nvml_j + excluded.energy_nvml_j,
             energy_estimated_j = energy_estimated_j + excluded.energy_estimated_j",
    )?;
    stmt.execute(params![
        u.minute.div_euclid(60) * 60,
        u.workload,
        class,
        u.minute + 1,
        u.cpu_core_s,
        u.gpu_s,
        u.gpu_mem_bytes,
        u.energy_rapl_j,
        u.energy_nvml_j,
        u.energy_estimated_j,
    ])?;
    Ok(())
}

/// A verdict active in a workload's minute, added to its hour.
pub(super) fn add_active(
    tx: &Transaction<'_>,
    workload: i64,
    minute: i64,
    verdict: &str,
    level: i64,
) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO active_hour(hour, workload, verdict, level, first_minute, last_minute)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)
         ON CONFLICT(hour, workload, verdict) DO UPDATE SET
             level = max(level, excluded.level),
             first_minute = min(first_minute, excluded.first_minute),
             last_minute = max(last_minute, excluded.last_minute)",
    )?;
    stmt.execute(params![
        minute.div_euclid(60) * 60,
        workload,
        verdict,
        level,
        minute
    ])?;
    Ok(())
}

/// Before the minutes older than `rollup_before` are folded into hours:
/// their hours' rows will each cover the whole hour, and say so.
pub(super) fn rolling_up(tx: &Transaction<'_>, rollup_before: i64) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE usage_hour SET last_end = hour + 60
         WHERE hour IN (SELECT DISTINCT (minute / 60) * 60 FROM usage
                        WHERE span = 1 AND minute < ?1)",
        [rollup_before],
    )?;
    // A rolled hour's verdicts are at its first minute only.
    tx.execute(
        "UPDATE active_hour SET first_minute = hour, last_minute = hour
         WHERE hour IN (SELECT DISTINCT (minute / 60) * 60 FROM active
                        WHERE minute < ?1 AND minute % 60 != 0)",
        [rollup_before],
    )?;
    Ok(())
}

/// After the rows older than `delete_before` were deleted: their hours go,
/// and an hour the cut went through is summed again from what is left.
pub(super) fn retained(tx: &Transaction<'_>, delete_before: i64) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM usage_hour WHERE hour < ?1", [delete_before])?;
    tx.execute("DELETE FROM active_hour WHERE hour < ?1", [delete_before])?;
    let cut = delete_before.div_euclid(60) * 60;
    if cut < delete_before {
        tx.execute(
            "INSERT INTO usage_hour(hour, workload, class, last_end, cpu_core_s, gpu_s,
                 gpu_mem_bytes, energy_rapl_j, energy_nvml_j, energy_estimated_j)
             SELECT ?1, workload, class, max(minute + span), sum(cpu_core_s), sum(gpu_s),
                 max(gpu_mem_bytes), sum(energy_rapl_j), sum(energy_nvml_j),
                 sum(energy_estimated_j)
             FROM usage WHERE minute >= ?1 AND minute < ?1 + 60
             GROUP BY workload, class",
            [cut],
        )?;
        tx.execute(
            &format!(
                "INSERT INTO active_hour(hour, workload, verdict, level, first_minute,
                     last_minute)
                 {ACTIVE_SUMMARY} WHERE minute >= ?1 AND minute < ?1 + 60
                 GROUP BY workload, verdict"
            ),
            [cut],
        )?;
    }
    Ok(())
}

/// Sums per workload, bucket and class, as `Store::series` documents; the
/// rows come from the minutes and hour totals selected by `query`.
fn sum_into(
    out: &mut HashMap<(i64, String, String), (Row, i64)>,
    conn: &Connection,
    query: &str,
    args: [i64; 4],
) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(query)?;
    let mut rows = stmt.query(params![args[0], args[1], args[2], args[3]])?;
    while let Some(r) = rows.next()? {
        let row = Row {
            workload: r.get(0)?,
            minute: r.get(1)?,
            span: 0,
            class: r.get(2)?,
            cpu_core_s: r.get(3)?,
            gpu_s: r.get(4)?,
            gpu_mem_bytes: r.get::<_, i64>(5)?.max(0) as u64,
            energy_rapl_j: r.get(6)?,
            energy_nvml_j: r.get(7)?,
            energy_estimated_j: r.get(8)?,
        };
        let end: i64 = r.get(9)?;
        let key = (row.minute, row.workload.clone(), row.class.clone());
        match out.get_mut(&key) {
            Some((sum, last)) => {
                sum.cpu_core_s += row.cpu_core_s;
                sum.gpu_s += row.gpu_s;
                sum.gpu_mem_bytes = sum.gpu_mem_bytes.max(row.gpu_mem_bytes);
                sum.energy_rapl_j += row.energy_rapl_j;
                sum.energy_nvml_j += row.energy_nvml_j;
                sum.energy_estimated_j += row.energy_estimated_j;
                *last = (*last).max(end);
            }
            None => {
                out.insert(key, (row, end));
            }
        }
    }
    Ok(())
}

const FROM_MINUTES: &str = "
    SELECT w.key, ((u.minute - ?1) / ?4) * ?4 + ?1, u.class, sum(u.cpu_core_s), sum(u.gpu_s),
        max(u.gpu_mem_bytes), sum(u.energy_rapl_j), sum(u.energy_nvml_j),
        sum(u.energy_estimated_j), max(u.minute + u.span)
    FROM workloads w CROSS JOIN usage u ON u.workload = w.id
    WHERE u.minute >= ?2 AND u.minute < ?3
    GROUP BY u.workload, (u.minute - ?1) / ?4, u.class";

const FROM_HOURS: &str = "
    SELECT w.key, ((h.hour - ?1) / ?4) * ?4 + ?1, h.class, sum(h.cpu_core_s), sum(h.gpu_s),
        max(h.gpu_mem_bytes), sum(h.energy_rapl_j), sum(h.energy_nvml_j),
        sum(h.energy_estimated_j), max(h.last_end)
    FROM usage_hour h JOIN workloads w ON w.id = h.workload
    WHERE h.hour >= ?2 AND h.hour < ?3 AND (h.hour - ?1) / ?4 = (h.hour + 59 - ?1) / ?4
    GROUP BY h.workload, (h.hour - ?1) / ?4, h.class";

/// [`lo`, `hi`) in Unix minutes.
type Span = (i64, i64);

/// The minute ranges a report over [`from`, `to`) in `bucket`-minute
/// buckets (from `from`) reads from minutes, and the hours [`first`,
/// `end`) it may read from totals (those a bucket boundary cuts are among
/// the minute ranges, and skipped in the totals' query).
pub(super) fn plan(from: i64, to: i64, bucket: i64) -> (Vec<Span>, Option<Span>) {
    let first = (from + 59).div_euclid(60) * 60;
    let end = to.div_euclid(60) * 60;
    if bucket < 60 || end <= first {
        return (vec![(from, to)], None);
    }
    let mut minutes = Vec::new();
    if from < first {
        minutes.push((from, first));
    }
    let mut boundary = from + bucket;
    while boundary < end {
        let hour = boundary.div_euclid(60) * 60;
        if hour != boundary && hour >= first {
            minutes.push((hour, hour + 60));
        }
        boundary += bucket;
    }
    if end < to {
        minutes.push((end, to));
    }
    (minutes, Some((first, end)))
}

/// `Store::series` from the hour totals and the minutes around them.
pub(super) fn series(
    conn: &Connection,
    from: i64,
    to: i64,
    bucket: i64,
) -> rusqlite::Result<Vec<(Row, i64)>> {
    let (minutes, hours) = plan(from, to, bucket);
    // One snapshot for all the queries (a writer may commit in between).
    let snapshot = conn.unchecked_transaction()?;
    let mut sums = HashMap::new();
    if let Some((first, end)) = hours {
        sum_into(&mut sums, conn, FROM_HOURS, [from, first, end, bucket])?;
    }
    for (lo, hi) in minutes {
        sum_into(&mut sums, conn, FROM_MINUTES, [from, lo, hi, bucket])?;
    }
    drop(snapshot);
    let mut rows: Vec<(Row, i64)> = sums.into_values().collect();
    rows.sort_by(|(a, _), (b, _)| {
        (a.minute, &a.workload, &a.class).cmp(&(b.minute, &b.workload, &b.class))
    });
    Ok(rows)
}

/// `Store::verdicts` from the hour summaries and the minutes around them:
/// per workload and verdict, its highest level and first and last minute.
pub(super) fn verdicts(
    conn: &Connection,
    from: i64,
    to: i64,
) -> rusqlite::Result<Vec<super::store::ActiveVerdict>> {
    let first = (from + 59).div_euclid(60) * 60;
    let end = to.div_euclid(60) * 60;
    let (hours, minutes) = if end > first {
        (Some((first, end)), vec![(from, first), (end, to)])
    } else {
        (None, vec![(from, to)])
    };
    let snapshot = conn.unchecked_transaction()?;
    let mut found: HashMap<(String, String), super::store::ActiveVerdict> = HashMap::new();
    let mut read = |query: &str, lo: i64, hi: i64| -> rusqlite::Result<()> {
        let mut stmt = conn.prepare_cached(query)?;
        let mut rows = stmt.query(params![lo, hi])?;
        while let Some(r) = rows.next()? {
            let level: i64 = r.get(3)?;
            let seen = super::store::ActiveVerdict {
                workload: r.get(0)?,
                id: r.get(1)?,
                class: r.get(2)?,
                level: super::store::LEVELS[level.clamp(0, 2) as usize].to_owned(),
                explanation: r.get(4)?,
                first_minute: r.get(5)?,
                last_minute: r.get(6)?,
                incentive: r.get(7)?,
            };
            match found.get_mut(&(seen.workload.clone(), seen.id.clone())) {
                Some(known) => {
                    if level_rank(&seen.level) > level_rank(&known.level) {
                        known.level = seen.level;
                    }
                    known.first_minute = known.first_minute.min(seen.first_minute);
                    known.last_minute = known.last_minute.max(seen.last_minute);
                }
                None => {
                    found.insert((seen.workload.clone(), seen.id.clone()), seen);
                }
            }
        }
        Ok(())
    };
    if let Some((first, end)) = hours {
        read(
            "SELECT w.key, a.verdict, v.class, max(a.level), v.explanation,
                 min(a.first_minute), max(a.last_minute), v.incentive
             FROM active_hour a JOIN workloads w ON w.id = a.workload
                 JOIN verdicts v ON v.id = a.verdict
             WHERE a.hour >= ?1 AND a.hour < ?2
             GROUP BY a.workload, a.verdict",
            first,
            end,
        )?;
    }
    for (lo, hi) in minutes.into_iter().filter(|(lo, hi)| lo < hi) {
        read(
            "SELECT w.key, a.verdict, v.class, max(a.level), v.explanation,
                 min(a.minute), max(a.minute), v.incentive
             FROM active a JOIN workloads w ON w.id = a.workload
                 JOIN verdicts v ON v.id = a.verdict
             WHERE a.minute >= ?1 AND a.minute < ?2
             GROUP BY a.workload, a.verdict",
            lo,
            hi,
        )?;
    }
    drop(snapshot);
    let mut out: Vec<super::store::ActiveVerdict> = found.into_values().collect();
    out.sort_by(|a, b| {
        (&a.workload, a.first_minute, &a.id).cmp(&(&b.workload, b.first_minute, &b.id))
    });
    Ok(out)
}

fn level_rank(level: &str) -> usize {
    super::store::LEVELS
        .iter()
        .position(|l| *l == level)
        .unwrap_or(0)
}
