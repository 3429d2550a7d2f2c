#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: `[[enforce]]` rules on real processes in cgroups of their
//! own. A confirmed miner is frozen (the kernel says `frozen 1`) with
//! --enforce and thawed when the agent exits; a kill rule leaves its
//! cgroup empty; a dry run leaves it running and records what it would
//! have done; the sixth action in a minute is not taken and enforcement
//! says it is disarmed (log and metrics); a GPU miner is never frozen; a protected cgroup is never acted on; a benign
//! look-alike on the same kind of connection gets no action; records
//! validate against the schema in OCSF, with a disposition.

use std::{path::Path, process::Child, time::Duration};

use assay_tests::{Agent, Server, TempDir, TestCgroup, emulator, require_root, validate_findings};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(15);

/// A policy whose rule acts only on cgroups below `cgroup`, so that no
/// process outside this test can match it.
fn policy(dir: &TempDir, cgroup: &TestCgroup, actions: &str) -> String {
    let path = dir.0.join("policy.toml");
    let name = cgroup.path.file_name().unwrap().to_str().unwrap();
    std::fs::write(
        &path,
        format!(
            "[[enforce]]\nname = \"no mining here\"\nclass = [\"pow-mining\"]\n\
             min_level = \"confirmed\"\nactions = {actions}\ncgroup = \"/{name}/*\"\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// A stratum miner that stays connected for the whole test.
fn miner(cgroup: &TestCgroup, pool: &Server) -> Child {
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "60000", "--submit-every-ms", "500"]);
    cgroup.spawn(cmd)
}

fn enforced_for(pid: u32) -> impl Fn(&Value) -> bool {
    move |f| {
        f["event"] == "verdict.enforced"
            && f["evidence"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["pid"] == u64::from(pid)))
    }
}

fn events(dir: &Path, key: &str) -> Option<String> {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} ")).map(str::to_owned))
}

fn first_action(finding: &Value) -> &Value {
    &finding["enforcement"]["actions"][0]
}

#[test]
fn a_confirmed_miner_is_frozen_with_enforce_and_thawed_when_the_agent_exits() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-freeze");
    let cgroup = TestCgroup::new("enforce-freeze");
    let own = cgroup.nested("miner.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\", \"kill\"]");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    let mut miner = miner(&own, &pool);
    let finding = agent
        .wait_for_finding(WAIT, enforced_for(miner.id()))
        .unwrap_or_else(|| panic!("no enforcement record: {:?}", agent.seen));
    assert_eq!(finding["enforcement"]["rule"], "no mining here");
    let action = first_action(&finding);
    assert_eq!(action["action"], "freeze", "{finding}");
    assert_eq!(action["mode"], "enforce");
    assert_eq!(action["result"], "done", "{finding}");
    assert!(
        action["target"].as_str().unwrap().ends_with("/miner.scope"),
        "{finding}"
    );
    // One rung held: the kill was not needed.
    assert_eq!(
        finding["enforcement"]["actions"].as_array().unwrap().len(),
        1
    );
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("1"));
    assert_eq!(miner.try_wait().unwrap(), None, "a frozen miner lives on");
    agent.stop_with(libc::SIGTERM);
    assert_eq!(
        events(&own.path, "frozen").as_deref(),
        Some("0"),
        "the agent's exit thaws what it froze"
    );
    assert!(agent.logs_text().contains("enforcement undone: thawed"));
    let _ = miner.kill();
    let _ = miner.wait();
}

