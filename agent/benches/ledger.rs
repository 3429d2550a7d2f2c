#![allow(clippy::print_stdout, reason = "a benchmark's report")]
//! The ledger's cost: minute writes with N workloads, the store's bytes
//! per workload-day (minutes, then rolled up to hours), and the report's
//! time over the whole range, on synthetic minutes written through the
//! agent's own write path.
//!
//! ```sh
//! cargo bench -p assay --bench ledger -- [WORKLOADS] [DAYS] [DIR]
//! cargo bench -p assay --bench ledger -- fill [WORKLOADS] [DAYS] DIR
//! ```
//! (defaults: 1000 workloads, 1 day, a directory under /tmp).
//!
//! `fill` writes a ledger of DAYS ending now into DIR and keeps it, for
//! timing `assay report --state-dir DIR` on it: the minute rows are made
//! by SQLite itself (43 M rows through the writer's per-minute
//! transactions would take most of an hour here), the hour totals by the
//! store's own backfill, and the report is then built both ways (hour
//! totals, minutes only) and timed.

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
    if args.first().is_some_and(|a| a == "fill") {
        fill(&args[1..]);
        return;
    }
    if args.first().is_some_and(|a| a == "report") {
        let days: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
        let dir = std::path::PathBuf::from(args.get(2).expect("report needs a directory"));
        time_reports(&dir, days);
        return;
    }
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

/// The classes of workload `w` in minute `m` of the fill (see [`fill`]).
const FILL_CLASSES: &str = "
    WITH RECURSIVE m(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM m WHERE x + 1 < ?2),
    c(kind, class, part) AS (VALUES
        (0, 'pow-mining', 1.0), (1, 'ai-inference', 1.0), (2, 'chain-node', 1.0),
        (3, 'pow-mining', 1.0), (3, 'general', 1.0),
        (4, 'pow-mining', 0.5), (4, 'chain-node', 0.5), (5, 'general', 1.0))
    INSERT INTO usage(workload, minute, class, span, cpu_core_s, gpu_s, gpu_mem_bytes,
        energy_rapl_j, energy_nvml_j, energy_estimated_j)
    SELECT w.id, m.x, c.class, 1,
        c.part * ((w.id * 2654435761 + m.x * 40503) % 6000) / 100.0,
        CASE WHEN c.class = 'ai-inference' THEN 30.0 + (m.x % 30) ELSE 0.0 END,
        CASE WHEN c.class = 'ai-inference' THEN 8000000000 ELSE 0 END,
        c.part * ((w.id * 2654435761 + m.x * 40503) % 6000) / 10.0,
        CASE WHEN c.class = 'ai-inference' THEN 9000.0 + (m.x % 600) ELSE 0.0 END,
        0.0
    FROM workloads w JOIN m JOIN c ON c.kind = min(w.id % 20, 5)
    WHERE c.kind != 3
        OR (c.class = 'pow-mining') = (m.x >= ?1 + 10 * 1440 AND m.x < ?1 + 13 * 1440)
    ORDER BY w.id, m.x";

