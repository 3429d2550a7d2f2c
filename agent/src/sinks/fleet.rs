//! The fleet stream: every finding line, published to NATS JetStream on
//! `<prefix>.findings.<host>` (stream `<PREFIX>`, created when missing), and
//! every minute a summary of each workload with open verdicts on
//! `<prefix>.workloads.<host>`, so a fleet's SOC pipeline can consume, fan
//! out and replay them; with the ledger on, each workload's ledger row of
//! each minute on `<prefix>.ledger.<host>` ([`crate::ledger::fleet`]), which
//! `assay report --nats` reads back.
//!
//! At least once, nothing lost within the buffer: findings wait in a
//! bounded local queue ([`Fleet::push`]) until the server acknowledges
//! them; while the server is away the publisher reconnects with backoff
//! and the queue holds what arrives (the oldest are dropped, and counted,
//! only when it is full: ledger rows before findings, since the ledger
//! keeps them on disk). Each message carries `Nats-Msg-Id` = the
//! finding's id and event, so the server drops the duplicates a retry
//! after a lost acknowledgement would make (within its duplicate window).
//!
//! Credentials come from the environment, never the command line:
//! `ASSAY_NATS_TOKEN`, or `ASSAY_NATS_USER` with `ASSAY_NATS_PASSWORD`.

use std::{
    collections::VecDeque,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Notify;
use tracing::{info, warn};

/// One finding waiting to be published.
struct Message {
    /// `findings`, `workloads` or `ledger`: the subject's kind.
    kind: &'static str,
    id: String,
    line: Vec<u8>,
}

#[derive(Default)]
pub struct FleetStats {
    pub published: AtomicU64,
    pub dropped: AtomicU64,
    pub retries: AtomicU64,
}

/// The agent's handle: pushes never block. Clones share the buffer and
/// the publisher (the ledger's thread holds one).
#[derive(Clone)]
pub struct Fleet {
    queue: Arc<Mutex<VecDeque<Message>>>,
    notify: Arc<Notify>,
    capacity: usize,
    pub stats: Arc<FleetStats>,
}

#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub url: String,
    /// Subject prefix; the stream is its upper-case form.
    pub prefix: String,
    pub host: String,
    /// Findings kept while the server is away.
    pub buffer: usize,
}

impl Fleet {
    /// Starts the publisher task (on the current tokio runtime).
    pub fn start(options: FleetOptions) -> Self {
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let notify = Arc::new(Notify::new());
        let stats = Arc::new(FleetStats::default());
        tokio::spawn(publish_loop(
            options.clone(),
            queue.clone(),
            notify.clone(),
            stats.clone(),
        ));
        Self {
            queue,
            notify,
            capacity: options.buffer.max(1),
            stats,
        }
    }

    /// Queues one finding line (`id`: its id and event).
    pub fn push(&self, id: String, line: Vec<u8>) {
        self.enqueue("findings", id, line);
    }

    /// Queues one workload summary (`id`: unique per workload and minute).
    pub fn push_summary(&self, id: String, line: Vec<u8>) {
        self.enqueue("workloads", id, line);
    }

    /// Queues one ledger row (`id`: [`crate::ledger::fleet::LedgerRow::msg_id`],
    /// the same for the same row).
    pub fn push_ledger(&self, id: String, line: Vec<u8>) {
        self.enqueue("ledger", id, line);
    }

    fn enqueue(&self, kind: &'static str, id: String, line: Vec<u8>) {
        let Ok(mut queue) = self.queue.lock() else {
            return;
        };
        if queue.len() >= self.capacity {
            // Ledger rows go first: the ledger keeps them on disk, and a
            // finding lost is lost.
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            match queue.iter().position(|m| m.kind == "ledger") {
                Some(at) => drop(queue.remove(at)),
                // Findings only: the row is the one dropped.
                None if kind == "ledger" => return,
                None => drop(queue.pop_front()),
            }
        }
        queue.push_back(Message { kind, id, line });
        drop(queue);
        self.notify.notify_one();
    }