#[test]
fn under_a_kill_rule_set_in_the_config_file_the_miners_cgroup_ends_empty() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-kill");
    let cgroup = TestCgroup::new("enforce-kill");
    let own = cgroup.nested("miner.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"kill\"]");
    // Enforcement turned on from the config file, as an operator would.
    let config = dir.0.join("assay.toml");
    std::fs::write(&config, format!("enforce = true\npolicy = \"{policy}\"\n")).unwrap();
    let mut agent = Agent::start_with(&cgroup, &["--config", config.to_str().unwrap()]);
    let mut miner = miner(&own, &pool);
    let finding = agent
        .wait_for_finding(WAIT, enforced_for(miner.id()))
        .unwrap_or_else(|| panic!("no enforcement record: {:?}", agent.seen));
    let action = first_action(&finding);
    assert_eq!(
        (&action["action"], &action["result"]),
        (&"kill".into(), &"done".into()),
        "{finding}"
    );
    assert_eq!(events(&own.path, "populated").as_deref(), Some("0"));
    let status = miner.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    agent.stop_with(libc::SIGTERM);
}

#[test]
fn in_a_cgroup_shared_with_another_workload_only_the_miners_processes_are_killed() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-shared");
    let cgroup = TestCgroup::new("enforce-shared");
    let shared = cgroup.nested("shared.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\", \"kill\"]");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    // Another session in the same cgroup: freezing or killing the cgroup
    // would take it down too.
    let mut neighbour = std::process::Command::new("sleep");
    neighbour.arg("60");
    let mut neighbour = shared.spawn(neighbour);
    let mut miner = miner(&shared, &pool);
    let finding = agent
        .wait_for_finding(WAIT, enforced_for(miner.id()))
        .unwrap_or_else(|| panic!("no enforcement record: {:?}", agent.seen));
    let actions = finding["enforcement"]["actions"].as_array().unwrap();
    assert_eq!(actions[0]["action"], "freeze", "{finding}");
    assert_ne!(actions[0]["result"], "done", "{finding}");
    let kill = actions.last().unwrap();
    assert_eq!(
        (&kill["action"], &kill["result"]),
        (&"kill".into(), &"done".into()),
        "{finding}"
    );
    assert!(
        kill["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("SIGKILL to pids {}", miner.id())),
        "{finding}"
    );
    let status = miner.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    assert_eq!(events(&shared.path, "frozen").as_deref(), Some("0"));
    assert_eq!(
        neighbour.try_wait().unwrap(),
        None,
        "the neighbour lives on"
    );
    agent.stop_with(libc::SIGTERM);
    let _ = neighbour.kill();
    let _ = neighbour.wait();
}

#[test]
fn a_dry_run_leaves_the_miner_running_and_records_what_it_would_do() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-dry");
    let cgroup = TestCgroup::new("enforce-dry");
    let own = cgroup.nested("miner.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\", \"kill\"]");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy]);
    let mut miner = miner(&own, &pool);
    let finding = agent
        .wait_for_finding(WAIT, enforced_for(miner.id()))
        .unwrap_or_else(|| panic!("no dry-run record: {:?}", agent.seen));
    let action = first_action(&finding);
    assert_eq!(action["mode"], "dry-run", "{finding}");
    assert_eq!(action["action"], "freeze");
    assert_eq!(action["result"], "would-do");
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("0"));
    assert_eq!(events(&own.path, "populated").as_deref(), Some("1"));
    assert_eq!(miner.try_wait().unwrap(), None, "a dry run touches nothing");
    agent.stop_with(libc::SIGTERM);
    let _ = miner.kill();
    let _ = miner.wait();
}

#[test]
fn records_in_ocsf_carry_the_remediation_and_a_disposition_and_validate() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-ocsf");
    let cgroup = TestCgroup::new("enforce-ocsf");
    let own = cgroup.nested("miner.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\"]");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--format", "ocsf"]);
    let mut miner = miner(&own, &pool);
    let pid = miner.id();
    let finding = agent
        .wait_for_finding(WAIT, |f| enforced_for(pid)(&f["unmapped"]["assay"]))
        .unwrap_or_else(|| panic!("no enforcement record: {:?}", agent.seen));
    assert_eq!(finding["disposition"], "Logged", "{finding}");
    assert_eq!(finding["disposition_id"], 17);
    let desc = finding["remediation"]["desc"].as_str().unwrap();
    assert!(
        desc.contains("no mining here") && desc.contains("freeze would-do (dry-run)"),
        "{desc}"
    );
    agent.stop_with(libc::SIGTERM);
    validate_findings(&agent.seen);
    let _ = miner.kill();
    let _ = miner.wait();
}

