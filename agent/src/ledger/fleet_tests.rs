use super::*;
use crate::ledger::{
    Minute, Usage, VerdictSeen,
    declarations::Declarations,
    report::{self, Options, Report},
};

fn usage(cgroup: &str, cpu: f64, verdict: Option<(&str, &str, &str)>) -> Usage {
    Usage {
        subject: Subject {
            cgroup: Some(cgroup.into()),
            ..Subject::default()
        },
        cpu_core_s: cpu,
        gpu_s: cpu / 4.0,
        gpu_mem_bytes: 1 << 30,
        energy_estimated_j: cpu * 10.0,
        verdicts: verdict
            .into_iter()
            .map(|(id, class, level)| VerdictSeen {
                id: id.into(),
                class: class.into(),
                level: level.into(),
                explanation: format!("{class} because of {id}"),
                incentive: Some("bittensor".into()),
            })
            .collect(),
        ..Usage::default()
    }
}

fn minute(at: i64, workloads: &[(&str, Usage)]) -> Minute {
    Minute {
        minute: at,
        workloads: workloads
            .iter()
            .map(|(k, u)| ((*k).to_owned(), u.clone()))
            .collect(),
    }
}

/// Five minutes of a miner (its verdict from the second) and a compressor.
fn host_ledger(cpu_scale: f64) -> Store {
    let mut store = Store::in_memory().unwrap();
    for m in 0..5i64 {
        let mining = (m >= 1).then_some(("v-mine", "pow-mining", "confirmed"));
        let at = minute(
            20_000 + m,
            &[
                (
                    "session 10",
                    usage("/tenant-a/job", 60.0 * cpu_scale, mining),
                ),
                ("session 20", usage("/tenant-b/zip", 30.0 * cpu_scale, None)),
            ],
        );
        store.apply("run", m as u64, &at).unwrap();
    }
    store
}

/// What a host publishes: every stored minute's rows.
fn published(store: &Store, host: &str) -> Vec<LedgerRow> {
    (20_000..20_005)
        .flat_map(|m| store.minute_rows(host, m).unwrap())
        .collect()
}

fn options() -> Options {
    Options {
        from: 19_000,
        to: 21_000,
        material_share: 0.1,
    }
}

fn build(store: &Store) -> Report {
    report::build(store, &Declarations::default(), &options()).unwrap()
}

/// A fleet report from messages, as `assay report --nats` builds it.
fn fleet(collected: Collected) -> Report {
    let empty = build(&Store::in_memory().unwrap());
    let per_host = collected
        .into_stores()
        .unwrap()
        .into_iter()
        .map(|(host, store)| (host, build(&store)))
        .collect();
    report::merge(empty, per_host)
}

#[test]
fn a_row_encodes_and_decodes_to_itself() {
    let store = host_ledger(1.0);
    let rows = store.minute_rows("gpu-1.eu", 20_002).unwrap();
    assert_eq!(rows.len(), 2);
    let miner = &rows[0];
    assert_eq!(miner.workload, "session 10");
    assert_eq!(miner.host, "gpu-1.eu");
    assert_eq!(miner.schema, ROW_SCHEMA);
    assert_eq!(miner.subject.cgroup.as_deref(), Some("/tenant-a/job"));
    assert_eq!(miner.classes.len(), 1);
    assert_eq!(miner.classes[0].class, "pow-mining");
    assert_eq!(miner.classes[0].cpu_core_s, 60.0);
    assert_eq!(miner.classes[0].gpu_mem_bytes, 1 << 30);
    assert_eq!(miner.verdicts.len(), 1);
    assert_eq!(miner.verdicts[0].level, "confirmed");
    assert_eq!(miner.verdicts[0].incentive.as_deref(), Some("bittensor"));
    for row in &rows {
        assert_eq!(&LedgerRow::decode(&row.encode()).unwrap(), row);
    }
}

