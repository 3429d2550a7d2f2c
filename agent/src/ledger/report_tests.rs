use super::*;
use crate::ledger::{Minute, Usage, VerdictSeen};

const DECLARATIONS: &str = r#"
[[declare]]
name = "tenant-a inference"
purpose = "ai-inference"
registration = "REG-1"
cgroup = "/tenant-a/**"

[[declare]]
name = "tenant-b batch"
purpose = "general"
cgroup = "/tenant-b/**"
valid_until = 1970-01-01
"#;

fn usage(cgroup: &str, cpu: f64, verdict: Option<(&str, &str, &str)>) -> Usage {
    Usage {
        subject: Subject {
            cgroup: Some(cgroup.into()),
            ..Subject::default()
        },
        cpu_core_s: cpu,
        energy_estimated_j: cpu * 10.0,
        verdicts: verdict
            .into_iter()
            .map(|(id, class, level)| VerdictSeen {
                id: id.into(),
                class: class.into(),
                level: level.into(),
                explanation: format!("{class} because of {id}"),
                incentive: None,
            })
            .collect(),
        ..Usage::default()
    }
}

/// Ten minutes: a miner in tenant A (declared inference), a compressor in
/// tenant B (declared general, but the declaration expired in 1970), and
/// an undeclared session with an observed chain-node verdict.
fn ledger(name: &str) -> Store {
    let dir = std::env::temp_dir().join(format!("assay-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut store, _) = Store::open(&dir).unwrap();
    for m in 0..10i64 {
        let mut minute = Minute {
            minute: 10_000 + m,
            ..Minute::default()
        };
        // The miner's verdict forms in its third minute.
        let mining = (m >= 2).then_some(("v-mine", "pow-mining", "confirmed"));
        minute
            .workloads
            .insert("session 10".into(), usage("/tenant-a/job", 120.0, mining));
        minute
            .workloads
            .insert("session 20".into(), usage("/tenant-b/zip", 60.0, None));
        minute.workloads.insert(
            "session 30".into(),
            usage("/other", 6.0, Some(("v-node", "chain-node", "observed"))),
        );
        store.apply("r", m as u64, &minute).unwrap();
    }
    store
}

/// Removes the ledgers [`ledger`] made (once the test's store is closed).
fn clean(name: &str) {
    let dir = std::env::temp_dir().join(format!("assay-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}

fn report(store: &Store) -> Report {
    let declarations = Declarations::parse(DECLARATIONS, "d.toml", &[]).unwrap();
    build(
        store,
        &declarations,
        &Options {
            from: 0,
            to: 20_000,
            material_share: 0.1,
        },
    )
    .unwrap()
}

#[test]
fn declared_versus_observed_marks_mismatches_with_their_reasons() {
    let store = ledger("mismatch");
    let report = report(&store);
    assert_eq!(report.workloads.len(), 3);
    let miner = &report.workloads[0];
    assert_eq!(miner.workload, "session 10");
    assert_eq!(miner.declared.as_ref().unwrap().purpose, "ai-inference");
    assert_eq!(miner.cpu_core_seconds, 1200.0);
    let mining = &miner.classes[0];
    assert_eq!(mining.class, "pow-mining");
    assert_eq!(mining.cpu_core_seconds, 960.0);
    assert!((mining.share - 0.8).abs() < 1e-9);
    assert!(mining.energy_estimated);
    assert!(miner.mismatch);
    assert!(
        miner.reasons[0].contains("80% of its compute"),
        "{:?}",
        miner.reasons
    );
    assert!(miner.reasons[0].contains("verdict v-mine (confirmed)"));
    assert_eq!(miner.verdicts[0].first_seen, rfc3339_of_minute(10_002));

    let zip = &report.workloads[1];
    assert_eq!(zip.classes.len(), 1);
    assert_eq!(zip.classes[0].class, "general");
    assert!(zip.mismatch, "its declaration expired in 1970");
    assert!(zip.reasons[0].contains("valid until 1970-01-01"));

    let node = &report.workloads[2];
    assert!(node.declared.is_none());
    assert!(node.mismatch, "a verdict and no declaration");
    assert!(node.reasons[0].contains("no declaration names it"));
    // Observed verdicts do not take compute from `general`.
    assert_eq!(node.classes[0].class, "general");

    let totals = &report.totals;
    assert_eq!(totals.cpu_core_seconds, 1860.0);
    assert_eq!(totals.mismatched_workloads, 3);
    assert_eq!(totals.undeclared_workloads, 1);
    assert!((totals.undeclared_share - 60.0 / 1860.0).abs() < 1e-9);
    assert_eq!(report.bucket_minutes, 360);
    let cpu_in_series: f64 = report
        .series
        .iter()
        .flat_map(|p| p.cpu_core_seconds.values())
        .sum();
    assert_eq!(cpu_in_series, 1860.0);
    drop(store);
    clean("mismatch");
}

#[test]
fn a_general_compressor_with_a_current_declaration_is_no_mismatch() {
    let store = ledger("fine");
    let declarations = Declarations::parse(
        "[[declare]]\nname = \"b\"\npurpose = \"general\"\ncgroup = \"/tenant-b/**\"\n",
        "d.toml",
        &[],
    )
    .unwrap();
    let options = Options {
        from: 10_000,
        to: 10_010,
        material_share: 0.1,
    };
    let report = build(&store, &declarations, &options).unwrap();
    let zip = report
        .workloads
        .iter()
        .find(|w| w.workload == "session 20")
        .unwrap();
    assert!(!zip.mismatch, "{:?}", zip.reasons);
    // Half of the range: only what is inside counts.
    let half = build(
        &store,
        &declarations,
        &Options {
            from: 10_000,
            to: 10_005,
            ..options
        },
    )
    .unwrap();
    assert_eq!(half.totals.cpu_core_seconds, 5.0 * 186.0);
    drop(store);
    clean("fine");
}

#[test]
fn csv_has_a_row_per_workload_and_class_and_defuses_formulas() {
    let store = ledger("csv");
    let csv = to_csv(&report(&store));
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("workload,declared_name,declared_purpose"));
    // Miner: pow-mining and general; the others one class each.
    assert_eq!(lines.len(), 1 + 4, "{csv}");
    assert!(
        lines[1].starts_with("session 10,tenant-a inference,ai-inference,REG-1,pow-mining,960.000")
    );
    assert!(lines[1].contains(",true,"));
    assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    assert_eq!(csv_field("=cmd()"), "'=cmd()");
    assert_eq!(csv_field("-1.5"), "-1.5");
    drop(store);
    clean("csv");
}

#[test]
fn chart_buckets_stay_within_bounds() {
    assert_eq!(bucket_for(60), 1);
    assert_eq!(bucket_for(600), 5);
    assert_eq!(bucket_for(30 * 1440), 360);
    assert_eq!(bucket_for(400 * 1440), 1440 * 4);
    for minutes in [1, 119, 121, 10_000, 1_000_000] {
        assert!(minutes / bucket_for(minutes) <= 120, "{minutes}");
    }
}

#[test]
fn the_html_page_is_self_contained_with_charts_and_marked_mismatches() {
    let store = ledger("html");
    let report = report(&store);
    let page = crate::ledger::html::render(&report, 0, 20_000);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<svg class=\"chart\""));
    assert!(page.contains("<title>Host CPU core-seconds by class</title>"));
    assert_eq!(page.matches("<tr class=\"mismatch\"").count(), 3);
    assert!(page.contains("80% of its compute"));
    assert!(page.contains("@media print"));
    for outside in ["<script", "http://", "https://", "src=", "<link", "@import"] {
        let allowed = outside == "http://"
            && page.matches(outside).count()
                == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count();
        assert!(allowed || !page.contains(outside), "{outside}");
    }
    drop(store);
    clean("html");
}

#[test]
fn an_incentivised_ai_workload_declared_for_ai_is_dual_use_not_a_plain_match() {
    let dir = std::env::temp_dir().join(format!("assay-report-dual-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (mut store, _) = Store::open(&dir).unwrap();
    for m in 0..5i64 {
        let mut minute = Minute {
            minute: 10_000 + m,
            ..Minute::default()
        };
        let mut serving = usage(
            "/tenant-a/axon",
            60.0,
            Some(("v-ai", "ai-inference", "suspected")),
        );
        serving.verdicts[0].incentive = Some("bittensor".into());
        minute.workloads.insert("session 40".into(), serving);
        let mut plain = usage(
            "/tenant-a/plain",
            60.0,
            Some(("v-ai2", "ai-inference", "suspected")),
        );
        plain.verdicts[0].incentive = None;
        minute.workloads.insert("session 41".into(), plain);
        store.apply("r", m as u64, &minute).unwrap();
    }
    let report = report(&store);
    let axon = report
        .workloads
        .iter()
        .find(|w| w.workload == "session 40")
        .unwrap();
    let words = axon.dual_use.as_deref().expect("reported as dual-use");
    assert!(
        words.contains("bittensor") && words.contains("v-ai"),
        "{words}"
    );
    assert!(!axon.mismatch, "all of its compute is what it declared");
    assert_eq!(axon.verdicts[0].incentive.as_deref(), Some("bittensor"));
    let csv = to_csv(&report);
    assert!(
        csv.lines()
            .any(|l| l.starts_with("session 40") && l.contains("bittensor"))
    );
    let plain = report
        .workloads
        .iter()
        .find(|w| w.workload == "session 41")
        .unwrap();
    assert!(plain.dual_use.is_none() && !plain.mismatch);
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_class_can_be_declared() {
    for class in crate::correlate::Class::ALL {
        assert!(
            crate::ledger::declarations::PURPOSES.contains(&class.name()),
            "{}",
            class.name()
        );
    }
    assert_eq!(
        crate::ledger::declarations::PURPOSES.len(),
        crate::correlate::Class::ALL.len()
    );
}

/// Equal but for the order of floating-point additions (and the time the
/// report was made).
fn assert_same(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{at}: {x} != {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                assert_same(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys = |o: &serde_json::Map<String, Value>| {
                o.keys()
                    .filter(|k| *k != "generated_at")
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(keys(x), keys(y), "{at}: fields");
            for key in keys(x) {
                assert_same(&x[&key], &y[&key], &format!("{at}.{key}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Nine days of sparse minutes from four workloads (one mines for a while,
/// one has a GPU, one's minute is split between two classes, one restarts
/// mid-minute), some rolled up to hours, some past retention: the report
/// read from the hour totals is the report read from the minutes, for
/// ranges on and off the hour, over buckets of minutes, hours and days.
#[test]
fn hour_totals_give_the_report_the_minutes_give() {
    let base = 29_000_017i64;
    let day = 1440;
    let now = base + 9 * day + 7;
    let ranges = [
        (0, 40_000_000),
        (base, now),
        (base + 13, base + 7 * day - 29),
        (base + 3 * day + 41, base + 4 * day + 300),
        (base + 5, base + 500),
        (base + 2 * day + 59, base + 8 * day + 1),
    ];
    for (case, maintain) in [None, Some((5, 400)), Some((30, 8)), Some((3, 7))]
        .into_iter()
        .enumerate()
    {
        let name = format!("hours-{case}");
        let mut store = ledger(&name);
        let mut seq = 100;
        for m in (0..9 * day).step_by(37) {
            let mut minute = Minute {
                minute: base + m,
                ..Minute::default()
            };
            let mining = (m > 2 * day && m < 4 * day).then_some(("v-m", "pow-mining", "confirmed"));
            minute.workloads.insert(
                "session 10".into(),
                usage("/tenant-a/job", 50.0 + (m % 7) as f64, mining),
            );
            let mut gpu = usage(
                "/tenant-a/gpu",
                3.5,
                Some(("v-ai", "ai-inference", "suspected")),
            );
            gpu.gpu_s = 40.0 + (m % 11) as f64;
            gpu.gpu_mem_bytes = 1_000_000 + (m as u64 % 5) * 4096;
            gpu.energy_nvml_j = 9000.0 + m as f64;
            minute.workloads.insert("container gpu".into(), gpu);
            let mut both = usage(
                "/tenant-b/zip",
                21.0,
                Some(("v-n", "chain-node", "confirmed")),
            );
            both.verdicts.push(VerdictSeen {
                id: "v-m2".into(),
                class: "pow-mining".into(),
                level: "suspected".into(),
                explanation: "both".into(),
                incentive: None,
            });
            both.energy_rapl_j = 77.0;
            if m % 3 == 0 {
                minute.workloads.insert("session 20".into(), both);
            }
            seq += 1;
            store.apply("r", seq, &minute).unwrap();
            if m % 5 == 0 {
                // Another run's share of the same minute (a restart).
                let rest = Minute {
                    minute: base + m,
                    workloads: [("session 10".to_owned(), usage("/tenant-a/job", 1.25, None))]
                        .into_iter()
                        .collect(),
                };
                store.apply("r2", seq, &rest).unwrap();
            }
        }
        // Either side of where an eight-day retention cuts, in one hour.
        for (at, cpu) in [(now - 8 * day - 3, 5.0), (now - 8 * day + 3, 7.0)] {
            seq += 1;
            let minute = Minute {
                minute: at,
                workloads: [("session 10".to_owned(), usage("/tenant-a/job", cpu, None))]
                    .into_iter()
                    .collect(),
            };
            store.apply("r3", seq, &minute).unwrap();
        }
        if let Some((rollup, retention)) = maintain {
            store.maintain(now, rollup, retention).unwrap();
        }
        drop(store);
        let dir = std::env::temp_dir().join(format!("assay-report-{name}-{}", std::process::id()));
        let mut store = Store::open_read(&dir).unwrap();
        let declarations = Declarations::parse(DECLARATIONS, "d.toml", &[]).unwrap();
        for (from, to) in ranges {
            let options = Options {
                from,
                to,
                material_share: 0.1,
            };
            store.use_hour_totals(true);
            let fast =
                serde_json::to_value(build(&store, &declarations, &options).unwrap()).unwrap();
            store.use_hour_totals(false);
            let plain =
                serde_json::to_value(build(&store, &declarations, &options).unwrap()).unwrap();
            if (from, to) == (base, now) {
                assert_eq!(
                    plain["workloads"].as_array().map(Vec::len),
                    Some(3),
                    "{case}"
                );
            }
            assert_same(&fast, &plain, &format!("case {case}, {from}..{to}"));
        }
        drop(store);
        clean(&name);
    }
}

/// A ledger an assay before the hour totals wrote gets them when an agent
/// next opens it, and reports the same.
#[test]
fn a_ledger_without_hour_totals_gets_them_on_the_next_start() {
    let store = ledger("backfill");
    let before = serde_json::to_value(report(&store)).unwrap();
    drop(store);
    let dir = std::env::temp_dir().join(format!("assay-report-backfill-{}", std::process::id()));
    let conn = rusqlite::Connection::open(dir.join(crate::ledger::LEDGER_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE usage_hour; DROP TABLE active_hour;\n\
         DELETE FROM meta WHERE key = 'hour_totals';",
    )
    .unwrap();
    drop(conn);
    // A report alone cannot add them: it reads minutes.
    let read = Store::open_read(&dir).unwrap();
    assert_same(
        &serde_json::to_value(report(&read)).unwrap(),
        &before,
        "minutes",
    );
    drop(read);
    let (store, _) = Store::open(&dir).unwrap();
    drop(store);
    let read = Store::open_read(&dir).unwrap();
    let hours: i64 = rusqlite::Connection::open(dir.join(crate::ledger::LEDGER_FILE))
        .unwrap()
        .query_row("SELECT count(*) FROM usage_hour", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        hours, 4,
        "one hour: three workloads, the miner in two classes"
    );
    assert_same(
        &serde_json::to_value(report(&read)).unwrap(),
        &before,
        "hours",
    );
    drop(read);
    clean("backfill");
}
