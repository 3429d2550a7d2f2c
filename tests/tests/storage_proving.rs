#![allow(clippy::print_stderr, reason = "test output")]

//! Storage proving, Chia (issue 19, docs/grey-zone.md): two real full
//! nodes of chia-blockchain 2.7.5, each with its own `CHIA_ROOT`,
//! `CHIA_KEYS_ROOT` and free ports, offline (no UPnP, no DNS introducers,
//! the introducer a loopback port where nothing listens), the second told
//! to peer with the first over loopback. Their link is a WebSocket in
//! TLS 1.3 with client certificates: both are `storage-proving` with Chia
//! named, from the link's shape and the proof-of-space and consensus
//! modules their processes map (by what those export). The second runs
//! from a copy of the interpreter under another name. Beside them: an
//! HTTPS client with a client certificate making a plain REST call (the
//! same TLS shape, no Chia code), the server it calls, and a process that
//! has Chia's modules loaded but makes an ordinary HTTPS call (ALPN
//! offered): none of them gets any of the grey-zone classes, and nothing
//! is `pow-mining`.
//!
//! The Chia venv (about 250 MB) is installed by `cargo xtask test`, which
//! sets `ASSAY_TEST_CHIA_VENV`; a run of this suite without it (plain
//! `cargo test`) skips it and says so.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use assay_tests::{
    Agent, Killed, TempDir, TestCgroup, evidence_kinds, explains, finding_pid, free_port, is_for,
    require_root, self_signed_cert,
};

/// Two nodes start, find each other and shake hands in well under this.
const WAIT: Duration = Duration::from_secs(120);

/// The Chia venv `cargo xtask test` made; None (a skip) without.
fn chia_venv() -> Option<PathBuf> {
    let Some(venv) = std::env::var_os("ASSAY_TEST_CHIA_VENV").map(PathBuf::from) else {
        eprintln!("skipping: ASSAY_TEST_CHIA_VENV unset (`cargo xtask test` sets it)");
        return None;
    };
    assert!(
        venv.join("bin/chia_full_node").exists(),
        "{} has no chia_full_node",
        venv.display()
    );
    Some(venv)
}