#[test]
fn bad_rows_are_refused_with_a_reason() {
    let store = host_ledger(1.0);
    let good = store.minute_rows("h", 20_001).unwrap().remove(0);
    let text = String::from_utf8(good.encode()).unwrap();
    let bad = [
        "not json".to_owned(),
        "{}".to_owned(),
        text.replace(ROW_SCHEMA, "assay.ledger-row/9"),
        text.replace("\"host\":\"h\"", "\"host\":\"\""),
        text.replace("\"cpu_core_s\":60.0", "\"cpu_core_s\":-60.0"),
        text.replace("\"cpu_core_s\":60.0", "\"cpu_core_s\":1e999"),
        text.replace("\"confirmed\"", "\"certain\""),
        text.replace("\"span\":1", "\"span\":0"),
        text[..text.len() / 2].to_owned(),
    ];
    for b in bad {
        assert_ne!(b, text);
        assert!(LedgerRow::decode(b.as_bytes()).is_err(), "{b}");
    }
    let mut collected = Collected::default();
    collected.add(b"\xff\x00");
    collected.add(text.as_bytes());
    assert_eq!((collected.messages, collected.malformed), (2, 1));
}

#[test]
fn the_id_is_the_same_for_the_same_row_and_changes_with_it() {
    let store = host_ledger(1.0);
    let a = store.minute_rows("h", 20_001).unwrap();
    let again = store.minute_rows("h", 20_001).unwrap();
    assert_eq!(a[0].msg_id(), again[0].msg_id(), "a retry has the same id");
    assert_ne!(a[0].msg_id(), a[1].msg_id(), "another workload");
    let other_host = store.minute_rows("h2", 20_001).unwrap();
    assert_ne!(a[0].msg_id(), other_host[0].msg_id());
    let next = store.minute_rows("h", 20_002).unwrap();
    assert_ne!(a[0].msg_id(), next[0].msg_id(), "another minute");
    let mut changed = a[0].clone();
    changed.classes[0].cpu_core_s += 1.0;
    assert_ne!(a[0].msg_id(), changed.msg_id(), "a changed row");
    assert!(!a[0].msg_id().contains(['\r', '\n', ' ']));
}

#[test]
fn a_host_read_from_the_stream_reports_as_its_own_ledger() {
    let store = host_ledger(1.0);
    let mut collected = Collected::default();
    for row in published(&store, "gpu-1") {
        collected.add(&row.encode());
    }
    let local = build(&store);
    let fleet = fleet(collected);
    assert_eq!(fleet.workloads.len(), local.workloads.len());
    for (f, l) in fleet.workloads.iter().zip(&local.workloads) {
        assert_eq!(f.host.as_deref(), Some("gpu-1"));
        let mut f = f.clone();
        f.host = None;
        assert_eq!(&f, l);
    }
    assert_eq!(fleet.totals, local.totals);
    assert_eq!(fleet.series, local.series);
    let hosts = fleet.hosts.unwrap();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0].totals, local.totals);
}

#[test]
fn rows_published_twice_or_again_after_a_restart_count_once() {
    // Run 1 writes half of minute 20 004 and publishes it; the agent
    // restarts, run 2 writes the other half: the minute is published again
    // with the sum. A retry re-sends run 1's rows after that.
    let mut store = host_ledger(1.0);
    let before = store.minute_rows("h", 20_004).unwrap();
    let half = minute(
        20_004,
        &[("session 20", usage("/tenant-b/zip", 30.0, None))],
    );
    store.apply("run-2", 1, &half).unwrap();
    let after = store.minute_rows("h", 20_004).unwrap();
    assert_eq!(after[1].classes[0].cpu_core_s, 60.0);

    let mut collected = Collected::default();
    for row in published(&store, "h") {
        collected.add(&row.encode());
    }
    // Minute 20 004 as run 1 published it came first on the stream.
    let mut stream = Collected::default();
    for row in before.iter().chain(published(&store, "h").iter()) {
        stream.add(&row.encode());
    }
    for row in published(&store, "h") {
        stream.add(&row.encode());
    }
    assert_eq!(stream.superseded, 1, "the compressor's minute changed");
    assert_eq!(stream.duplicates, 1 + 10, "the miner's, and the retry");
    let report = fleet(stream);
    let local = build(&store);
    assert_eq!(report.totals, local.totals);
    let zip = report
        .workloads
        .iter()
        .find(|w| w.workload == "session 20")
        .unwrap();
    assert_eq!(zip.cpu_core_seconds, 5.0 * 30.0 + 30.0);
    assert_eq!(fleet(collected).totals, local.totals);
}

