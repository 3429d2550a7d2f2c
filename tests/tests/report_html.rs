#![allow(clippy::print_stderr, reason = "test output")]
//! The HTML compute-use report as a browser shows it: `assay report
//! --format html` over a ledger (a miner in a cgroup declared for AI
//! inference, a compressor declared general, an undeclared workload,
//! written as the agent writes its minutes), opened in headless Chromium
//! (Debian's chromium). The rendered page has its chart, the miner's row
//! marked a mismatch, the compressor's as declared, the undeclared one as
//! undeclared, and nothing on the console. The same checks
//! refuse a page broken three ways, so they can fail. Needs no root: the
//! privileged ledger suite runs the same checks on a report of a real run.

use std::{path::Path, process::Command};

use assay::ledger::{Minute, Subject, Usage, VerdictSeen, store::Store};
use assay_tests::{Rendered, TempDir, agent_binary, check_rendered_report, render_in_chromium};

fn usage(cgroup: &str, cpu: f64, mining: bool) -> Usage {
    Usage {
        subject: Subject {
            cgroup: Some(cgroup.into()),
            ..Subject::default()
        },
        cpu_core_s: cpu,
        energy_estimated_j: cpu * 10.0,
        verdicts: mining
            .then(|| VerdictSeen {
                id: "v-1".into(),
                class: "pow-mining".into(),
                level: "confirmed".into(),
                explanation: "stratum login and share submits; a RandomX-shaped CPU loop".into(),
                incentive: None,
            })
            .into_iter()
            .collect(),
        ..Usage::default()
    }
}

/// Forty minutes up to now: the miner's verdict from its fifth.
fn ledger(dir: &Path) {
    let (mut store, _) = Store::open(dir).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 60;
    for (i, m) in (now - 40..now).enumerate() {
        let mut minute = Minute {
            minute: m,
            ..Minute::default()
        };
        minute.workloads.insert(
            "session 4242".into(),
            usage("/tenant-a/job", 115.0 + (i % 7) as f64, i >= 4),
        );
        minute.workloads.insert(
            "session 5151".into(),
            usage("/tenant-b/zip", 40.0 + (i % 5) as f64, false),
        );
        // A workload nobody declared, and with no verdict.
        minute.workloads.insert(
            "session 6060".into(),
            usage("/tenant-c/web", 3.0 + (i % 3) as f64, false),
        );
        store.apply("run", i as u64, &minute).unwrap();
    }
}

fn check(rendered: &Rendered) -> Result<(), String> {
    check_rendered_report(rendered, "pow-mining", &["session 4242"], &["session 5151"])
}

#[test]
fn the_html_report_renders_with_its_chart_and_marked_mismatch() {
    let dir = TempDir::new("report-html");
    ledger(&dir.0);
    let declarations = dir.0.join("declarations.toml");
    std::fs::write(
        &declarations,
        "[[declare]]\nname = \"tenant-a inference\"\npurpose = \"ai-inference\"\n\
         cgroup = \"/tenant-a/**\"\n\n[[declare]]\nname = \"tenant-b batch\"\n\
         purpose = \"general\"\ncgroup = \"/tenant-b/**\"\n",
    )
    .unwrap();
    let page = dir.0.join("report.html");
    let out = Command::new(agent_binary())
        .args(["report", "--state-dir"])
        .arg(&dir.0)
        .arg("--declarations")
        .arg(&declarations)
        .args(["--last", "2h", "--format", "html", "--output"])
        .arg(&page)
        .output()
        .expect("run assay report");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered = render_in_chromium(&page);
    if let Err(err) = check(&rendered) {
        panic!("{err}\n{}", rendered.dom);
    }
    // Undeclared, no verdict: not a mismatch, and not shown as declared.
    let undeclared = rendered
        .dom
        .split("<tr ")
        .find(|row| row.contains("<td>session 6060</td>"))
        .expect("the undeclared workload's row");
    assert!(
        undeclared.starts_with("class=\"match\"")
            && undeclared.contains("undeclared")
            && !undeclared.contains("as declared"),
        "<tr {undeclared}"
    );

    // Broken pages are refused: a script error, no chart, an unmarked
    // mismatch.
    let html = std::fs::read_to_string(&page).unwrap();
    let broken = [
        (
            "a script error",
            html.replace("</body>", "<script>report.render();</script></body>"),
        ),
        (
            "no chart",
            html.replace("<svg class=\"chart\"", "<svg class=\"graph\""),
        ),
        (
            "an unmarked mismatch",
            html.replace("<tr class=\"mismatch\"", "<tr class=\"match\""),
        ),
    ];
    for (how, text) in broken {
        assert_ne!(text, html, "{how}: nothing changed");
        let copy = dir.0.join("broken.html");
        std::fs::write(&copy, text).unwrap();
        let result = check(&render_in_chromium(&copy));
        eprintln!("{how}: {result:?}");
        assert!(result.is_err(), "{how} passed the checks");
    }
}
