use super::*;
use crate::ledger::{Usage, VerdictSeen};

/// A directory of its own, removed when the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("assay-ledger-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn usage(cpu: f64, verdicts: &[(&str, &str, &str)]) -> Usage {
    Usage {
        subject: Subject {
            cgroup: Some("/tenant".into()),
            ..Subject::default()
        },
        cpu_core_s: cpu,
        gpu_s: 0.0,
        gpu_mem_bytes: 0,
        energy_nvml_j: 0.0,
        energy_rapl_j: 0.0,
        energy_estimated_j: cpu * 10.0,
        verdicts: verdicts
            .iter()
            .map(|(id, class, level)| VerdictSeen {
                id: (*id).into(),
                class: (*class).into(),
                level: (*level).into(),
                explanation: format!("{id} explained"),
                incentive: None,
            })
            .collect(),
        exe_check: None,
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

fn cpu_by_class(store: &Store, from: i64, to: i64) -> BTreeMap<(String, String), f64> {
    let mut out = BTreeMap::new();
    for row in store.rows(from, to).unwrap() {
        *out.entry((row.workload, row.class)).or_insert(0.0) += row.cpu_core_s;
    }
    out
}

#[test]
fn a_batch_is_written_once_and_runs_add_up() {
    let dir = temp_dir("once");
    let (mut store, aside) = Store::open(&dir).unwrap();
    assert!(aside.is_none());
    let m = minute(1000, &[("session 7", usage(30.0, &[]))]);
    assert!(store.apply("run-a", 1, &m).unwrap());
    // The same batch again (a retry): nothing added.
    assert!(!store.apply("run-a", 1, &m).unwrap());
    // A restarted agent measured the rest of the minute: added.
    let rest = minute(1000, &[("session 7", usage(12.5, &[]))]);
    assert!(store.apply("run-b", 1, &rest).unwrap());
    drop(store);
    let store = Store::open_read(&dir).unwrap();
    let cpu = cpu_by_class(&store, 0, 2000);
    assert_eq!(cpu[&("session 7".into(), "general".into())], 42.5);
    assert_eq!(
        store.subjects().unwrap()["session 7"].cgroup.as_deref(),
        Some("/tenant")
    );
}

#[test]
fn a_minute_is_split_among_its_verdicts_classes_and_observed_does_not_count() {
    let dir = temp_dir("split");
    let (mut store, _) = Store::open(&dir).unwrap();
    let both = usage(
        60.0,
        &[
            ("v1", "pow-mining", "confirmed"),
            ("v2", "ai-inference", "suspected"),
            ("v3", "chain-node", "observed"),
        ],
    );
    store.apply("r", 1, &minute(500, &[("w", both)])).unwrap();
    let cpu = cpu_by_class(&store, 0, 1000);
    assert_eq!(cpu.len(), 2, "{cpu:?}");
    assert_eq!(cpu[&("w".into(), "pow-mining".into())], 30.0);
    assert_eq!(cpu[&("w".into(), "ai-inference".into())], 30.0);
    let verdicts = store.verdicts(0, 1000).unwrap();
    let ids: Vec<&str> = verdicts.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.contains(&"v3"),
        "observed verdicts are kept as evidence"
    );
}

#[test]
fn old_minutes_roll_up_to_hours_exactly_and_expire() {
    let dir = temp_dir("rollup");
    let (mut store, _) = Store::open(&dir).unwrap();
    let day = 1440;
    let now = 100 * day;
    // Two hours of minutes 40 days ago, mining in the first 10 minutes of
    // the first hour only; and one minute 500 days ago.
    let base = now - 40 * day;
    let base = base - base % 60;
    let mut seq = 0;
    for m in 0..120 {
        let verdicts: &[(&str, &str, &str)] = if m < 10 {
            &[("v1", "pow-mining", "confirmed")]
        } else {
            &[]
        };
        seq += 1;
        store
            .apply("r", seq, &minute(base + m, &[("w", usage(1.0, verdicts))]))
            .unwrap();
    }
    // A recent minute stays a minute.
    seq += 1;
    store
        .apply("r", seq, &minute(now - 5, &[("w", usage(2.0, &[]))]))
        .unwrap();
    let before = cpu_by_class(&store, 0, now + 1);
    let (_, deleted) = store.maintain(now, 30, 400).unwrap();
    assert_eq!(deleted, 0);
    let after = cpu_by_class(&store, 0, now + 1);
    assert_eq!(before, after, "a rollup keeps every class's total");
    assert_eq!(after[&("w".into(), "pow-mining".into())], 10.0);
    assert_eq!(after[&("w".into(), "general".into())], 112.0);
    let rows = store.rows(0, now + 1).unwrap();
    let spans: Vec<i64> = rows.iter().map(|r| r.span).collect();
    assert_eq!(spans.iter().filter(|s| **s == 60).count(), 3, "{spans:?}");
    assert_eq!(spans.iter().filter(|s| **s == 1).count(), 1, "{spans:?}");
    assert_eq!(store.verdicts(0, now).unwrap()[0].first_minute, base);
    // Maintenance is idempotent.
    store.maintain(now, 30, 400).unwrap();
    assert_eq!(cpu_by_class(&store, 0, now + 1), after);
    // Past the retention, everything older goes.
    let (_, deleted) = store.maintain(now + 400 * day, 30, 400).unwrap();
    assert_eq!(
        deleted, 5,
        "three hour rows, one recent minute and one active row"
    );
    assert!(store.rows(0, i64::MAX).unwrap().is_empty());
}

#[test]
fn a_corrupt_or_truncated_ledger_is_set_aside_never_emptied() {
    for (name, damage) in [("garbage", 0usize), ("truncated", 1)] {
        let dir = temp_dir(name);
        {
            let (mut store, _) = Store::open(&dir).unwrap();
            for seq in 0..200 {
                store
                    .apply("r", seq, &minute(seq as i64, &[("w", usage(1.0, &[]))]))
                    .unwrap();
            }
            store.checkpoint().unwrap();
        }
        let path = dir.join(crate::ledger::LEDGER_FILE);
        let original = std::fs::read(&path).unwrap();
        let damaged = if damage == 0 {
            b"this is not a database, just text that was written over it".repeat(100)
        } else {
            original[..original.len() / 3].to_vec()
        };
        std::fs::write(&path, &damaged).unwrap();
        assert!(
            matches!(Store::open_read(&dir), Err(StoreError::Corrupt { .. })),
            "{name}: a report refuses it"
        );
        let (store, aside) = Store::open(&dir).unwrap();
        let aside = aside.unwrap_or_else(|| panic!("{name}: not set aside"));
        assert_eq!(
            std::fs::read(&aside.to).unwrap(),
            damaged,
            "{name}: kept as it was"
        );
        assert!(aside.to.to_string_lossy().contains(".corrupt-"));
        assert!(store.rows(0, i64::MAX).unwrap().is_empty(), "{name}: fresh");
    }
}