/// Writes DAYS × WORKLOADS of minutes, ending now, into DIR: one workload
/// in twenty mines (a confirmed verdict every minute), one runs AI
/// inference on a GPU, one is a chain node, one mines on days 10 to 12
/// only, one's minutes are split between mining and a chain node; the
/// rest are general. Every workload is busy every minute (the worst case).
fn fill(args: &[String]) {
    let workloads: i64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let days: i64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30);
    let dir = std::path::PathBuf::from(args.get(2).expect("fill needs a directory"));
    let _ = std::fs::remove_dir_all(&dir);
    drop(Store::open(&dir).expect("create the ledger"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60;
    let (start, end) = (now - days * 1440, now);
    let t = Instant::now();
    let conn = rusqlite::Connection::open(dir.join(assay::ledger::LEDGER_FILE)).expect("open");
    conn.execute_batch(
        "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -512000;
         DROP INDEX usage_minute; DROP INDEX active_minute;
         DELETE FROM meta WHERE key = 'hour_totals'",
    )
    .expect("prepare");
    for w in 0..workloads {
        let subject = serde_json::json!({
            "container": format!("{w:064x}"),
            "cgroup": format!("/system.slice/docker-{w:064x}.scope"),
            "uid": 1000 + w % 50,
        });
        conn.execute(
            "INSERT INTO workloads(id, key, subject) VALUES (?1, ?2, ?3)",
            rusqlite::params![
                w,
                format!("container docker://{w:064x}"),
                subject.to_string()
            ],
        )
        .expect("workload");
    }
    let explanation = |w: i64, class: &str| {
        format!(
            "container {w:064x} is confirmed as {class} (score 0.95): decisive evidence: \
             a process in it logged in to a {class} peer"
        )
    };
    for w in (0..workloads).filter(|w| [0, 2, 3, 4].contains(&(w % 20))) {
        for class in ["pow-mining", "chain-node"] {
            if (w % 20 == 0 || w % 20 == 3) && class == "chain-node"
                || w % 20 == 2 && class == "pow-mining"
            {
                continue;
            }
            let id = format!("v-{class}-{w}");
            conn.execute(
                "INSERT INTO verdicts(id, class, level, explanation) VALUES (?1, ?2, 2, ?3)",
                rusqlite::params![id, class, explanation(w, class)],
            )
            .expect("verdict");
            let (from, to) = if w % 20 == 3 {
                (start + 10 * 1440, start + 13 * 1440)
            } else {
                (start, end)
            };
            conn.execute(
                "WITH RECURSIVE m(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM m WHERE x + 1 < ?2)
                 INSERT INTO active(workload, minute, verdict, level) SELECT ?3, x, ?4, 2 FROM m",
                rusqlite::params![from, to, w, id],
            )
            .expect("active");
        }
    }
    // A day at a time, so that SQLite's sort stays in memory.
    for day in 0..days {
        let from = start + day * 1440;
        conn.execute(FILL_CLASSES, rusqlite::params![from, from + 1440])
            .expect("usage");
    }
    conn.execute_batch(
        "CREATE INDEX usage_minute ON usage(minute); CREATE INDEX active_minute ON active(minute);
         PRAGMA journal_mode = WAL;",
    )
    .expect("index");
    drop(conn);
    let rows_s = t.elapsed().as_secs_f64();
    println!(
        "filled {workloads} workloads × {days} days ({start}..{end}, Unix minutes) in {rows_s:.0} s"
    );
    time_reports(&dir, days);
}

/// Opens the ledger in `dir` as the agent does (the store's backfill makes
/// the hour totals when it has none), then builds the report over the
/// `days` before the next minute both ways and times them.
fn time_reports(dir: &std::path::Path, days: i64) {
    let t = Instant::now();
    drop(Store::open(dir).expect("reopen"));
    let backfill_s = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(dir.join(assay::ledger::LEDGER_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    let mut store = Store::open_read(dir).expect("open to read");
    let workloads = store.subjects().expect("subjects").len();
    println!(
        "opened (hour totals made if missing) in {backfill_s:.0} s: {:.1} MiB, \
         {:.1} KiB per workload-day",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / 1024.0 / (workloads as f64 * days as f64)
    );
    let declarations = Declarations::parse(
        "[[declare]]\nname = \"some\"\npurpose = \"ai-inference\"\nuser = 1000\n\
         [[declare]]\nname = \"all\"\npurpose = \"general\"\ncgroup = \"/system.slice/*\"\n",
        "bench.toml",
        &[],
    )
    .expect("declarations");
    // As `assay report` with no range: the 30 days before the next minute.
    let end = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
        / 60;
    let options = Options {
        from: end + 1 - days * 1440,
        to: end + 1,
        material_share: 0.1,
    };
    for hours in [true, false] {
        store.use_hour_totals(hours);
        let t = Instant::now();
        let built = report::build(&store, &declarations, &options).expect("report");
        println!(
            "report built from {} in {:.2} s ({} workloads, {} mismatched)",
            if hours { "hour totals" } else { "minutes only" },
            t.elapsed().as_secs_f64(),
            built.workloads.len(),
            built.totals.mismatched_workloads
        );
    }
}
