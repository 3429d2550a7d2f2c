//! The ledger's SQLite file: schema, exactly-once minute writes, rollups
//! and retention, and the reads a report makes.
//!
//! - A minute's use is split at write time among the classes of the
//!   verdicts active in it (at `suspected` or above; none: `general`), so
//!   an hourly rollup keeps the split exactly: rows are keyed by workload,
//!   start minute and class, with `span` the minutes they cover (1, or 60
//!   once rolled up).
//! - Every write is one transaction that also records its (run, sequence)
//!   in `flushes`: a batch applied twice (a retry after an error that
//!   committed after all) adds nothing the second time, and a restarted
//!   agent, a new run, adds only what it measured itself (its kernel
//!   counters start from zero). Usage is added to what is there (upsert),
//!   so a minute that straddles a restart is the sum of both runs' parts.
//! - Every minute is also added to its hour's totals ([`super::hours`]),
//!   which a report reads instead of the minutes where they cover its
//!   range.
//! - A file that is not a database, or fails SQLite's own check, is
//!   renamed aside (`ledger.sqlite.corrupt-<unix time>`) and reported; a
//!   fresh one is started. It is never emptied in place.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension as _, params};

use super::{Minute, Subject};

/// Bumped when the schema changes in a way an older reader cannot read.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workloads(
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    subject TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage(
    workload INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    class TEXT NOT NULL,
    span INTEGER NOT NULL,
    cpu_core_s REAL NOT NULL,
    gpu_s REAL NOT NULL,
    gpu_mem_bytes INTEGER NOT NULL,
    energy_rapl_j REAL NOT NULL,
    energy_nvml_j REAL NOT NULL,
    energy_estimated_j REAL NOT NULL,
    PRIMARY KEY(workload, minute, class)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS usage_minute ON usage(minute);
CREATE TABLE IF NOT EXISTS verdicts(
    id TEXT PRIMARY KEY,
    class TEXT NOT NULL,
    level INTEGER NOT NULL,
    explanation TEXT NOT NULL,
    incentive TEXT);
CREATE TABLE IF NOT EXISTS active(
    workload INTEGER NOT NULL,
    minute INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    level INTEGER NOT NULL,
    PRIMARY KEY(workload, minute, verdict)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS active_minute ON active(minute);
CREATE TABLE IF NOT EXISTS flushes(
    run TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY(run, seq)) WITHOUT ROWID;
";

/// Levels as stored (ordered, so that a minute keeps its highest).
pub const LEVELS: [&str; 3] = ["observed", "suspected", "confirmed"];

fn level_rank(level: &str) -> i64 {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0) as i64
}

/// The classes a minute's use is split among: those of its verdicts at
/// `suspected` or above, else `general`.
pub fn classes_of(usage: &super::Usage) -> Vec<String> {
    let mut classes: Vec<String> = usage
        .verdicts
        .iter()
        .filter(|v| level_rank(&v.level) >= 1)
        .map(|v| v.class.clone())
        .collect();
    classes.sort();
    classes.dedup();
    if classes.is_empty() {
        classes.push("general".to_owned());
    }
    classes
}

/// Why the ledger could not be used as it was.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger {path}: {source}")]
    Sqlite {
        path: String,
        source: rusqlite::Error,
    },
    #[error("ledger {path} is corrupt or truncated ({reason})")]
    Corrupt { path: String, reason: String },
    #[error("ledger {path} has schema version {found}, this assay reads {SCHEMA_VERSION}")]
    Version { path: String, found: i64 },
}

/// A corrupt ledger that was renamed aside.
#[derive(Debug, Clone)]
pub struct SetAside {
    pub to: PathBuf,
    pub reason: String,
}

pub struct Store {
    pub(super) conn: Connection,
    path: PathBuf,
    /// Whether reports read the hour totals ([`super::hours`]).
    hour_totals: bool,
}

/// One stored row, as a report reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub workload: String,
    pub minute: i64,
    pub span: i64,
    pub class: String,
    pub cpu_core_s: f64,
    pub gpu_s: f64,
    pub gpu_mem_bytes: u64,
    pub energy_rapl_j: f64,
    pub energy_nvml_j: f64,
    pub energy_estimated_j: f64,
}

/// A verdict active in a workload within a report's range.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveVerdict {
    pub workload: String,
    pub id: String,
    pub class: String,
    pub level: String,
    pub explanation: String,
    /// The chain network of an incentivised AI verdict.
    pub incentive: Option<String>,
    pub first_minute: i64,
    pub last_minute: i64,
}

