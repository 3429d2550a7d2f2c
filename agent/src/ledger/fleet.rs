//! The ledger across a fleet: each host's rows on NATS JetStream, and a
//! report built from the stream.
//!
//! **Publishing.** After the ledger's thread writes a minute, it reads the
//! minute back from the store and publishes one [`LedgerRow`] per workload
//! on `<prefix>.ledger.<host>`, through the findings' publisher
//! ([`crate::sinks::fleet`]: bounded buffer, reconnects, at least once).
//! A row carries the stored figures of its (host, workload, minute), not
//! the run's part of them: a minute that straddles an agent restart is
//! published again with the sum of both runs' parts, and a reader keeps
//! the last row of each (host, workload, minute), so nothing is counted
//! twice whichever rows arrive.
//!
//! **Ids.** `Nats-Msg-Id` is [`LedgerRow::msg_id`]: the host, the minute,
//! and digests of the workload and of the row's encoding. The same row
//! published twice (a retry after a lost acknowledgement, a restart that
//! publishes a minute it had published unchanged) has the same id, and the
//! server drops it within its duplicate window; one that arrives after the
//! window (or was re-published on another path) is dropped again by the
//! reader, which keys rows by (host, workload, minute). A changed row has
//! a new id and replaces the old one.
//!
//! **Reading.** `assay report --nats` reads `<prefix>.ledger.>` with an
//! ephemeral ordered consumer ([`read_stream`]) from the messages stamped
//! at the period's start to the last, keeps the last row per key in the
//! period, loads each host's rows into an
//! in-memory ledger of the same schema, and builds each host's report as
//! for a local one; [`super::report::merge`] joins them. JetStream keeps
//! and replays the rows: there is no aggregation server of assay's own.

use std::collections::BTreeMap;

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::{
    Subject,
    store::{LEVELS, Store, StoreError},
};

/// The rows' `schema` value.
pub const ROW_SCHEMA: &str = "assay.ledger-row/1";

/// One class's part of a workload's minute, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    pub class: String,
    pub cpu_core_s: f64,
    pub gpu_s: f64,
    pub gpu_mem_bytes: u64,
    pub energy_rapl_j: f64,
    pub energy_nvml_j: f64,
    pub energy_estimated_j: f64,
}

/// A verdict active in the minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowVerdict {
    pub id: String,
    pub class: String,
    pub level: String,
    pub explanation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incentive: Option<String>,
}

/// One workload's minute on one host: the message on the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerRow {
    pub schema: String,
    pub host: String,
    pub workload: String,
    /// Unix minutes.
    pub minute: i64,
    /// Minutes covered (1; 60 for an hour rolled up).
    pub span: i64,
    #[serde(default)]
    pub subject: Subject,
    pub classes: Vec<ClassRow>,
    #[serde(default)]
    pub verdicts: Vec<RowVerdict>,
}

/// FNV-1a, 64 bits: a digest that is the same in every build and run (the
/// standard library's hasher promises neither).
fn fnv64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl LedgerRow {
    /// The message: one JSON object.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// A message back into a row; anything that is not a well-formed row
    /// of this schema (a negative or non-finite figure, no host) is
    /// refused with the reason.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let row: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if row.schema != ROW_SCHEMA {
            return Err(format!("schema {:?}, not {ROW_SCHEMA}", row.schema));
        }
        if row.host.is_empty() || row.workload.is_empty() {
            return Err("no host or workload".into());
        }
        if !(1..=1440).contains(&row.span) {
            return Err(format!("span {} minutes", row.span));
        }
        for c in &row.classes {
            let figures = [
                c.cpu_core_s,
                c.gpu_s,
                c.energy_rapl_j,
                c.energy_nvml_j,
                c.energy_estimated_j,
            ];
            if figures.iter().any(|f| !f.is_finite() || *f < 0.0) {
                return Err(format!(
                    "class {}: a figure is negative or not finite",
                    c.class
                ));
            }
        }
        if let Some(v) = row
            .verdicts
            .iter()
            .find(|v| !LEVELS.contains(&v.level.as_str()))
        {
            return Err(format!("verdict {}: level {:?}", v.id, v.level));
        }
        Ok(row)
    }

    /// `Nats-Msg-Id`: the same for the same row, different for a changed
    /// one (see the module's doc).
    pub fn msg_id(&self) -> String {
        self.id_of(&self.encode())
    }

    /// The id of the row as `encoded` (the message's bytes: a reader
    /// digests what it received, not its own encoding of it).
    fn id_of(&self, encoded: &[u8]) -> String {
        format!(
            "ledger:{}:{}:{:016x}:{:016x}",
            crate::sinks::fleet::subject_token(&self.host),
            self.minute,
            fnv64(self.workload.as_bytes()),
            fnv64(encoded)
        )
    }
}

