#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: `[[enforce]]` rules on real processes in cgroups of their
//! own. A confirmed miner is frozen (the kernel says `frozen 1`) with
//! --enforce and thawed when the agent exits; a kill rule leaves its
//! cgroup empty; a dry run leaves it running and records what it would
//! have done; the sixth action in a minute is not taken and enforcement
//! says it is disarmed (log and metrics); a GPU miner is never frozen; a protected cgroup is never acted on; a benign
//! look-alike on the same kind of connection gets no action; records
//! validate against the schema in OCSF, with a disposition. deny-egress:
//! the miner's open pool flow is closed and its reconnect refused with
//! EPERM while its fallback, and another cgroup's connect to the same
//! pool, go through; lifted when its verdict resolves; a dry run leaves
//! the flow up. A frozen cgroup is thawed when its verdict resolves, and
//! by the next start after an agent was SIGKILLed (--state-dir); throttle
//! sets and restores cpu.max where the cpu controller is on cgroup v2.

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

/// What most tests start from, unless not root: a temporary directory
/// and a test cgroup both named `name`, the miner's own `miner.scope`
/// below that cgroup, a pool, and the path of a policy of `actions` on the
/// cgroup, written in the directory. Bound in this order, they are
/// dropped the other way round: the nested cgroup before its parent.
struct Setup(TempDir, TestCgroup, TestCgroup, Server, String);

impl Setup {
    fn new(name: &str, actions: &str) -> Option<Self> {
        if !require_root() {
            return None;
        }
        let dir = TempDir::new(name);
        let cgroup = TestCgroup::new(name);
        let own = cgroup.nested("miner.scope");
        let pool = Server::start("pool");
        let policy = policy(&dir, &cgroup, actions);
        Some(Self(dir, cgroup, own, pool, policy))
    }
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

/// The agent's record of what enforcement did (or would do) about the
/// miner `pid`; the test fails, saying it saw no `what` record, without.
fn record(agent: &mut Agent, pid: u32, what: &str) -> Value {
    agent
        .wait_for_finding(WAIT, enforced_for(pid))
        .unwrap_or_else(|| panic!("no {what} record: {:?}", agent.seen))
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
    let Some(Setup(_dir, cgroup, own, pool, policy)) =
        Setup::new("enforce-freeze", "[\"freeze\", \"kill\"]")
    else {
        return;
    };
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    let mut miner = miner(&own, &pool);
    let finding = record(&mut agent, miner.id(), "enforcement");
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
    let Some(Setup(dir, cgroup, own, pool, policy)) = Setup::new("enforce-kill", "[\"kill\"]")
    else {
        return;
    };
    // Enforcement turned on from the config file, as an operator would.
    let config = dir.0.join("assay.toml");
    std::fs::write(&config, format!("enforce = true\npolicy = \"{policy}\"\n")).unwrap();
    let mut agent = Agent::start_with(&cgroup, &["--config", config.to_str().unwrap()]);
    let mut miner = miner(&own, &pool);
    let finding = record(&mut agent, miner.id(), "enforcement");
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
    let finding = record(&mut agent, miner.id(), "enforcement");
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
    let Some(Setup(_dir, cgroup, own, pool, policy)) =
        Setup::new("enforce-dry", "[\"freeze\", \"kill\"]")
    else {
        return;
    };
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy]);
    let mut miner = miner(&own, &pool);
    let finding = record(&mut agent, miner.id(), "dry-run");
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
    let Some(Setup(_dir, cgroup, own, pool, policy)) = Setup::new("enforce-ocsf", "[\"freeze\"]")
    else {
        return;
    };
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
    let finding = record(&mut agent, miner.id(), "enforcement");
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
    let mut agent = Agent::start_on_stand_in_driver(
        &cgroup,
        &["--policy", policy.to_str().unwrap(), "--enforce"],
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

/// Whether a process started in `cgroup` can open a TCP connection to
/// `addr` (bash's /dev/tcp: no test-only client needed): `Err` holds what
/// the kernel said.
fn connects_from(cgroup: &TestCgroup, addr: &str) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["-c", &format!("exec 3<>/dev/tcp/{host}/{port}")])
        .stderr(std::process::Stdio::piped());
    let out = cgroup.spawn(cmd).wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Whether a process in `cgroup` can send to `addr` another way than a
