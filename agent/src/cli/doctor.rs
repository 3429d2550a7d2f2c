//! `assay doctor`: the attach plan as a table, without attaching anything,
//! then the GPU and what the options name (outputs, policy), each checked
//! for real: the findings file opened for appending, the NATS server and
//! the metrics address tried, the policy parsed and its rules checked for
//! patterns that let more through than meant (warnings, see
//! [`crate::correlate::policy::warnings`]).
//!
//! Exit codes: 0 when a sensor can run and every configured output and the
//! policy are fine; 1 when no sensor can run, or the agent would not see
//! the host's process ids; 2 when the probe itself
//! failed (not enough privilege, a bad option); 3 when sensors can run but
//! a configured output or the policy is not usable.

use std::fmt::Write as _;

use crate::{kernel::features::Probe, kernel::loader::Loaded};

fn row(out: &mut String, name: &str, probe: &Probe) {
    let (state, detail) = match probe {
        Probe::Available(d) => ("yes", d),
        Probe::Unavailable(d) => ("no", d),
    };
    let _ = writeln!(out, "  {name:<20} {state:<4} {detail}");
}

/// Renders what the kernel offers and what each sensor would use.
pub fn report(loaded: &Loaded) -> String {
    let mut out = String::new();
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let _ = writeln!(out, "kernel {}", release.trim());
    let _ = writeln!(out, "\nkernel features");
    let f = &loaded.features;
    for (name, probe) in [
        ("BTF", &f.btf),
        ("tp_btf", &loaded.tp_btf),
        ("raw tracepoints", &f.raw_tracepoint),
        ("tracefs", &f.tracefs),
        ("kprobes", &f.kprobe),
        ("fentry/fexit", &loaded.fentry),
        ("LSM programs", &loaded.lsm),
        ("uprobes", &f.uprobe),
        ("cgroup v2", &f.cgroup2),
        ("perf software", &f.perf_software),
        ("perf hardware", &f.perf_hardware),
    ] {
        row(&mut out, name, probe);
    }
    row(
        &mut out,
        "host pid namespace",
        &crate::kernel::pid_namespace::check(),
    );
    let (kill, freezer) = enforcement_support();
    row(&mut out, "cgroup.kill", &kill);
    row(&mut out, "cgroup freezer", &freezer);
    row(&mut out, "deny-egress", &deny_egress_support(loaded));
    let _ = writeln!(out, "\nsensors");
    for s in &loaded.sensors {
        row(&mut out, s.sensor, &s.state);
    }
    let verdict = if !crate::kernel::pid_namespace::check().is_available() {
        "assay cannot run here: it does not see the host's process ids (see above)"
    } else if loaded.anything_useful() {
        "assay can run here"
    } else {
        "no sensor can run here"
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}

/// Whether deny-egress can work here: the connect/sendmsg programs that
/// read its map attach (the flow sensor), and the kernel closes flows
/// already open on request (sock_diag `SOCK_DESTROY`).
fn deny_egress_support(loaded: &crate::kernel::loader::Loaded) -> Probe {
    let flows = loaded.sensors.iter().find(|s| s.sensor == "flows");
    match flows.map(|s| &s.state) {
        Some(Probe::Available(_)) => {}
        Some(Probe::Unavailable(why)) => {
            return Probe::Unavailable(format!(
                "the connect/sendmsg programs do not attach ({why}): the next rung applies"
            ));
        }
        None => return Probe::Unavailable("no flow sensor".into()),
    }
    match crate::enforce::destroy::supported() {
        Ok(()) => Probe::Available(
            "connects to a verdict's endpoints refused by map; open flows closed (SOCK_DESTROY)"
                .into(),
        ),
        Err(why) => Probe::Unavailable(format!("{why}: the rung fails and the next applies")),
    }
}

/// What enforcement can use here: `cgroup.kill` (Linux 5.14; without it
/// a kill signals each process) and the v2 freezer (Linux 5.2), looked for
/// in the agent's own cgroup (the root cgroup has neither file).
fn enforcement_support() -> (Probe, Probe) {
    let Ok(root) = crate::kernel::cgroup::cgroup2_mount() else {
        let none = || Probe::Unavailable("cgroup v2 is not mounted".into());
        return (none(), none());
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        })
        .unwrap_or_default();
    // The root cgroup has neither file: where the agent runs there, any
    // cgroup one level down tells.
    let dir = if own.trim_matches('/').is_empty() {
        let child = std::fs::read_dir(&root)
            .ok()
            .and_then(|entries| entries.flatten().map(|e| e.path()).find(|p| p.is_dir()));
        match child {
            Some(child) => child,
            None => return by_kernel_version(),
        }
    } else {
        crate::enforce::actions::dir(&root, &own)
    };
    let (kill, freeze) = crate::enforce::actions::kernel_allows(&dir);
    let probe = |ok: bool, yes: &str, no: &str| {
        if ok {
            Probe::Available(yes.into())
        } else {
            Probe::Unavailable(no.into())
        }
    };
    (
        probe(
            kill,
            "enforcement kills a workload's cgroup at once",
            "Linux < 5.14: a kill signals each process instead",
        ),
        probe(
            freeze,
            "enforcement can freeze a workload's cgroup",
            "no cgroup.freeze (Linux < 5.2): a freeze rung is tried and fails, the next applies",
        ),
    )
}

/// With no cgroup to look in: what the running kernel's version offers.
fn by_kernel_version() -> (Probe, Probe) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut numbers = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    let probe = |since: (u32, u32)| {
        let what = format!(
            "Linux {}.{} (no cgroup below the root to look in; by version)",
            version.0, version.1
        );
        if version >= since {
            Probe::Available(what)
        } else {
            Probe::Unavailable(what)
        }
    };
    (probe((5, 14)), probe((5, 2)))
}