impl Store {
    /// Every workload's stored row of `minute`, as published by `host`.
    pub fn minute_rows(&self, host: &str, minute: i64) -> Result<Vec<LedgerRow>, StoreError> {
        let mut rows: BTreeMap<String, LedgerRow> = BTreeMap::new();
        let new_row = |key: &str, subject: &str| LedgerRow {
            schema: ROW_SCHEMA.to_owned(),
            host: host.to_owned(),
            workload: key.to_owned(),
            minute,
            span: 1,
            subject: serde_json::from_str(subject).unwrap_or_default(),
            classes: Vec::new(),
            verdicts: Vec::new(),
        };
        let result = (|| -> rusqlite::Result<()> {
            let mut usage = self.conn.prepare_cached(
                "SELECT w.key, w.subject, u.class, u.span, u.cpu_core_s, u.gpu_s,
                     u.gpu_mem_bytes, u.energy_rapl_j, u.energy_nvml_j, u.energy_estimated_j
                 FROM usage u JOIN workloads w ON w.id = u.workload
                 WHERE u.minute = ?1 ORDER BY w.key, u.class",
            )?;
            let mut found = usage.query([minute])?;
            while let Some(r) = found.next()? {
                let key: String = r.get(0)?;
                let row = rows
                    .entry(key.clone())
                    .or_insert_with(|| new_row(&key, &r.get::<_, String>(1).unwrap_or_default()));
                row.span = r.get(3)?;
                row.classes.push(ClassRow {
                    class: r.get(2)?,
                    cpu_core_s: r.get(4)?,
                    gpu_s: r.get(5)?,
                    gpu_mem_bytes: r.get::<_, i64>(6)?.max(0) as u64,
                    energy_rapl_j: r.get(7)?,
                    energy_nvml_j: r.get(8)?,
                    energy_estimated_j: r.get(9)?,
                });
            }
            let mut active = self.conn.prepare_cached(
                "SELECT w.key, w.subject, a.verdict, v.class, a.level, v.explanation, v.incentive
                 FROM active a JOIN workloads w ON w.id = a.workload
                     JOIN verdicts v ON v.id = a.verdict
                 WHERE a.minute = ?1 ORDER BY w.key, a.verdict",
            )?;
            let mut found = active.query([minute])?;
            while let Some(r) = found.next()? {
                let key: String = r.get(0)?;
                let row = rows
                    .entry(key.clone())
                    .or_insert_with(|| new_row(&key, &r.get::<_, String>(1).unwrap_or_default()));
                let level: i64 = r.get(4)?;
                row.verdicts.push(RowVerdict {
                    id: r.get(2)?,
                    class: r.get(3)?,
                    level: LEVELS[level.clamp(0, 2) as usize].to_owned(),
                    explanation: r.get(5)?,
                    incentive: r.get(6)?,
                });
            }
            Ok(())
        })();
        result.map_err(|e| self.err(e))?;
        Ok(rows.into_values().collect())
    }

    /// Puts a row read from the stream into an (in-memory) ledger: its
    /// figures replace any for the same workload, minute and class.
    pub fn put(&mut self, row: &LedgerRow) -> Result<(), StoreError> {
        let result = (|| -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            let subject = serde_json::to_string(&row.subject).unwrap_or_else(|_| "{}".into());
            let id: i64 = tx.query_row(
                "INSERT INTO workloads(key, subject) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET subject = excluded.subject RETURNING id",
                params![row.workload, subject],
                |r| r.get(0),
            )?;
            for c in &row.classes {
                tx.execute(
                    "INSERT OR REPLACE INTO usage(workload, minute, class, span, cpu_core_s,
                         gpu_s, gpu_mem_bytes, energy_rapl_j, energy_nvml_j, energy_estimated_j)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        id,
                        row.minute,
                        c.class,
                        row.span,
                        c.cpu_core_s,
                        c.gpu_s,
                        c.gpu_mem_bytes.min(i64::MAX as u64) as i64,
                        c.energy_rapl_j,
                        c.energy_nvml_j,
                        c.energy_estimated_j
                    ],
                )?;
            }
            for v in &row.verdicts {
                let level = LEVELS.iter().position(|l| *l == v.level).unwrap_or(0) as i64;
                tx.execute(
                    "INSERT INTO verdicts(id, class, level, explanation, incentive)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(id) DO UPDATE SET level = max(level, excluded.level),
                         explanation = excluded.explanation,
                         incentive = coalesce(excluded.incentive, incentive)",
                    params![v.id, v.class, level, v.explanation, v.incentive],
                )?;
                tx.execute(
                    "INSERT INTO active(workload, minute, verdict, level) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(workload, minute, verdict) DO UPDATE SET
                         level = max(level, excluded.level)",
                    params![id, row.minute, v.id, level],
                )?;
            }
            tx.commit()
        })();
        result.map_err(|e| self.err(e))
    }
}