#[test]
fn hosts_merge_into_per_host_and_fleet_totals() {
    let (a, b) = (host_ledger(1.0), host_ledger(2.0));
    let mut collected = Collected::default();
    // Interleaved, as two agents publish.
    for (ra, rb) in published(&a, "node-a")
        .iter()
        .zip(published(&b, "node-b").iter())
    {
        collected.add(&ra.encode());
        collected.add(&rb.encode());
    }
    let (local_a, local_b) = (build(&a), build(&b));
    let report = fleet(collected);
    // The same workload names on two hosts are two workloads.
    assert_eq!(report.workloads.len(), 4);
    let hosts: Vec<(&str, &str)> = report
        .workloads
        .iter()
        .map(|w| (w.host.as_deref().unwrap(), w.workload.as_str()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("node-a", "session 10"),
            ("node-a", "session 20"),
            ("node-b", "session 10"),
            ("node-b", "session 20")
        ]
    );
    let per_host = report.hosts.as_ref().unwrap();
    assert_eq!(per_host[0].host, "node-a");
    assert_eq!(per_host[0].totals, local_a.totals);
    assert_eq!(per_host[1].totals, local_b.totals);
    let t = &report.totals;
    assert_eq!(
        t.cpu_core_seconds,
        local_a.totals.cpu_core_seconds + local_b.totals.cpu_core_seconds
    );
    assert_eq!(t.cpu_core_seconds, 5.0 * 90.0 * 3.0);
    assert_eq!(
        t.energy_joules,
        local_a.totals.energy_joules + local_b.totals.energy_joules
    );
    assert_eq!(t.workloads, 4);
    assert_eq!(t.mismatched_workloads, 2, "each host's undeclared miner");
    let mining = t.classes.iter().find(|c| c.class == "pow-mining").unwrap();
    assert_eq!(mining.cpu_core_seconds, 4.0 * 60.0 * 3.0);
    // The fleet series is the sum of the hosts'.
    for (p, (pa, pb)) in report
        .series
        .iter()
        .zip(local_a.series.iter().zip(&local_b.series))
    {
        for (class, v) in &p.cpu_core_seconds {
            let sum = pa.cpu_core_seconds.get(class).unwrap_or(&0.0)
                + pb.cpu_core_seconds.get(class).unwrap_or(&0.0);
            assert_eq!(*v, sum);
        }
    }
    // Outside the period: nothing.
    let mut late = Collected::within(20_003, 22_000);
    for row in published(&a, "node-a") {
        late.add(&row.encode());
    }
    assert_eq!((late.messages, late.outside), (10, 6));
    let stores = late.into_stores().unwrap();
    let minutes = stores["node-a"].rows(0, i64::MAX).unwrap();
    assert!(minutes.iter().all(|r| r.minute >= 20_003), "{minutes:?}");
    assert_eq!(minutes.len(), 4);
}

#[test]
fn a_read_starts_at_the_period_less_the_skew() {
    use async_nats::jetstream::consumer::DeliverPolicy;
    match start_at(20_000) {
        DeliverPolicy::ByStartTime { start_time } => {
            assert_eq!(start_time.unix_timestamp(), 20_000 * 60 - SKEW_S);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(start_at(0), DeliverPolicy::All));
}

#[test]
fn csv_and_html_name_each_workloads_host() {
    let (a, b) = (host_ledger(1.0), host_ledger(2.0));
    let mut collected = Collected::default();
    for row in published(&a, "node-a")
        .iter()
        .chain(&published(&b, "node-b"))
    {
        collected.add(&row.encode());
    }
    let report = fleet(collected);
    let csv = report::to_csv(&report);
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().ends_with(",dual_use,host"));
    let hosts: Vec<&str> = lines.map(|l| l.rsplit(',').next().unwrap()).collect();
    assert_eq!(hosts.iter().filter(|h| **h == "node-a").count(), 3);
    assert_eq!(hosts.iter().filter(|h| **h == "node-b").count(), 3);
    let html = crate::ledger::html::render(&report, 19_000, 21_000);
    assert!(html.contains("<table id=\"hosts\">"));
    assert!(html.contains("<th>Host</th><th>Workload</th>"));
    assert!(html.contains("<td>node-b</td><td>session 10</td>"));
    // A host's own report has neither.
    let local = report::to_csv(&build(&a));
    assert!(local.lines().skip(1).all(|l| l.ends_with(',')));
    let html = crate::ledger::html::render(&build(&a), 19_000, 21_000);
    assert!(!html.contains("id=\"hosts\"") && !html.contains("<th>Host</th>"));
}
