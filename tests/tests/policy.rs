#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: a policy file allows one miner (its verdict is counted and,
//! with --log-suppressed, written as `verdict.suppressed` naming the rule)
//! and downgrades another; an allow rule for a directory holds only for
//! binaries that really live there (not through `..`, a symlink or a
//! private mount namespace); a policy file with an error is refused at
//! start with its line, before anything is loaded.

use std::{
    ffi::CString,
    os::unix::process::CommandExt as _,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{
    Agent, Server, TempDir, TestCgroup, agent_binary, emulator_path, finding_pid, require_root,
};

fn miner(cgroup: &TestCgroup, exe: &Path, pool: &Server) -> std::process::Child {
    cgroup.spawn(miner_command(exe, pool))
}

fn miner_command(exe: &Path, pool: &Server) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "1500"])
        .stdout(Stdio::null());
    cmd
}

fn c_path(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// `cmd` run in a private mount namespace where `over` shows `from`'s
/// files: a container's view, whose paths the kernel writes from its own
/// root.
fn in_mount_namespace(cmd: &mut Command, from: &Path, over: &Path) {
    let (from, over, root) = (c_path(from), c_path(over), c_path(Path::new("/")));
    // SAFETY: between fork and exec, only raw system calls (unshare,
    // mount) on strings prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let (null, no_data) = (std::ptr::null(), std::ptr::null());
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    null,
                    root.as_ptr(),
                    null,
                    libc::MS_REC | libc::MS_PRIVATE,
                    no_data,
                ) != 0
                || libc::mount(from.as_ptr(), over.as_ptr(), null, libc::MS_BIND, no_data) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
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
exe = "{}/lab-*"
max_level = "observed"
"#,
            allowed.display(),
            dir.0.display()
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
fn an_allowed_directory_allows_only_binaries_that_really_live_there() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("policy-paths");
    let allowed_dir = dir.0.join("allowed");
    let outside = dir.0.join("outside");
    std::fs::create_dir_all(&allowed_dir).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let allowed = allowed_dir.join("bench");
    std::fs::copy(emulator_path(), &allowed).unwrap();
    let stray = outside.join("bench");
    std::fs::copy(emulator_path(), &stray).unwrap();
    let link = allowed_dir.join("linked");
    std::os::unix::fs::symlink(&stray, &link).unwrap();
    let policy = dir.0.join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[rule]]\nname = \"bench dir\"\naction = \"allow\"\nclass = [\"pow-mining\"]\n\
             exe = \"{}/*\"\n",
            allowed_dir.display()
        ),
    )
    .unwrap();
    let cgroup = TestCgroup::new("policy-paths");
    let pool = Server::start("pool");
    let mut agent = Agent::start_with(
        &cgroup,
        &["--policy", policy.to_str().unwrap(), "--log-suppressed"],
    );

    // The control: the binary is in the allowed directory.
    let mut control = miner(&cgroup, &allowed, &pool);
    let control_pid = u64::from(control.id());
    let line = agent
        .wait_for_finding(Duration::from_secs(10), |f| {
            finding_pid(f) == Some(control_pid)
        })
        .unwrap_or_else(|| panic!("no line for the allowed miner: {:?}", agent.seen));
    assert_eq!(line["event"], "verdict.suppressed", "{line}");
    assert_eq!(line["policy_rule"], "bench dir", "{line}");
    let _ = control.wait();

    // Each of these reads as a path in the allowed directory, and is not.
    let dotted = allowed_dir.join("..").join("outside").join("bench");
    let mut in_namespace = miner_command(&allowed, &pool);
    in_mount_namespace(&mut in_namespace, &outside, &allowed_dir);
    let tricks = [
        (
            "`..` out of the allowed directory",
            miner_command(&dotted, &pool),
        ),
        (
            "a symlink in the allowed directory",
            miner_command(&link, &pool),
        ),
        ("a private mount namespace", in_namespace),
    ];
    let mut tricked = Vec::new();
    for (how, cmd) in tricks {
        let mut child = cgroup.spawn(cmd);
        let pid = u64::from(child.id());
        let finding = agent
            .wait_for_finding(Duration::from_secs(10), |f| {
                finding_pid(f) == Some(pid) && f["event"] != "verdict.suppressed"
            })
            .unwrap_or_else(|| panic!("{how}: no finding: {:?}", agent.seen));
        assert_eq!(finding["event"], "verdict.opened", "{how}: {finding}");
        assert_eq!(finding["class"], "pow-mining", "{how}: {finding}");
        assert!(finding["policy_rule"].is_null(), "{how}: {finding}");
        let _ = child.wait();
        tricked.push((how, pid));
    }
    agent.stop_with(libc::SIGTERM);
    for (how, pid) in tricked {
        assert!(
            agent
                .seen
                .iter()
                .filter(|f| finding_pid(f) == Some(pid))
                .all(|f| f["event"] != "verdict.suppressed"),
            "{how}: allowed: {:?}",
            agent.seen
        );
    }
    assert!(
        agent
            .seen
            .iter()
            .filter(|f| finding_pid(f) == Some(control_pid))
            .all(|f| f["event"] == "verdict.suppressed"),
        "the allowed miner was reported: {:?}",
        agent.seen
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