impl Store {
    /// Opens (or creates) the ledger in `dir` for writing. A file that is
    /// corrupt is renamed aside and a fresh one started; the rename is
    /// returned, to be reported.
    pub fn open(dir: &Path) -> Result<(Self, Option<SetAside>), StoreError> {
        let path = dir.join(super::LEDGER_FILE);
        let _ = std::fs::create_dir_all(dir);
        match Self::open_checked(&path, false) {
            Ok(store) => Ok((store, None)),
            Err(StoreError::Corrupt { reason, .. }) => {
                let to = set_aside(&path)?;
                let store = Self::open_checked(&path, false)?;
                Ok((store, Some(SetAside { to, reason })))
            }
            Err(err) => Err(err),
        }
    }

    /// Opens an existing ledger for reading (a report): a corrupt one is an
    /// error, left where it is for the agent to set aside.
    pub fn open_read(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join(super::LEDGER_FILE);
        if !path.exists() {
            return Err(StoreError::Sqlite {
                path: path.display().to_string(),
                source: rusqlite::Error::InvalidPath(path.clone()),
            });
        }
        Self::open_checked(&path, true)
    }

    fn open_checked(path: &Path, read_only: bool) -> Result<Self, StoreError> {
        let name = path.display().to_string();
        let sql = |source| StoreError::Sqlite {
            path: name.clone(),
            source,
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: name.clone(),
            reason,
        };
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql)?;
        // Not a database at all, or damaged pages: SQLite's own check.
        let check: String = match conn.query_row("PRAGMA quick_check", [], |r| r.get(0)) {
            Ok(check) => check,
            Err(err) if is_corruption(&err) => return Err(corrupt(err.to_string())),
            Err(err) => return Err(sql(err)),
        };
        if check != "ok" {
            return Err(corrupt(check));
        }
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")
                .map_err(sql)?;
            conn.pragma_update(None, "synchronous", "NORMAL")
                .map_err(sql)?;
            conn.execute_batch(SCHEMA)
                .and_then(|()| conn.execute_batch(super::hours::SCHEMA))
                .map_err(|err| {
                    if is_corruption(&err) {
                        corrupt(err.to_string())
                    } else {
                        sql(err)
                    }
                })?;
            conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema', ?1)",
                [SCHEMA_VERSION.to_string()],
            )
            .map_err(sql)?;
        }
        let found: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|err| {
                if is_corruption(&err) {
                    corrupt(err.to_string())
                } else {
                    sql(err)
                }
            })?;
        let found: i64 = found.and_then(|v| v.parse().ok()).unwrap_or(0);
        if found != SCHEMA_VERSION {
            return Err(StoreError::Version { path: name, found });
        }
        if !read_only {
            super::hours::backfill(&conn).map_err(sql)?;
        }
        // A ledger an older assay wrote has no totals (and a read-only
        // report cannot add them): it reads minutes.
        let hour_totals = super::hours::complete(&conn).unwrap_or(false);
        Ok(Self {
            conn,
            path: path.to_owned(),
            hour_totals,
        })
    }

    /// An empty ledger in memory (a fleet report loads each host's rows
    /// from the stream into one).
    pub fn in_memory() -> Result<Self, StoreError> {
        let sql = |source| StoreError::Sqlite {
            path: ":memory:".into(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(sql)?;
        conn.execute_batch(SCHEMA)
            .and_then(|()| conn.execute_batch(super::hours::SCHEMA))
            .map_err(sql)?;
        Ok(Self {
            conn,
            path: ":memory:".into(),
            // Rows put from a stream (`fleet::put`) go to the minutes only:
            // its report reads them.
            hour_totals: false,
        })
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Writes one minute, in one transaction, unless batch (`run`, `seq`)
    /// was written already. Returns whether it was written now.
    pub fn apply(&mut self, run: &str, seq: u64, minute: &Minute) -> Result<bool, StoreError> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction()
            .map_err(|source| StoreError::Sqlite {
                path: path.clone(),
                source,
            })?;
        let written = apply_in(&tx, run, seq, minute).and_then(|written| {
            tx.commit()?;
            Ok(written)
        });
        written.map_err(|source| StoreError::Sqlite { path, source })
    }

    /// At `now` (Unix minutes): folds minutes older than
    /// `rollup_after_days` into hours (whole hours only) and deletes rows
    /// older than `retention_days`. Returns the hour rows written and the
    /// rows deleted.
    pub fn maintain(
        &mut self,
        now: i64,
        rollup_after_days: u32,
        retention_days: u32,
    ) -> Result<(usize, usize), StoreError> {
        let rollup_before = (now - i64::from(rollup_after_days) * 1440).div_euclid(60) * 60;
        let delete_before = now - i64::from(retention_days) * 1440;
        let path = self.path.display().to_string();
        let result = (|| {
            let tx = self.conn.transaction()?;
            super::hours::rolling_up(&tx, rollup_before)?;
            let rolled = tx.execute(
                "INSERT INTO usage(workload, minute, class, span, cpu_core_s, gpu_s, gpu_mem_bytes,
                     energy_rapl_j, energy_nvml_j, energy_estimated_j)
                 SELECT workload, (minute / 60) * 60, class, 60, sum(cpu_core_s), sum(gpu_s),
                     max(gpu_mem_bytes), sum(energy_rapl_j), sum(energy_nvml_j),
                     sum(energy_estimated_j)
                 FROM usage WHERE span = 1 AND minute < ?1
                 GROUP BY workload, minute / 60, class
                 ON CONFLICT(workload, minute, class) DO UPDATE SET
                     span = 60,
                     cpu_core_s = CASE WHEN span = 1 THEN 0 ELSE cpu_core_s END
                         + excluded.cpu_core_s,
                     gpu_s = CASE WHEN span = 1 THEN 0 ELSE gpu_s END + excluded.gpu_s,
                     gpu_mem_bytes = max(gpu_mem_bytes, excluded.gpu_mem_bytes),
                     energy_rapl_j = CASE WHEN span = 1 THEN 0 ELSE energy_rapl_j END
                         + excluded.energy_rapl_j,
                     energy_nvml_j = CASE WHEN span = 1 THEN 0 ELSE energy_nvml_j END
                         + excluded.energy_nvml_j,
                     energy_estimated_j = CASE WHEN span = 1 THEN 0 ELSE energy_estimated_j END
                         + excluded.energy_estimated_j",
                [rollup_before],
            )?;
            // The row at the hour's first minute became the hour (its own
            // use is in the sum, which replaced it); the other minutes go.
            tx.execute(
                "DELETE FROM usage WHERE span = 1 AND minute < ?1",
                [rollup_before],
            )?;
            tx.execute(
                "INSERT INTO active(workload, minute, verdict, level)
                 SELECT workload, (minute / 60) * 60, verdict, max(level) FROM active
                 WHERE minute < ?1 AND minute % 60 != 0
                 GROUP BY workload, minute / 60, verdict
                 ON CONFLICT(workload, minute, verdict) DO UPDATE SET
                     level = max(level, excluded.level)",
                [rollup_before],
            )?;
            tx.execute(
                "DELETE FROM active WHERE minute < ?1 AND minute % 60 != 0",
                [rollup_before],
            )?;
            let mut deleted = tx.execute("DELETE FROM usage WHERE minute < ?1", [delete_before])?;
            deleted += tx.execute("DELETE FROM active WHERE minute < ?1", [delete_before])?;
            super::hours::retained(&tx, delete_before)?;
            tx.execute(
                "DELETE FROM verdicts WHERE id NOT IN (SELECT DISTINCT verdict FROM active)",
                [],
            )?;
            tx.execute(
                "DELETE FROM workloads WHERE id NOT IN (SELECT DISTINCT workload FROM usage)
                     AND id NOT IN (SELECT DISTINCT workload FROM active)",
                [],
            )?;
            // A batch is retried within seconds: two days is ample.
            tx.execute("DELETE FROM flushes WHERE at < ?1", [now - 2 * 1440])?;
            tx.commit()?;
            Ok((rolled, deleted))
        })();
        result.map_err(|source| StoreError::Sqlite { path, source })
    }

    /// Rows whose span starts in [`from`, `to`) (Unix minutes).
    pub fn rows(&self, from: i64, to: i64) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.key, u.minute, u.span, u.class, u.cpu_core_s, u.gpu_s, u.gpu_mem_bytes,
                     u.energy_rapl_j, u.energy_nvml_j, u.energy_estimated_j
                 FROM usage u JOIN workloads w ON w.id = u.workload
                 WHERE u.minute >= ?1 AND u.minute < ?2 ORDER BY u.minute",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([from, to], |r| {
                Ok(Row {
                    workload: r.get(0)?,
                    minute: r.get(1)?,
                    span: r.get(2)?,
                    class: r.get(3)?,
                    cpu_core_s: r.get(4)?,
                    gpu_s: r.get(5)?,
                    gpu_mem_bytes: r.get::<_, i64>(6)?.max(0) as u64,
                    energy_rapl_j: r.get(7)?,
                    energy_nvml_j: r.get(8)?,
                    energy_estimated_j: r.get(9)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Per workload, `bucket`-minute bucket (counted from `from`) and
    /// class, the sums of the rows in [`from`, `to`), with the end of the
    /// bucket's last row (Unix minutes); each row's `minute` is its
    /// bucket's start, its `span` is left 0. One pass gives a report both
    /// its totals and its charts. Rows come in order of bucket. Read from
    /// the hour totals where they cover the range ([`super::hours`]).
    pub fn series(&self, from: i64, to: i64, bucket: i64) -> Result<Vec<(Row, i64)>, StoreError> {
        let bucket = bucket.max(1);
        if self.hour_totals {
            return super::hours::series(&self.conn, from, to, bucket).map_err(|e| self.err(e));
        }
        self.series_from_minutes(from, to, bucket)
    }

    /// Reports read minutes only, not the hour totals (`on`: false): the
    /// straightforward path, for tests and benchmarks that compare them.
    pub fn use_hour_totals(&mut self, on: bool) {
        self.hour_totals = on && super::hours::complete(&self.conn).unwrap_or(false);
    }

    /// [`Self::series`] from the minute rows alone.
    pub fn series_from_minutes(
        &self,
        from: i64,
        to: i64,
        bucket: i64,
    ) -> Result<Vec<(Row, i64)>, StoreError> {
        self.aggregate(
            "SELECT w.key, ((u.minute - ?1) / ?3) * ?3 + ?1, 0, u.class,
                 sum(u.cpu_core_s), sum(u.gpu_s), max(u.gpu_mem_bytes), sum(u.energy_rapl_j),
                 sum(u.energy_nvml_j), sum(u.energy_estimated_j), max(u.minute + u.span)
             FROM usage u JOIN workloads w ON w.id = u.workload
             WHERE u.minute >= ?1 AND u.minute < ?2
             GROUP BY u.workload, (u.minute - ?1) / ?3, u.class ORDER BY 2",
            from,
            to,
            bucket.max(1),
        )
    }

    fn aggregate(
        &self,
        sql: &str,
        from: i64,
        to: i64,
        bucket: i64,
    ) -> Result<Vec<(Row, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let map = |r: &rusqlite::Row<'_>| {
            Ok((
                Row {
                    workload: r.get(0)?,
                    minute: r.get(1)?,
                    span: r.get(2)?,
                    class: r.get(3)?,
                    cpu_core_s: r.get(4)?,
                    gpu_s: r.get(5)?,
                    gpu_mem_bytes: r.get::<_, i64>(6)?.max(0) as u64,
                    energy_rapl_j: r.get(7)?,
                    energy_nvml_j: r.get(8)?,
                    energy_estimated_j: r.get(9)?,
                },
                r.get::<_, i64>(10)?,
            ))
        };
        stmt.query_map(params![from, to, bucket], map)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))
    }

    /// The verdicts active in [`from`, `to`), per workload, in order of
    /// workload, first minute and id. Read from the hour summaries where
    /// they cover the range ([`super::hours`]).
    pub fn verdicts(&self, from: i64, to: i64) -> Result<Vec<ActiveVerdict>, StoreError> {
        if self.hour_totals {
            return super::hours::verdicts(&self.conn, from, to).map_err(|e| self.err(e));
        }
        let mut stmt = self
            .conn
            .prepare(
                "SELECT w.key, a.verdict, v.class, max(a.level), v.explanation,
                     min(a.minute), max(a.minute), v.incentive
                 FROM active a JOIN workloads w ON w.id = a.workload
                     JOIN verdicts v ON v.id = a.verdict
                 WHERE a.minute >= ?1 AND a.minute < ?2
                 GROUP BY w.key, a.verdict ORDER BY w.key, min(a.minute), a.verdict",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([from, to], |r| {
                let level: i64 = r.get(3)?;
                Ok(ActiveVerdict {
                    workload: r.get(0)?,
                    id: r.get(1)?,
                    class: r.get(2)?,
                    level: LEVELS[level.clamp(0, 2) as usize].to_owned(),
                    explanation: r.get(4)?,
                    first_minute: r.get(5)?,
                    last_minute: r.get(6)?,
                    incentive: r.get(7)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }

    /// Every workload's subject, by key.
    pub fn subjects(&self) -> Result<BTreeMap<String, Subject>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT key, subject FROM workloads")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(key, subject)| (key, serde_json::from_str(&subject).unwrap_or_default()))
            .collect())
    }

    /// The file's size with its write-ahead log, in bytes.
    pub fn bytes(&self) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(Path::new(&wal))
    }

    /// Writes the write-ahead log back into the file (for measurements).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .map_err(|e| self.err(e))
    }
}