    /// Findings not yet acknowledged.
    pub fn pending(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    /// Gives the publisher up to `grace` to empty the queue (at stop).
    pub async fn drain(&self, grace: Duration) {
        let deadline = tokio::time::Instant::now() + grace;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A client, with the credentials from the environment.
pub async fn connect_client(url: &str, name: &str) -> Result<async_nats::Client, String> {
    let mut connect = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5));
    if let Ok(token) = std::env::var("ASSAY_NATS_TOKEN") {
        connect = connect.token(token);
    } else if let (Ok(user), Ok(password)) = (
        std::env::var("ASSAY_NATS_USER"),
        std::env::var("ASSAY_NATS_PASSWORD"),
    ) {
        connect = connect.user_and_password(user, password);
    }
    connect.connect(url).await.map_err(|e| e.to_string())
}

async fn connect(options: &FleetOptions) -> Result<async_nats::jetstream::Context, String> {
    let client = connect_client(&options.url, &format!("assay@{}", options.host)).await?;
    let jetstream = async_nats::jetstream::new(client);
    jetstream
        .get_or_create_stream(async_nats::jetstream::stream::Config {
            name: stream_name(&options.prefix),
            subjects: vec![format!("{}.>", options.prefix)],
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(jetstream)
}

/// The stream a prefix's subjects go to: `assay` → `ASSAY`.
pub fn stream_name(prefix: &str) -> String {
    prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

async fn publish_loop(
    options: FleetOptions,
    queue: Arc<Mutex<VecDeque<Message>>>,
    notify: Arc<Notify>,
    stats: Arc<FleetStats>,
) {
    let host = subject_token(&options.host);
    let subject = |kind: &str| format!("{}.{kind}.{host}", options.prefix);
    let mut backoff = Duration::from_millis(250);
    let mut jetstream: Option<async_nats::jetstream::Context> = None;
    let mut announced_down = false;
    loop {
        let Some(js) = jetstream.as_ref() else {
            match connect(&options).await {
                Ok(js) => {
                    info!(url = %options.url, subject = subject("findings"), "fleet stream connected");
                    jetstream = Some(js);
                    backoff = Duration::from_millis(250);
                    announced_down = false;
                }
                Err(err) => {
                    if !announced_down {
                        warn!(url = %options.url, "fleet stream unavailable ({err}); findings are kept and retried");
                        announced_down = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            continue;
        };
        let next = queue
            .lock()
            .ok()
            .and_then(|q| q.front().map(|m| (m.kind, m.id.clone(), m.line.clone())));
        let Some((kind, id, line)) = next else {
            notify.notified().await;
            continue;
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", id.as_str());
        let acked = match js
            .publish_with_headers(subject(kind), headers, line.into())
            .await
        {
            Ok(ack) => tokio::time::timeout(Duration::from_secs(5), ack)
                .await
                .map_err(|_| "no acknowledgement within 5 s".to_owned())
                .and_then(|r| r.map(|_| ()).map_err(|e| e.to_string())),
            Err(err) => Err(err.to_string()),
        };
        match acked {
            Ok(()) => {
                if let Ok(mut q) = queue.lock()
                    && q.front().is_some_and(|m| m.id == id)
                {
                    q.pop_front();
                }
                stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                stats.retries.fetch_add(1, Ordering::Relaxed);
                warn!("fleet stream publish failed ({err}); reconnecting");
                jetstream = None;
                announced_down = true;
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// A host name as one subject token (no dots, spaces or wildcards).
pub fn subject_token(host: &str) -> String {
    host.chars()
        .map(|c| match c {
            '.' | ' ' | '*' | '>' => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_for_nats() {
        assert_eq!(stream_name("assay"), "ASSAY");
        assert_eq!(stream_name("soc.assay-1"), "SOC_ASSAY_1");
        assert_eq!(subject_token("gpu-node.eu-1 *>"), "gpu-node_eu-1___");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_buffer_is_bounded_and_counts_what_it_drops() {
        // A server that is never there: everything stays queued.
        let fleet = Fleet::start(FleetOptions {
            url: "nats://127.0.0.1:1".into(),
            prefix: "assay".into(),
            host: "h".into(),
            buffer: 3,
        });
        for i in 0..5 {
            fleet.push(format!("id-{i}"), b"{}".to_vec());
        }
        assert_eq!(fleet.pending(), 3);
        assert_eq!(fleet.stats.dropped.load(Ordering::Relaxed), 2);
        let first = fleet.queue.lock().unwrap().front().map(|m| m.id.clone());
        assert_eq!(first.as_deref(), Some("id-2"), "the oldest go first");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_buffer_drops_ledger_rows_before_findings() {
        let fleet = Fleet::start(FleetOptions {
            url: "nats://127.0.0.1:1".into(),
            prefix: "assay".into(),
            host: "h".into(),
            buffer: 3,
        });
        fleet.push("f-0".into(), b"{}".to_vec());
        fleet.push_ledger("l-0".into(), b"{}".to_vec());
        fleet.push_ledger("l-1".into(), b"{}".to_vec());
        fleet.push("f-1".into(), b"{}".to_vec());
        fleet.push("f-2".into(), b"{}".to_vec());
        let ids = |fleet: &Fleet| -> Vec<String> {
            fleet
                .queue
                .lock()
                .unwrap()
                .iter()
                .map(|m| m.id.clone())
                .collect()
        };
        assert_eq!(ids(&fleet), ["f-0", "f-1", "f-2"]);
        // Only findings: a row does not push one out, a finding does.
        fleet.push_ledger("l-2".into(), b"{}".to_vec());
        assert_eq!(ids(&fleet), ["f-0", "f-1", "f-2"]);
        fleet.push("f-3".into(), b"{}".to_vec());
        assert_eq!(ids(&fleet), ["f-1", "f-2", "f-3"]);
        assert_eq!(fleet.stats.dropped.load(Ordering::Relaxed), 4);
    }
}