/// What a read of the stream kept, and what it set aside.
#[derive(Debug, Default)]
pub struct Collected {
    /// (host, workload, minute) to the last row read and its id.
    rows: BTreeMap<(String, String, i64), (String, LedgerRow)>,
    /// Only rows of minutes in [`from`, `to`) are kept (None: all).
    range: Option<(i64, i64)>,
    /// Messages read.
    pub messages: u64,
    /// Rows of minutes outside the range: not kept.
    pub outside: u64,
    /// Rows whose id was read before (published twice): not counted again.
    pub duplicates: u64,
    /// Rows replaced by a later one of the same host, workload and minute
    /// (a minute re-published after a restart): only the last counts.
    pub superseded: u64,
    /// Messages that are not rows: counted and skipped.
    pub malformed: u64,
}

impl Collected {
    /// Keeps only the rows of minutes in [`from`, `to`) (Unix minutes).
    pub fn within(from: i64, to: i64) -> Self {
        Self {
            range: Some((from, to)),
            ..Self::default()
        }
    }

    /// One message, in stream order.
    pub fn add(&mut self, payload: &[u8]) {
        self.messages += 1;
        let row = match LedgerRow::decode(payload) {
            Ok(row) => row,
            Err(err) => {
                self.malformed += 1;
                tracing::debug!("a ledger message is not a row ({err}): skipped");
                return;
            }
        };
        if self
            .range
            .is_some_and(|(from, to)| row.minute < from || row.minute >= to)
        {
            self.outside += 1;
            return;
        }
        let id = row.id_of(payload);
        let key = (row.host.clone(), row.workload.clone(), row.minute);
        match self.rows.insert(key, (id.clone(), row)) {
            Some((old, _)) if old == id => self.duplicates += 1,
            Some(_) => self.superseded += 1,
            None => {}
        }
    }

    /// The hosts seen, each with its rows in an in-memory ledger.
    pub fn into_stores(self) -> Result<BTreeMap<String, Store>, StoreError> {
        let mut stores: BTreeMap<String, Store> = BTreeMap::new();
        for ((host, _, _), (_, row)) in self.rows {
            let store = match stores.entry(host) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => e.insert(Store::in_memory()?),
            };
            store.put(&row)?;
        }
        Ok(stores)
    }
}

/// Clock skew allowed between the agents and the server: a row of minute
/// M is published after M starts by the agent's clock, and the server
/// stamps it by its own.
const SKEW_S: i64 = 600;

/// Reads the rows on `<prefix>.ledger.>` in `stream` of minutes in
/// [`from`, `to`), first to last, with an ephemeral ordered consumer
/// (nothing is left on the server). A row is published once its minute has
/// begun, so the read starts at the messages the server stamped from
/// `from` on (less [`SKEW_S`]), not at the stream's first.
pub async fn read_stream(
    url: &str,
    stream: &str,
    prefix: &str,
    (from, to): (i64, i64),
) -> anyhow::Result<Collected> {
    use anyhow::Context as _;
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures_util::StreamExt as _;

    let client = crate::sinks::fleet::connect_client(url, "assay report")
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to {url}: {e}"))?;
    let jetstream = async_nats::jetstream::new(client);
    let stream = jetstream
        .get_stream(stream)
        .await
        .with_context(|| format!("no stream {stream} on {url}"))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: format!("{prefix}.ledger.>"),
            deliver_policy: start_at(from),
            ..Default::default()
        })
        .await
        .context("cannot create a consumer")?;
    let mut collected = Collected::within(from, to);
    if consumer.cached_info().num_pending == 0 {
        return Ok(collected);
    }
    let mut messages = consumer
        .messages()
        .await
        .context("cannot read the stream")?;
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
            .await
            .context("the stream stopped delivering before its last message")?;
        let Some(message) = next else { break };
        let message = message.context("reading the stream")?;
        collected.add(&message.payload);
        let pending = message.info().map(|i| i.pending).unwrap_or(0);
        if pending == 0 {
            break;
        }
    }
    Ok(collected)
}

/// Where a read for minutes from `from` on starts.
fn start_at(from: i64) -> async_nats::jetstream::consumer::DeliverPolicy {
    use async_nats::jetstream::consumer::DeliverPolicy;
    match time::OffsetDateTime::from_unix_timestamp(from.saturating_mul(60) - SKEW_S) {
        Ok(start_time) if from > 0 => DeliverPolicy::ByStartTime { start_time },
        _ => DeliverPolicy::All,
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;
