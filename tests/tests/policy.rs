#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: a policy file allows one miner (its verdict is counted and,
//! with --log-suppressed, written as `verdict.suppressed` naming the rule)
//! and downgrades another; a policy file with an error is refused at start
//! with its line, before anything is loaded.

use std::{
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{
    Agent, Server, TempDir, TestCgroup, agent_binary, emulator_path, finding_pid, require_root,
};

fn miner(cgroup: &TestCgroup, exe: &std::path::Path, pool: &Server) -> std::process::Child {
    let mut cmd = Command::new(exe);
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "1500"])
        .stdout(Stdio::null());
    cgroup.spawn(cmd)
}

#[test]
fn allowed_miners_are_suppressed_and_counted_downgraded_ones_capped() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("policy");
    // Two copies of the miner: one the operator allows, one it downgrades.
    let allowed = dir.0.join("render-bench");
    let capped = dir.0.join("lab-bench");
    std::fs::copy(emulator_path(), &allowed).unwrap();
    std::fs::copy(emulator_path(), &capped).unwrap();
    let policy = dir.0.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            r#"
[[rule]]
name = "render farm benchmark"
action = "allow"
class = ["pow-mining"]
exe = "{}"

[[rule]]
name = "lab"
action = "downgrade"
exe = "*/lab-bench"
max_level = "observed"
"#,
            allowed.display()
        ),
    )
    .unwrap();
    let cgroup = TestCgroup::new("policy");
    let pool = Server::start("pool");
    let mut agent = Agent::start_with(
        &cgroup,
        &["--policy", policy.to_str().unwrap(), "--log-suppressed"],
    );
    let mut first = miner(&cgroup, &allowed, &pool);
    let allowed_pid = u64::from(first.id());
    let suppressed = agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            finding_pid(f) == Some(allowed_pid)
        })
        .unwrap_or_else(|| panic!("no suppressed line for the allowed miner: {:?}", agent.seen));
    assert_eq!(suppressed["event"], "verdict.suppressed", "{suppressed}");
    assert_eq!(suppressed["policy_rule"], "render farm benchmark");
    let mut second = miner(&cgroup, &capped, &pool);
    let capped_pid = u64::from(second.id());
    let downgraded = agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            finding_pid(f) == Some(capped_pid)
        })
        .unwrap_or_else(|| panic!("no finding for the downgraded miner: {:?}", agent.seen));
    assert_eq!(downgraded["event"], "verdict.opened", "{downgraded}");
    assert_eq!(downgraded["level"], "observed", "{downgraded}");
    assert_eq!(downgraded["policy_rule"], "lab");
    let _ = first.wait();
    let _ = second.wait();
    agent.stop_with(libc::SIGTERM);
    assert!(
        agent
            .seen
            .iter()
            .filter(|f| finding_pid(f) == Some(allowed_pid))
            .all(|f| f["event"] == "verdict.suppressed"),
        "the allowed miner was reported: {:?}",
        agent.seen
    );
    let logs = agent.logs_text();
    let bye = logs
        .lines()
        .find(|l| l.contains("bye"))
        .expect("exit summary");
    assert!(
        bye.contains("suppressed=") && !bye.contains("suppressed=0 "),
        "{bye}"
    );
}

#[test]
fn a_policy_with_an_error_is_refused_at_start_naming_its_line() {
    let dir = TempDir::new("bad-policy");
    let policy = dir.0.join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\naction = \"allow\"\nexe = \"/opt/x\"\nexecutable = \"/opt/y\"\n",
    )
    .unwrap();
    let out = Command::new(agent_binary())
        .args(["--policy", policy.to_str().unwrap()])
        .output()
        .expect("run the agent");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("line 4") && stderr.contains("executable"),
        "{stderr}"
    );
}