#[test]
fn the_sixth_action_in_a_minute_is_not_taken_and_enforcement_says_it_is_disarmed() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-disarm");
    let cgroup = TestCgroup::new("enforce-disarm");
    let cgroups: Vec<TestCgroup> = (0..6)
        .map(|i| cgroup.nested(&format!("miner-{i}.scope")))
        .collect();
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\"]");
    let metrics_port = assay_tests::free_port();
    let metrics = format!("127.0.0.1:{metrics_port}");
    let mut agent = Agent::start_with(
        &cgroup,
        &[
            "--policy",
            &policy,
            "--enforce",
            "--metrics-listen",
            &metrics,
        ],
    );
    let mut miners = Vec::new();
    for (i, own) in cgroups.iter().enumerate() {
        let miner = miner(own, &pool);
        let finding = agent
            .wait_for_finding(WAIT, enforced_for(miner.id()))
            .unwrap_or_else(|| panic!("no record for miner {i}: {:?}", agent.seen));
        let (result, frozen) = if i < 5 {
            ("done", "1")
        } else {
            ("disarmed", "0")
        };
        assert_eq!(
            first_action(&finding)["result"],
            result,
            "miner {i}: {finding}"
        );
        assert_eq!(
            events(&own.path, "frozen").as_deref(),
            Some(frozen),
            "miner {i}"
        );
        miners.push(miner);
    }
    assert!(
        agent
            .wait_for_log("enforcement disarmed", Duration::from_secs(5))
            .is_some()
    );
    let body = metrics_body(metrics_port);
    for line in [
        "assay_enforcement_actions_total{action=\"freeze\",mode=\"enforce\",result=\"done\"} 5",
        "assay_enforcement_actions_total{action=\"freeze\",mode=\"enforce\",result=\"disarmed\"} 1",
        "assay_enforcement_disarmed 1",
    ] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in:\n{body}");
    }
    agent.stop_with(libc::SIGTERM);
    assert!(agent.logs_text().contains("enforcement_disarmed=true"));
    for own in &cgroups {
        assert_eq!(events(&own.path, "frozen").as_deref(), Some("0"));
    }
    for mut miner in miners {
        let _ = miner.kill();
        let _ = miner.wait();
    }
}

#[test]
fn a_protected_cgroup_is_never_acted_on() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-protect");
    let cgroup = TestCgroup::new("enforce-protect");
    let own = cgroup.nested("tenant.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\", \"kill\"]");
    let protect = format!("{}/*", cgroup_path(&cgroup));
    let mut agent = Agent::start_with(
        &cgroup,
        &["--policy", &policy, "--enforce", "--protect", &protect],
    );
    let mut miner = miner(&own, &pool);
    let finding = agent
        .wait_for_finding(WAIT, enforced_for(miner.id()))
        .unwrap_or_else(|| panic!("no enforcement record: {:?}", agent.seen));
    let actions = finding["enforcement"]["actions"].as_array().unwrap();
    assert!(
        actions.iter().all(|a| a["result"] == "skipped"),
        "{finding}"
    );
    assert!(
        actions
            .iter()
            .all(|a| a["reason"].as_str().unwrap().contains("protected")),
        "{finding}"
    );
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("0"));
    assert_eq!(miner.try_wait().unwrap(), None);
    agent.stop_with(libc::SIGTERM);
    let _ = miner.kill();
    let _ = miner.wait();
}