/// TCP connect over IPv4: `udp` (an unconnected sendto: the sendmsg4
/// program) or `tcp6` (a connect through an IPv6 socket to the v4-mapped
/// address: connect6).
fn sends_from(cgroup: &TestCgroup, addr: &str, how: &str) -> Result<(), String> {
    let (host, port) = addr.rsplit_once(':').unwrap();
    let code = "import socket, sys\n\
        host, port, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]\n\
        if how == 'udp':\n\
        \x20   socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', (host, port))\n\
        else:\n\
        \x20   socket.socket(socket.AF_INET6, socket.SOCK_STREAM).connect(('::ffff:' + host, port))\n";
    let mut cmd = std::process::Command::new(assay_tests::test_python());
    cmd.args(["-c", code, host, port, how])
        .stderr(std::process::Stdio::piped());
    let out = cgroup.spawn(cmd).wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Milliseconds between two RFC 3339 timestamps.
fn ms_between(from: &Value, to: &Value) -> i64 {
    let at = |v: &Value| {
        humantime::parse_rfc3339(v.as_str().unwrap())
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    at(to) - at(from)
}

#[test]
fn deny_egress_refuses_the_pool_to_the_miners_cgroup_only_and_lifts_when_the_verdict_resolves() {
    use std::io::{BufRead as _, BufReader};
    let Some(Setup(_dir, cgroup, own, pool, policy)) =
        Setup::new("enforce-deny", "[\"deny-egress\", \"kill\"]")
    else {
        return;
    };
    let other = cgroup.nested("other.scope");
    let fallback = Server::start("server");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "60000", "--submit-every-ms", "200"])
        .args(["--after-drop", &fallback.addr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut miner = own.spawn(cmd);
    let pid = miner.id();
    let (tx, said) = std::sync::mpsc::channel();
    let stdout = miner.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let finding = record(&mut agent, pid, "enforcement");
    let action = first_action(&finding);
    assert_eq!(
        (&action["action"], &action["mode"], &action["result"]),
        (&"deny-egress".into(), &"enforce".into(), &"done".into()),
        "{finding}"
    );
    assert!(
        action["target"].as_str().unwrap().contains(&pool.addr),
        "{finding}"
    );
    let reason = action["reason"].as_str().unwrap();
    assert!(reason.contains("1 open flow(s)"), "{finding}");
    // One rung held: the kill was not needed.
    assert_eq!(
        finding["enforcement"]["actions"].as_array().unwrap().len(),
        1
    );
    // The time from the verdict that asked for it to the action (BENCHMARKS.md).
    if let Some(verdict) = agent.seen.iter().find(|f| {
        assay_tests::is_for(pid)(f)
            && f["level"] == "confirmed"
            && matches!(
                f["event"].as_str(),
                Some("verdict.opened" | "verdict.raised")
            )
    }) {
        eprintln!(
            "verdict-to-action-ms {}",
            ms_between(&verdict["time"], &action["at"])
        );
    }

    // Its open pool flow was closed; it tries the pool again and is
    // refused, and its fallback still answers.
    let mut lines = Vec::new();
    while lines.len() < 4 {
        match said.recv_timeout(WAIT) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("the miner said only {lines:?}"),
        }
    }
    assert_eq!(lines[0], "opened", "{lines:?}");
    assert!(lines[1].starts_with("dropped: "), "{lines:?}");
    assert_eq!(
        lines[2],
        format!("connect {}: errno {}", pool.addr, libc::EPERM),
        "{lines:?}"
    );
    assert_eq!(
        lines[3],
        format!("connect {}: ok", fallback.addr),
        "{lines:?}"
    );
    // Any process of its cgroup is refused the pool; one in another cgroup
    // reaches it, as the miner reaches its fallback.
    let refused = connects_from(&own, &pool.addr).unwrap_err();
    assert!(refused.contains("Operation not permitted"), "{refused}");
    connects_from(&other, &pool.addr).expect("another cgroup reaches the pool");
    connects_from(&own, &fallback.addr).expect("the cgroup reaches other endpoints");
    // The same endpoint by UDP sendto (sendmsg4) and through an IPv6
    // socket (connect6, v4-mapped) is refused too; not from elsewhere.
    for how in ["udp", "tcp6"] {
        let refused = sends_from(&own, &pool.addr, how).unwrap_err();
        assert!(refused.contains("[Errno 1]"), "{how}: {refused}");
        sends_from(&other, &pool.addr, how).unwrap_or_else(|e| panic!("{how}: {e}"));
    }

    // The miner exits: its verdict resolves and the deny is lifted.
    drop(miner.stdin.take());
    assert!(miner.wait().unwrap().success());
    assert!(
        agent
            .wait_for_log("enforcement undone: deny-egress lifted", WAIT)
            .is_some(),
        "{}",
        agent.logs_text()
    );
    connects_from(&own, &pool.addr).expect("the lifted cgroup reaches the pool again");
    let deny_maps = || {
        assay_tests::loaded_map_names()
            .into_iter()
            .filter(|n| n.starts_with("DENY"))
            .collect::<Vec<_>>()
    };
    assert_eq!(deny_maps().len(), 2, "DENY and DENY_ARMED while it runs");
    agent.stop_with(libc::SIGTERM);
    // The deny map goes with the agent (the kernel frees a map once its
    // last holder is gone, after an RCU grace period: waited for, bounded).
    let deadline = std::time::Instant::now() + WAIT;
    while !deny_maps().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        deny_maps(),
        Vec::<String>::new(),
        "the agent left its deny map"
    );
}