fn python_says(venv: &Path, expression: &str) -> String {
    let out = Command::new(venv.join("bin/python"))
        .args(["-c", &format!("import sys, os, site; print({expression})")])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A Chia root: `chia init`, then the test's ports (free ones), offline;
/// `peer`: the port of the node to connect to.
fn chia_root(venv: &Path, base: &Path, name: &str, peer: Option<u16>) -> (PathBuf, PathBuf, u16) {
    let (root, keys) = (base.join(name), base.join(format!("{name}-keys")));
    let path = format!(
        "{}:{}",
        venv.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let status = Command::new(venv.join("bin/chia"))
        .arg("init")
        .env("CHIA_ROOT", &root)
        .env("CHIA_KEYS_ROOT", &keys)
        .env("PATH", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "chia init failed");
    let port = free_port();
    let mut configure = Command::new(venv.join("bin/python"));
    configure
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/chia_config.py"))
        .arg(&root);
    for p in [port, free_port(), free_port(), free_port()] {
        configure.arg(p.to_string());
    }
    if let Some(peer) = peer {
        configure.arg(peer.to_string());
    }
    assert!(
        configure.status().unwrap().success(),
        "chia_config.py failed"
    );
    (root, keys, port)
}

/// A full node of `root` run by `program` (with `args`).
fn node(venv: &Path, program: &Path, args: &[&str], root: &Path, keys: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("CHIA_ROOT", root)
        .env("CHIA_KEYS_ROOT", keys)
        .env(
            "PATH",
            format!(
                "{}:{}",
                venv.join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// The REST client fixture with `python`: `alpn` and `modules` as it takes them.
fn rest_client(
    python: &Path,
    port: u16,
    cert: &Path,
    key: &Path,
    alpn: &str,
    modules: &str,
) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls_rest_client.py"))
        .arg(port.to_string())
        .args([cert, key])
        .args([alpn, modules, "4"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

fn run(cgroup: &TestCgroup, cmd: Command, what: &str) -> u32 {
    let mut child = cgroup.spawn(cmd);
    let pid = child.id();
    let status = child.wait().unwrap();
    assert!(status.success(), "{what} failed: {status}");
    pid
}

const GREY_ZONE: [&str; 5] = [
    "storage-proving",
    "chain-node",
    "pos-validator",
    "chain-client",
    "pow-mining",
];

#[test]
fn two_chia_nodes_peering_are_storage_proving_and_their_neighbours_are_not() {
    if !require_root() {
        return;
    }
    let Some(venv) = chia_venv() else {
        return;
    };
    let dir = TempDir::new("chia");
    let cgroup = TestCgroup::new("storage-proving");
    let mut agent = Agent::start(&cgroup);

    // The neighbours first: a REST server that requires client
    // certificates, and its clients.
    let server_dir = dir.0.join("server");
    let client_dir = dir.0.join("client");
    std::fs::create_dir_all(&server_dir).unwrap();
    std::fs::create_dir_all(&client_dir).unwrap();
    let (server_cert, server_key) = self_signed_cert(&server_dir, "localhost");
    let (client_cert, client_key) = self_signed_cert(&client_dir, "client");
    let rest_port = free_port();
    let mut s_server = Command::new("openssl");
    s_server
        .args(["s_server", "-quiet", "-www", "-tls1_3", "-Verify", "1"])
        .args(["-accept", &format!("127.0.0.1:{rest_port}")])
        .arg("-cert")
        .arg(&server_cert)
        .arg("-key")
        .arg(&server_key)
        .arg("-CAfile")
        .arg(&client_cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let s_server = Killed(cgroup.spawn(s_server));
    let server_pid = s_server.0.id();
    let python = venv.join("bin/python");
    // The same TLS shape as Chia's link (TLS 1.3, a client certificate, no
    // ALPN), from a python with common native modules loaded.
    let plain = run(
        &cgroup,
        rest_client(
            &python,
            rest_port,
            &client_cert,
            &client_key,
            "-",
            "yaml,_cffi_backend,cryptography.hazmat.bindings._rust",
        ),
        "the REST client with a client certificate",
    );
    // Chia's modules loaded, an ordinary HTTPS call (ALPN offered).
    let chia_code = run(
        &cgroup,
        rest_client(
            &python,
            rest_port,
            &client_cert,
            &client_key,
            "http/1.1",
            "chiapos,chia_rs,chiavdf",
        ),
        "the HTTPS client with Chia's modules loaded",
    );

    // The nodes: the first as installed, the second from a copy of the
    // interpreter under another name, told to peer with the first.
    let (root_a, keys_a, port_a) = chia_root(&venv, &dir.0, "a", None);
    let (root_b, keys_b, _) = chia_root(&venv, &dir.0, "b", Some(port_a));
    let renamed = dir.0.join("storaged");
    std::fs::copy(
        python_says(&venv, "os.path.realpath(sys.executable)"),
        &renamed,
    )
    .unwrap();
    let node_a = Killed(cgroup.spawn(node(
        &venv,
        &venv.join("bin/chia_full_node"),
        &[],
        &root_a,
        &keys_a,
    )));
    let mut b = node(
        &venv,
        &renamed,
        &[
            "-c",
            // Without setproctitle (chia/util/setproctitle.py goes on
            // without it), so the node does not name itself back.
            "import sys; sys.modules['setproctitle'] = None; \
             from chia.full_node.start_full_node import main; sys.exit(main())",
        ],
        &root_b,
        &keys_b,
    );
    b.env("PYTHONHOME", python_says(&venv, "sys.base_prefix"))
        .env(
            "PYTHONPATH",
            python_says(&venv, "site.getsitepackages()[0]"),
        );
    let node_b = Killed(cgroup.spawn(b));
    let renamed_pid = node_b.0.id();

    for (pid, side) in [
        (node_b.0.id(), "the renamed node that connected"),
        (node_a.0.id(), "the node that accepted"),
    ] {
        let finding = agent
            .wait_for_finding(WAIT, |f| is_for(pid)(f) && f["class"] == "storage-proving")
            .unwrap_or_else(|| panic!("no storage-proving finding for {side}"));
        assert_eq!(finding["network"]["network"], "chia", "{finding}");
        assert!(
            evidence_kinds(&finding)
                .iter()
                .all(|k| k == "net.storage_proving"),
            "{finding}"
        );
        assert!(
            explains(&finding, &["PyInit_chiapos", "PyInit_chia_rs", "Chia"]),
            "{finding}"
        );
        assert!(
            matches!(finding["level"].as_str(), Some("suspected" | "confirmed")),
            "{finding}"
        );
        if pid == renamed_pid {
            assert_eq!(finding["process"]["comm"], "storaged", "{finding}");
        }
    }

    drop(node_b);
    drop(node_a);
    drop(s_server);
    let _ = agent.stop_with(libc::SIGTERM);
    // The neighbours' links had the trigger's shape: their processes' maps
    // were read (the plain client, the server; the nodes), and found
    // nothing of Chia's. The client offering ALPN is never looked at.
    let scans = agent.summary_field("native_module_scans");
    assert!(scans >= 4, "only {scans} processes' modules were read");
    let neighbours = [plain, chia_code, server_pid];
    for f in &agent.seen {
        assert_ne!(f["class"], "pow-mining", "a Chia node is not mining: {f}");
        let pid = finding_pid(f).unwrap_or(0) as u32;
        if neighbours.contains(&pid) {
            let class = f["class"].as_str().unwrap_or("");
            assert!(
                !GREY_ZONE.contains(&class),
                "a neighbour was taken for a chain participant: {f}"
            );
        }
    }
}
