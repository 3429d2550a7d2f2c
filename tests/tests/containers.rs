#![allow(clippy::print_stderr, reason = "test output")]
//! End to end: evidence names the container a process runs in, from its
//! cgroup (a runtime's scope, as docker and containerd name them), and
//! follows the process when it is moved to another container's cgroup.

use std::process::Stdio;

use assay_tests::{Agent, Server, TestCgroup, emulator, finding_pid, release, require_root};
use serde_json::Value;

const DOCKER_ID: &str = "4f1c6e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4c3b2a19081";
const CONTAINERD_ID: &str = "9b8a7f6e5d4c3b2a190817f6e5d4c3b2a1908f7e6d5c4b3a2918070f6e5d4c3b";

#[test]
fn a_miner_is_attributed_to_its_container_and_re_attributed_when_moved() {
    if !require_root() {
        return;
    }
    let cgroup = TestCgroup::new("containers");
    let docker = cgroup.nested(&format!("docker-{DOCKER_ID}.scope"));
    let containerd = cgroup.nested(&format!("cri-containerd-{CONTAINERD_ID}.scope"));
    let pool = Server::start("pool");
    let mut agent = Agent::start(&cgroup);

    let mut cmd = emulator();
    cmd.args(["stratum", "--variant", "st5", "--connect", &pool.addr])
        .args(["--hold-ms", "200", "--again-on-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut miner = docker.spawn(cmd);
    let pid = u64::from(miner.id());
    let in_container = |id: &'static str| {
        move |f: &Value| finding_pid(f) == Some(pid) && f["workload"]["id"] == id
    };
    let finding = agent
        .wait_for_finding(std::time::Duration::from_secs(10), in_container(DOCKER_ID))
        .expect("no finding naming the docker container");
    assert_eq!(finding["workload"]["kind"], "container", "{finding}");
    assert_eq!(finding["workload"]["runtime"], "docker");
    assert_eq!(finding["class"], "pow-mining");

    // Moved to another container's cgroup, it logs in again.
    containerd.adopt(miner.id());
    release(miner.stdin.as_mut().unwrap());
    let finding = agent
        .wait_for_finding(
            std::time::Duration::from_secs(10),
            in_container(CONTAINERD_ID),
        )
        .expect("no finding naming the containerd container after the move");
    assert_eq!(finding["workload"]["runtime"], "containerd", "{finding}");
    assert_eq!(finding["event"], "verdict.opened");
    assert_eq!(
        finding["process"]["cgroup"],
        format!(
            "/{}/cri-containerd-{CONTAINERD_ID}.scope",
            cgroup.path.file_name().unwrap().to_str().unwrap()
        )
    );
    let _ = miner.wait();
}