fn resolved_for(pid: u32) -> impl Fn(&Value) -> bool {
    move |f| f["event"] == "verdict.resolved" && assay_tests::is_for(pid)(f)
}

#[test]
fn a_frozen_cgroup_is_thawed_when_its_verdict_resolves() {
    let Some(Setup(_dir, cgroup, own, pool, policy)) =
        Setup::new("enforce-resolve", "[\"freeze\"]")
    else {
        return;
    };
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    let mut miner = miner(&own, &pool);
    let pid = miner.id();
    let finding = record(&mut agent, pid, "enforcement");
    assert_eq!(first_action(&finding)["result"], "done", "{finding}");
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("1"));
    // A fatal signal ends a frozen process (cgroup v2 freezer): the
    // verdict's only process is gone, so the verdict resolves.
    miner.kill().unwrap();
    miner.wait().unwrap();
    agent
        .wait_for_finding(WAIT, resolved_for(pid))
        .unwrap_or_else(|| panic!("the verdict did not resolve: {:?}", agent.seen));
    assert!(
        agent
            .wait_for_log("enforcement undone: thawed", WAIT)
            .is_some(),
        "{}",
        agent.logs_text()
    );
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("0"));
    // The cgroup takes new processes that run: it is thawed, not just
    // marked so.
    let mut probe = std::process::Command::new("true");
    probe.stdin(std::process::Stdio::null());
    assert!(own.spawn(probe).wait().unwrap().success());
    agent.stop_with(libc::SIGTERM);
    assert_eq!(events(&own.path, "populated").as_deref(), Some("0"));
}

#[test]
fn a_killed_agent_leaves_a_frozen_cgroup_that_its_next_start_thaws() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-sigkill");
    let state = dir.0.join("state");
    let state_arg = state.to_str().unwrap().to_owned();
    let cgroup = TestCgroup::new("enforce-sigkill");
    let own = cgroup.nested("miner.scope");
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"freeze\"]");
    let mut agent = Agent::start_with(
        &cgroup,
        &["--policy", &policy, "--enforce", "--state-dir", &state_arg],
    );
    let mut miner = miner(&own, &pool);
    let finding = record(&mut agent, miner.id(), "enforcement");
    assert_eq!(first_action(&finding)["result"], "done", "{finding}");
    // No exit path: nothing is undone, but the journal says what is frozen.
    agent.stop_with(libc::SIGKILL);
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("1"));
    let journal = std::fs::read_to_string(state.join("enforcement.json")).unwrap();
    assert!(journal.contains("miner.scope"), "{journal}");
    // The next start with the same state directory (enforcing nothing)
    // thaws it before anything else.
    let mut next = Agent::start_with(&cgroup, &["--state-dir", &state_arg]);
    assert!(
        next.logs_text()
            .contains("enforcement undone at start (left by a previous run): thawed"),
        "{}",
        next.logs_text()
    );
    assert_eq!(events(&own.path, "frozen").as_deref(), Some("0"));
    assert_eq!(miner.try_wait().unwrap(), None, "the thawed miner lives on");
    assert!(!state.join("enforcement.json").exists());
    next.stop_with(libc::SIGTERM);
    miner.kill().unwrap();
    miner.wait().unwrap();
}