/// The catalogue in use: where from, and what it holds.
pub fn report_catalogue(catalogue: &assay_classify::catalogue::Catalogue, out: &mut String) {
    let (pools, magics, networks) = catalogue.counts();
    let _ = writeln!(
        out,
        "\ncatalogue (format version {})",
        assay_classify::catalogue::VERSION
    );
    let added = match catalogue.added {
        (0, 0, 0) => String::new(),
        (p, m, n) => {
            format!(", of which the file added {p} pool domains, {m} magics, {n} network ids")
        }
    };
    let _ = writeln!(
        out,
        "  {:<20} {:<4} {pools} pool domains, {magics} Bitcoin-family magics, {networks} CryptoNote network ids{added}",
        catalogue.source, "yes"
    );
}

/// What the options configure, checked.
#[derive(Debug, Default)]
pub struct Configured<'a> {
    pub output_file: Option<&'a std::path::Path>,
    pub nats: Option<&'a str>,
    pub metrics: Option<std::net::SocketAddr>,
    pub policy: Option<&'a std::path::Path>,
}

/// The GPU, outputs and policy as rows; true when all configured ones are
/// usable.
pub fn report_configured(configured: &Configured<'_>, out: &mut String) -> bool {
    let _ = writeln!(out, "\ngpu and outputs");
    let gpu = match crate::sensors::gpu::nvml::NvmlSource::open() {
        Ok(nvml) => Probe::Available(format!("NVML, {} GPU(s)", nvml.devices())),
        Err(why) => Probe::Unavailable(why.to_string()),
    };
    row(out, "gpu telemetry", &gpu);
    let mut all_fine = true;
    let mut check = |out: &mut String, name: &str, probe: Probe| {
        all_fine &= probe.is_available();
        row(out, name, &probe);
    };
    if let Some(path) = configured.output_file {
        let probe = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            Ok(_) => Probe::Available(format!("{} writable", path.display())),
            Err(err) => Probe::Unavailable(format!("{}: {err}", path.display())),
        };
        check(out, "findings file", probe);
    }
    if let Some(url) = configured.nats {
        check(out, "nats", reachable(url));
    }
    if let Some(addr) = configured.metrics {
        let probe = match std::net::TcpListener::bind(addr) {
            Ok(_) => Probe::Available(format!("http://{addr}/metrics can listen")),
            Err(err) => Probe::Unavailable(format!("{addr}: {err}")),
        };
        check(out, "metrics", probe);
    }
    if let Some(path) = configured.policy {
        let (probe, warnings) = match crate::correlate::policy::Policy::load(path) {
            Ok(policy) => (
                Probe::Available(format!(
                    "{}: {} rules, {} enforce rules",
                    path.display(),
                    policy.rules().len(),
                    policy.enforce_rules().len()
                )),
                crate::correlate::policy::warnings(&policy),
            ),
            Err(err) => (Probe::Unavailable(err.to_string()), Vec::new()),
        };
        check(out, "policy", probe);
        policy_warnings(out, &warnings);
    }
    all_fine
}

/// Rules that likely match more than their author meant: said, not
/// failed on (the exit code stays 0), since a fleet's shared policy may be
/// fine on the hosts it was written for.
fn policy_warnings(out: &mut String, warnings: &[String]) {
    for warning in warnings {
        let _ = writeln!(out, "  {:<20} warning: {warning}", "");
    }
}

/// Whether a NATS server answers at `url` (nats://host:port): its INFO
/// line within 2 s.
fn reachable(url: &str) -> Probe {
    use std::{io::Read as _, net::ToSocketAddrs as _};
    let hostport = url
        .split("://")
        .last()
        .unwrap_or(url)
        .rsplit('@')
        .next()
        .unwrap_or(url)
        .to_owned();
    let hostport = if hostport.contains(':') {
        hostport
    } else {
        format!("{hostport}:4222")
    };
    let Some(addr) = hostport.to_socket_addrs().ok().and_then(|mut a| a.next()) else {
        return Probe::Unavailable(format!("{url}: cannot resolve {hostport}"));
    };
    let timeout = std::time::Duration::from_secs(2);
    match std::net::TcpStream::connect_timeout(&addr, timeout) {
        Ok(mut stream) => {
            let _ = stream.set_read_timeout(Some(timeout));
            let mut hello = [0u8; 5];
            match stream.read_exact(&mut hello) {
                Ok(()) if &hello == b"INFO " => Probe::Available(format!("{url} answers")),
                _ => Probe::Unavailable(format!("{url}: not a NATS server")),
            }
        }
        Err(err) => {
            Probe::Unavailable(format!("{url}: {err} (findings would be kept and retried)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_that_lets_too_much_through_is_usable_and_warned_about() {
        let path = std::env::temp_dir().join(format!("assay-doctor-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "[[rule]]\nname = \"lab\"\naction = \"allow\"\nexe = \"*/hashcat\"\n",
        )
        .unwrap();
        let mut out = String::new();
        let fine = report_configured(
            &Configured {
                policy: Some(&path),
                ..Configured::default()
            },
            &mut out,
        );
        let _ = std::fs::remove_file(&path);
        assert!(fine, "{out}");
        assert!(
            out.contains(
                "warning: rule \"lab\": exe = \"*/hashcat\" matches a binary of that name anywhere"
            ),
            "{out}"
        );
    }
}