#[test]
fn a_benign_look_alike_gets_no_action() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-benign");
    let cgroup = TestCgroup::new("enforce-benign");
    let benign_cgroup = cgroup.nested("rpc.scope");
    let miner_cgroup = cgroup.nested("miner.scope");
    let server = Server::start("server");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\"]");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    let mut benign = Vec::new();
    for kind in ["json-rpc", "http"] {
        let mut cmd = emulator();
        cmd.args([kind, "--connect", &server.addr]);
        let mut child = benign_cgroup.spawn(cmd);
        assert!(child.wait().unwrap().success(), "{kind} client failed");
        benign.push(child.id());
    }
    // Control: events are handled in order, so once the miner's record
    // is out, any about the benign clients would be out too.
    let mut miner = miner(&miner_cgroup, &pool);
    assert!(
        agent
            .wait_for_finding(WAIT, enforced_for(miner.id()))
            .is_some(),
        "the control miner was not acted on: {:?}",
        agent.seen
    );
    for pid in benign {
        assert!(
            !agent.seen.iter().any(enforced_for(pid)),
            "benign client {pid} was acted on: {:?}",
            agent.seen
        );
    }
    agent.stop_with(libc::SIGTERM);
    let _ = miner.kill();
    let _ = miner.wait();
}

/// `cgroup`'s path relative to the cgroup2 mount.
fn cgroup_path(cgroup: &TestCgroup) -> String {
    format!("/{}", cgroup.path.file_name().unwrap().to_str().unwrap())
}

/// The agent's metrics page.
fn metrics_body(port: u16) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply.split_once("\r\n\r\n").unwrap().1.to_owned()
}

#[test]
fn a_process_with_a_cuda_context_is_never_frozen_the_next_rung_applies() {
    if !require_root() {
        return;
    }
    let libs = assay_tests::fake_cuda_dir();
    let dir = TempDir::new("enforce-gpu");
    let cgroup = TestCgroup::new("enforce-gpu");
    let own = cgroup.nested("miner.scope");
    let name = cgroup.path.file_name().unwrap().to_str().unwrap();
    let policy = dir.0.join("policy.toml");
    // A GPU miner is judged suspected or confirmed by its launches alone.
    std::fs::write(
        &policy,
        format!(
            "[[enforce]]\nname = \"no gpu mining\"\nclass = [\"pow-mining\"]\n\
             min_level = \"suspected\"\nactions = [\"freeze\", \"kill\"]\ncgroup = \"/{name}/*\"\n"
        ),
    )
    .unwrap();
    let cuda = libs.join("libcuda.so.1");
    let nvrtc = libs.join("libnvrtc.so.12");
    let mut agent = Agent::start_with(
        &cgroup,
        &[
            "--policy",
            policy.to_str().unwrap(),
            "--enforce",
            "--cuda-library",
            cuda.to_str().unwrap(),
            "--cuda-library",
            nvrtc.to_str().unwrap(),
            "--launch-window-ms",
            "1000",
            "--launch-period-ms",
            "2000",
        ],
    );
    let mut miner = own.spawn(assay_tests::gpu_emulator("miner", 30.0));
    let pid = miner.id();
    let finding = agent
        .wait_for_finding(Duration::from_secs(30), enforced_for(pid))
        .unwrap_or_else(|| panic!("no enforcement record: {:?}", agent.seen));
    let actions = finding["enforcement"]["actions"].as_array().unwrap();
    assert_eq!(
        (&actions[0]["action"], &actions[0]["result"]),
        (&"freeze".into(), &"skipped".into()),
        "{finding}"
    );
    assert!(
        actions[0]["reason"].as_str().unwrap().contains("CUDA"),
        "{finding}"
    );
    assert_eq!(
        (&actions[1]["action"], &actions[1]["result"]),
        (&"kill".into(), &"done".into()),
        "{finding}"
    );
    let _ = miner.wait();
    assert_eq!(events(&own.path, "populated").as_deref(), Some("0"));
    agent.stop_with(libc::SIGTERM);
}