/// Whether the cpu controller can be enabled for the test cgroups: on a
/// hybrid cgroup layout it is bound to its v1 hierarchy and the v2 root
/// does not offer it.
fn cpu_controller(cgroup: &TestCgroup) -> Result<(), String> {
    let root = cgroup.path.parent().unwrap();
    let offered = std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
    if !offered.split_whitespace().any(|c| c == "cpu") {
        return Err(format!(
            "{} does not offer the cpu controller (it is bound to cgroup v1 here: {offered:?})",
            root.display()
        ));
    }
    for dir in [root, cgroup.path.as_path()] {
        std::fs::write(dir.join("cgroup.subtree_control"), "+cpu")
            .map_err(|e| format!("+cpu in {}: {e}", dir.display()))?;
    }
    Ok(())
}

#[test]
fn throttle_sets_cpu_max_on_the_miners_cgroup_and_the_agents_exit_restores_it() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("enforce-throttle");
    let cgroup = TestCgroup::new("enforce-throttle");
    if let Err(why) = cpu_controller(&cgroup) {
        eprintln!("skipped: {why}");
        return;
    }
    let own = cgroup.nested("miner.scope");
    let before = std::fs::read_to_string(own.path.join("cpu.max")).unwrap();
    let pool = Server::start("pool");
    let policy = policy(&dir, &cgroup, "[\"throttle\"]");
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy, "--enforce"]);
    let mut miner = miner(&own, &pool);
    let finding = record(&mut agent, miner.id(), "enforcement");
    let action = first_action(&finding);
    assert_eq!(
        (&action["action"], &action["result"]),
        (&"throttle".into(), &"done".into()),
        "{finding}"
    );
    let throttled = std::fs::read_to_string(own.path.join("cpu.max")).unwrap();
    assert_eq!(throttled.trim(), "10000 100000");
    assert_eq!(miner.try_wait().unwrap(), None, "a throttled miner runs on");
    agent.stop_with(libc::SIGTERM);
    assert_eq!(
        std::fs::read_to_string(own.path.join("cpu.max")).unwrap(),
        before,
        "the agent's exit restores cpu.max"
    );
    miner.kill().unwrap();
    miner.wait().unwrap();
}

#[test]
fn deny_egress_in_a_dry_run_leaves_the_miner_connected_and_records_what_it_would_do() {
    let Some(Setup(_dir, cgroup, own, pool, policy)) =
        Setup::new("enforce-deny-dry", "[\"deny-egress\", \"kill\"]")
    else {
        return;
    };
    let mut agent = Agent::start_with(&cgroup, &["--policy", &policy]);
    let mut miner = miner(&own, &pool);
    let finding = record(&mut agent, miner.id(), "dry-run");
    let action = first_action(&finding);
    assert_eq!(
        (&action["action"], &action["mode"], &action["result"]),
        (&"deny-egress".into(), &"dry-run".into(), &"would-do".into()),
        "{finding}"
    );
    assert!(
        action["target"].as_str().unwrap().contains(&pool.addr),
        "{finding}"
    );
    // Nothing is refused, and the miner's own flow to the pool is still
    // established (the kernel's socket table, as `ss` reads it).
    connects_from(&own, &pool.addr).expect("a dry run refuses nothing");
    let (host, port) = pool.addr.rsplit_once(':').unwrap();
    let ss = std::process::Command::new("ss")
        .args([
            "-Htnp",
            "state",
            "established",
            "dst",
            &format!("{host}:{port}"),
        ])
        .output()
        .unwrap();
    let ss = String::from_utf8_lossy(&ss.stdout);
    assert!(
        ss.contains(&format!("pid={},", miner.id())),
        "the miner's pool flow is gone: {ss:?}"
    );
    assert_eq!(miner.try_wait().unwrap(), None, "a dry run touches nothing");
    agent.stop_with(libc::SIGTERM);
    miner.kill().unwrap();
    miner.wait().unwrap();
}