fn apply_in(
    tx: &rusqlite::Transaction<'_>,
    run: &str,
    seq: u64,
    minute: &Minute,
) -> rusqlite::Result<bool> {
    let fresh = tx.execute(
        "INSERT OR IGNORE INTO flushes(run, seq, at) VALUES (?1, ?2, ?3)",
        params![run, seq as i64, minute.minute],
    )?;
    if fresh == 0 {
        return Ok(false);
    }
    let mut workload = tx.prepare_cached(
        "INSERT INTO workloads(key, subject) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET subject = excluded.subject RETURNING id",
    )?;
    let mut usage = tx.prepare_cached(
        "INSERT INTO usage(workload, minute, class, span, cpu_core_s, gpu_s, gpu_mem_bytes,
             energy_rapl_j, energy_nvml_j, energy_estimated_j)
         VALUES (?1, ?2, ?3, 1, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(workload, minute, class) DO UPDATE SET
             cpu_core_s = cpu_core_s + excluded.cpu_core_s,
             gpu_s = gpu_s + excluded.gpu_s,
             gpu_mem_bytes = max(gpu_mem_bytes, excluded.gpu_mem_bytes),
             energy_rapl_j = energy_rapl_j + excluded.energy_rapl_j,
             energy_nvml_j = energy_nvml_j + excluded.energy_nvml_j,
             energy_estimated_j = energy_estimated_j + excluded.energy_estimated_j",
    )?;
    let mut verdict = tx.prepare_cached(
        "INSERT INTO verdicts(id, class, level, explanation, incentive)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET level = max(level, excluded.level),
             explanation = excluded.explanation,
             incentive = coalesce(excluded.incentive, incentive)",
    )?;
    let mut active = tx.prepare_cached(
        "INSERT INTO active(workload, minute, verdict, level) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(workload, minute, verdict) DO UPDATE SET level = max(level, excluded.level)",
    )?;
    for (key, use_) in &minute.workloads {
        let subject = serde_json::to_string(&use_.subject).unwrap_or_else(|_| "{}".into());
        let id: i64 = workload.query_row(params![key, subject], |r| r.get(0))?;
        let classes = classes_of(use_);
        let n = classes.len() as f64;
        let split = super::hours::MinuteUse {
            workload: id,
            minute: minute.minute,
            cpu_core_s: use_.cpu_core_s / n,
            gpu_s: use_.gpu_s / n,
            gpu_mem_bytes: use_.gpu_mem_bytes as i64,
            energy_rapl_j: use_.energy_rapl_j / n,
            energy_nvml_j: use_.energy_nvml_j / n,
            energy_estimated_j: use_.energy_estimated_j / n,
        };
        for class in &classes {
            usage.execute(params![
                id,
                split.minute,
                class,
                split.cpu_core_s,
                split.gpu_s,
                split.gpu_mem_bytes,
                split.energy_rapl_j,
                split.energy_nvml_j,
                split.energy_estimated_j,
            ])?;
            super::hours::add(tx, class, &split)?;
        }
        for seen in &use_.verdicts {
            let level = level_rank(&seen.level);
            verdict.execute(params![
                seen.id,
                seen.class,
                level,
                seen.explanation,
                seen.incentive
            ])?;
            active.execute(params![id, minute.minute, seen.id, level])?;
            super::hours::add_active(tx, id, minute.minute, &seen.id, level)?;
        }
    }
    Ok(true)
}

fn is_corruption(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    )
}

/// Renames the ledger (and its WAL and shared-memory files) aside.
fn set_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut to = path.as_os_str().to_owned();
    to.push(format!(".corrupt-{now}"));
    let to = PathBuf::from(to);
    std::fs::rename(path, &to).map_err(|err| StoreError::Corrupt {
        path: path.display().to_string(),
        reason: format!("and cannot be renamed aside: {err}"),
    })?;
    for suffix in ["-wal", "-shm"] {
        let mut from = path.as_os_str().to_owned();
        from.push(suffix);
        let mut aside = to.as_os_str().to_owned();
        aside.push(suffix);
        let _ = std::fs::rename(&from, &aside);
    }
    Ok(to)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
