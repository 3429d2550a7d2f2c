#![allow(clippy::print_stdout, reason = "a benchmark's report")]
//! The ledger's cost: minute writes with N workloads, the store's bytes
//! per workload-day (minutes, then rolled up to hours), and the report's
//! time over the whole range, on synthetic minutes written through the
//! agent's own write path.
//!
//! ```sh
//! cargo bench -p assay --bench ledger -- [WORKLOADS] [DAYS] [DIR]
//! ```
//! (defaults: 1000 workloads, 1 day, a directory under /tmp).

use std::time::Instant;

use assay::ledger::{
    Minute, Subject, Usage, VerdictSeen,
    declarations::Declarations,
    report::{self, Options},
    store::Store,
};

fn minute(at: i64, workloads: usize, seed: &mut u64) -> Minute {
    let mut minute = Minute {
        minute: at,
        ..Minute::default()
    };
    for w in 0..workloads {
        // xorshift: varied, reproducible figures.
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let cpu = (*seed % 6000) as f64 / 100.0;
        let verdicts = if w % 20 == 0 {
            vec![VerdictSeen {
                id: format!("verdict-{w}"),
                class: "pow-mining".into(),
                level: "confirmed".into(),
                explanation: format!(
                    "session {w} is confirmed as pow-mining (score 0.95): decisive evidence: \
                     pid {w} (xmrig) logged in to a stratum pool"
                ),
                incentive: None,
            }]
        } else {
            Vec::new()
        };
        minute.workloads.insert(
            format!("container docker://{w:064x}"),
            Usage {
                subject: Subject {
                    container: Some(format!("{w:064x}")),
                    cgroup: Some(format!("/system.slice/docker-{w:064x}.scope")),
                    uid: Some(1000 + (w % 50) as u32),
                    ..Subject::default()
                },
                cpu_core_s: cpu,
                energy_estimated_j: cpu * 10.0,
                verdicts,
                ..Usage::default()
            },
        );
    }
    minute
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let workloads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let days: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let dir = args.get(2).map_or_else(
        || std::env::temp_dir().join(format!("assay-ledger-bench-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let _ = std::fs::remove_dir_all(&dir);
    let (mut store, _) = Store::open(&dir).expect("open the ledger");
    let start_minute = 29_000_000i64 - 29_000_000 % 1440;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut times = Vec::with_capacity((days * 1440) as usize);
    let written = Instant::now();
    for m in 0..days * 1440 {
        let batch = minute(start_minute + m, workloads, &mut seed);
        let t = Instant::now();
        store.apply("bench", m as u64, &batch).expect("write");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let total_s = written.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "minute writes ({workloads} workloads, {} minutes): median {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         ({:.0} s in all, generation included)",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        total_s
    );
    store.checkpoint().expect("checkpoint");
    let bytes = store.bytes();
    println!(
        "store: {:.1} MiB for {workloads} workloads × {days} day(s) of minutes: {:.1} KiB per workload-day",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / 1024.0 / (workloads as f64 * days as f64)
    );
    let end = start_minute + days * 1440;
    let declarations = Declarations::parse(
        "[[declare]]\nname = \"some\"\npurpose = \"ai-inference\"\nuser = 1000\n\
         [[declare]]\nname = \"all\"\npurpose = \"general\"\ncgroup = \"/system.slice/*\"\n",
        "bench.toml",
        &[],
    )
    .expect("declarations");
    let options = Options {
        from: start_minute,
        to: end,
        material_share: 0.1,
    };
    let t = Instant::now();
    let built = report::build(&store, &declarations, &options).expect("report");
    let build_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let json = serde_json::to_string(&built).expect("json");
    let csv = report::to_csv(&built);
    let html = assay::ledger::html::render(&built, start_minute, end);
    println!(
        "report over {days} day(s) × {workloads} workloads: {build_s:.2} s to build \
         ({} mismatched), {:.2} s to write JSON {:.1} MiB + CSV {:.1} MiB + HTML {:.1} MiB",
        built.totals.mismatched_workloads,
        t.elapsed().as_secs_f64(),
        json.len() as f64 / 1_048_576.0,
        csv.len() as f64 / 1_048_576.0,
        html.len() as f64 / 1_048_576.0
    );
    // Rolled up: every minute older than 30 days folded into hours.
    let t = Instant::now();
    store
        .maintain(end + 31 * 1440, 30, 400_000)
        .expect("rollup");
    let rollup_s = t.elapsed().as_secs_f64();
    drop(store);
    let conn = rusqlite::Connection::open(dir.join(assay::ledger::LEDGER_FILE)).expect("reopen");
    conn.execute_batch("VACUUM").expect("vacuum");
    drop(conn);
    let rolled = std::fs::metadata(dir.join(assay::ledger::LEDGER_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "rolled up to hours in {rollup_s:.1} s: {:.1} KiB per workload-day",
        rolled as f64 / 1024.0 / (workloads as f64 * days as f64)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
