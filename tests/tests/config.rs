//! The configuration file: its options apply (the command line overriding
//! them), and a mistake is refused before anything runs, with its line and
//! the nearest option's name.

use std::process::Command;

use assay_tests::{TempDir, agent_binary, require_root};

#[test]
fn a_config_mistake_is_refused_with_its_line_and_a_suggestion() {
    let dir = TempDir::new("config");
    let path = dir.0.join("assay.toml");
    for (text, expected) in [
        (
            "# assay\nformat = \"ocsf\"\noutput_fil = \"/var/log/a.jsonl\"\n",
            "line 3: unknown option `output_fil`; did you mean `output-file`?",
        ),
        (
            "sample-segments = 99\n",
            "line 1: invalid value '99' for '--sample-segments",
        ),
        ("no-hygiene = \"yes\"\n", "line 1: `no-hygiene` is a flag"),
    ] {
        std::fs::write(&path, text).unwrap();
        let out = Command::new(agent_binary())
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{text:?}: {stderr}");
    }
}

#[test]
fn config_options_apply_and_the_command_line_overrides_them() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("config-ok");
    let path = dir.0.join("assay.toml");
    std::fs::write(&path, "no-hygiene = true\nsample-segments = 6\n").unwrap();
    let out = Command::new(agent_binary())
        .arg("--config")
        .arg(&path)
        .args(["doctor", "--sample-segments", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("turned off (--no-hygiene)"), "{stdout}");
}

#[test]
fn doctor_tries_the_configured_outputs_and_policy() {
    if !require_root() {
        return;
    }
    let dir = TempDir::new("doctor");
    let policy = dir.0.join("policy.toml");
    std::fs::write(&policy, "[[rule]]\naction = \"allow\"\n").unwrap();
    let closed = assay_tests::free_port();
    let out = Command::new(agent_binary())
        .arg("doctor")
        .args(["--nats", &format!("nats://127.0.0.1:{closed}")])
        .arg("--policy")
        .arg(&policy)
        .arg("--output-file")
        .arg(dir.0.join("findings.jsonl"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(row("nats").contains(" no "), "{stdout}");
    assert!(row("policy").contains("matches everything"), "{stdout}");
    assert!(row("findings file").contains(" yes "), "{stdout}");
}
