//! deny-egress: the workload's processes may no longer reach the
//! endpoints its verdict's evidence names, and the rest of its traffic is
//! untouched (a training job that also mines keeps training).
//!
//! Which endpoints ([`endpoints`]): the peer of each flow the evidence
//! read as the pool's (stratum, job cadence, work loop, a pool name sent
//! as TLS SNI or seen in a certificate), on its port; and every address a
//! DNS answer gave for a pool name, on any port (the miner may pick
//! another port of the same pool). The resolver that answered is never
//! one of them, nor the peer of a flow the workload served.
//!
//! How: one `DENY` map entry per (cgroup, endpoint) for the workload's
//! own cgroup and the cgroups below it, read by the cgroup sock_addr
//! programs (`assay_common::deny`), which refuse a matching connect or
//! sendmsg with EPERM. Flows already open to those endpoints from those
//! cgroups are closed with sock_diag `SOCK_DESTROY` ([`super::destroy`]),
//! in the agent's network namespace and in the workload's own (a
//! container's);
//! when that fails, the entries are taken back and the rung fails, so
//! that the ladder's next rung applies rather than a half-done deny.
//! Entries are removed when the verdict resolves, the rule goes, or the
//! agent exits (and the map itself goes with the agent's programs).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::{Mutex, OnceLock},
};

use assay_common::{
    deny::{ARMED, DenyKey},
    event::{AF_INET, AF_INET6},
};
use aya::maps::{Array, HashMap as BpfHashMap, MapData};

use crate::{correlate::Verdict, evidence::EvidenceKind};

/// An address, and the port on it (0: any).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.port {
            0 => write!(f, "{} (any port)", self.addr),
            port => write!(f, "{}", SocketAddr::new(self.addr, port)),
        }
    }
}

impl Endpoint {
    /// Whether a socket's peer `remote` is this endpoint.
    pub fn matches(&self, remote: SocketAddr) -> bool {
        canonical(remote.ip()) == canonical(self.addr)
            && (self.port == 0 || self.port == remote.port())
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The endpoints `verdict`'s evidence names as the pool's, sorted, once
/// each.
pub fn endpoints(verdict: &Verdict) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for e in &verdict.evidence {
        let text = |key: &str| e.attributes.get(key).and_then(serde_json::Value::as_str);
        if text("role") == Some("server") {
            continue;
        }
        let peer = || {
            text("remote")
                .and_then(|r| r.parse::<SocketAddr>().ok())
                .filter(|r| r.port() != 0 && !r.ip().is_unspecified())
                .map(|r| Endpoint {
                    addr: canonical(r.ip()),
                    port: r.port(),
                })
        };
        match e.kind {
            EvidenceKind::Stratum
            | EvidenceKind::StratumV2
            | EvidenceKind::JobCadence
            | EvidenceKind::WorkLoop => out.extend(peer()),
            // A DNS flow's peer is the resolver: only its answers count.
            EvidenceKind::PoolName if text("source") == Some("dns") => {
                let answers = e.attributes.get("answers").and_then(|a| a.as_array());
                out.extend(
                    answers
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str()?.parse::<IpAddr>().ok())
                        .filter(|ip| !ip.is_unspecified())
                        .map(|ip| Endpoint {
                            addr: canonical(ip),
                            port: 0,
                        }),
                );
            }
            EvidenceKind::PoolName => out.extend(peer()),
            _ => {}
        }
    }
    out.sort();
    out.dedup();
    // An address denied on any port covers it on each port.
    let any: Vec<IpAddr> = out.iter().filter(|e| e.port == 0).map(|e| e.addr).collect();
    out.retain(|e| e.port == 0 || !any.contains(&e.addr));
    out
}

/// The map keys for `cgroup_id` and `endpoint`: an IPv4 endpoint is
/// listed for connect4 and, v4-mapped, for connect6 (an IPv6 socket can
/// reach an IPv4 peer).
pub fn keys(cgroup_id: u64, endpoint: &Endpoint) -> Vec<DenyKey> {
    match endpoint.addr {
        IpAddr::V4(v4) => vec![
            DenyKey::new(cgroup_id, AF_INET, &v4.octets(), endpoint.port),
            DenyKey::new(
                cgroup_id,
                AF_INET6,
                &v4.to_ipv6_mapped().octets(),
                endpoint.port,
            ),
        ],
        IpAddr::V6(v6) => vec![DenyKey::new(
            cgroup_id,
            AF_INET6,
            &v6.octets(),
            endpoint.port,
        )],
    }
}

/// The kernel's map, and how many denials hold each key (two verdicts may
/// name the same pool for the same cgroup).
struct DenyMap {
    map: BpfHashMap<MapData, DenyKey, u8>,
    armed: Array<MapData, u32>,
    held: HashMap<DenyKey, u32>,
}

/// Set once, when the agent loaded its programs; absent (doctor, a unit
/// test, an object without the map): deny-egress is not available.
static MAP: OnceLock<Mutex<DenyMap>> = OnceLock::new();

/// Takes the `DENY` and `DENY_ARMED` maps from the loaded object.
pub fn install(ebpf: &mut aya::Ebpf) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let map = ebpf.take_map("DENY").context("map DENY missing")?;
    let armed = ebpf
        .take_map("DENY_ARMED")
        .context("map DENY_ARMED missing")?;
    let map = DenyMap {
        map: BpfHashMap::try_from(map)?,
        armed: Array::try_from(armed)?,
        held: HashMap::new(),
    };
    MAP.set(Mutex::new(map))
        .map_err(|_| anyhow::anyhow!("the DENY map was installed twice"))
}

/// Whether this agent can deny (its programs and map are loaded).
pub fn available() -> bool {
    MAP.get().is_some()
}

fn with_map<T>(f: impl FnOnce(&mut DenyMap) -> Result<T, String>) -> Result<T, String> {
    let map = MAP
        .get()
        .ok_or("the deny map is not loaded (the flow programs are not attached)")?;
    let mut map = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut map)
}

impl DenyMap {
    fn add(&mut self, keys: &[DenyKey]) -> Result<(), String> {
        for (i, key) in keys.iter().enumerate() {
            let held = self.held.entry(*key).or_default();
            if *held == 0
                && let Err(err) = self.map.insert(key, 1, 0)
            {
                self.held.remove(key);
                self.remove(&keys[..i]);
                return Err(format!("the kernel's deny map refused an entry: {err}"));
            }
            *held += 1;
        }
        self.arm()
    }

    fn remove(&mut self, keys: &[DenyKey]) {
        for key in keys {
            let Some(held) = self.held.get_mut(key) else {
                continue;
            };
            *held -= 1;
            if *held == 0 {
                self.held.remove(key);
                let _ = self.map.remove(key);
            }
        }
        let _ = self.arm();
    }

    /// The flag the programs read first: set while any entry is held.
    fn arm(&mut self) -> Result<(), String> {
        let flag = if self.held.is_empty() { 0 } else { ARMED };
        self.armed
            .set(0, flag, 0)
            .map_err(|err| format!("cannot set DENY_ARMED: {err}"))
    }
}

/// The cgroup ids of `dir` and of the cgroups below it (at most `limit`),
/// and the processes in them: on cgroup v2 a cgroup's id is its
/// directory's inode number.
fn cgroup_ids(dir: &Path, limit: usize) -> Result<(Vec<u64>, Vec<u32>), String> {
    use std::os::unix::fs::MetadataExt as _;
    let mut ids = Vec::new();
    let mut pids = Vec::new();
    let mut queue = vec![dir.to_owned()];
    while let Some(next) = queue.pop() {
        let meta =
            std::fs::metadata(&next).map_err(|e| format!("cannot stat {}: {e}", next.display()))?;
        ids.push(meta.ino());
        if let Ok(procs) = std::fs::read_to_string(next.join("cgroup.procs")) {
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if ids.len() >= limit {
            break;
        }
        if let Ok(entries) = std::fs::read_dir(&next) {
            queue.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    Ok((ids, pids))
}

/// cgroups below a workload's own denied at most.
const MAX_CGROUPS: usize = 64;

/// Denies `endpoints` to cgroup `dir` (and those below it), then closes
/// the flows already open to them: what was done, and the keys to remove
/// to undo it.
pub fn deny(dir: &Path, endpoints: &[Endpoint]) -> Result<(String, Vec<DenyKey>), String> {
    let (ids, pids) = cgroup_ids(dir, MAX_CGROUPS)?;
    let entries: Vec<DenyKey> = ids
        .iter()
        .flat_map(|&id| endpoints.iter().flat_map(move |e| keys(id, e)))
        .collect();
    with_map(|map| map.add(&entries))?;
    let namespaces = super::destroy::other_namespaces(pids.into_iter());
    match super::destroy::close_flows(&ids, endpoints, &namespaces) {
        Ok(closed) => {
            let list = endpoints
                .iter()
                .map(Endpoint::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            Ok((
                format!(
                    "connects and sends to {list} refused (EPERM); {closed} open flow(s) to them \
                     closed (SOCK_DESTROY)"
                ),
                entries,
            ))
        }
        Err(err) => {
            lift(&entries);
            Err(format!(
                "open flows to the pool could not be closed ({err}): entries taken back"
            ))
        }
    }
}

/// Removes what [`deny`] added.
pub fn lift(keys: &[DenyKey]) {
    let _ = with_map(|map| {
        map.remove(keys);
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use serde_json::json;

    use super::*;
    use crate::{
        correlate::{Class, Level},
        evidence::Evidence,
        tables::workload::Workload,
    };

    fn evidence(kind: EvidenceKind, attributes: serde_json::Value) -> Evidence {
        Evidence::new(
            Workload::Process { tgid: 10 },
            10,
            kind,
            0.9,
            true,
            String::new(),
            attributes.as_object().unwrap().clone(),
            std::time::SystemTime::now(),
        )
    }

    fn verdict(evidence: Vec<Evidence>) -> Verdict {
        Verdict {
            id: "v".into(),
            workload: Workload::Process { tgid: 10 },
            class: Class::PowMining,
            level: Level::Confirmed,
            score: 1.0,
            evidence,
            incentive: None,
        }
    }

    fn ep(addr: &str, port: u16) -> Endpoint {
        Endpoint {
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn pool_peers_and_resolved_pool_addresses_are_denied_never_the_resolver() {
        let v = verdict(vec![
            evidence(
                EvidenceKind::Stratum,
                json!({"role": "client", "remote": "198.51.100.7:3333"}),
            ),
            // The same pool again, through an IPv6 socket, v4-mapped.
            evidence(
                EvidenceKind::JobCadence,
                json!({"role": "client", "remote": "[::ffff:198.51.100.7]:3333"}),
            ),
            evidence(
                EvidenceKind::PoolName,
                json!({"source": "dns", "role": "client", "remote": "192.0.2.53:53",
                       "answers": ["203.0.113.9", "2001:db8::9"]}),
            ),
            evidence(
                EvidenceKind::PoolName,
                json!({"source": "tls_sni", "role": "client", "remote": "203.0.113.10:443"}),
            ),
            evidence(EvidenceKind::CommandLine, json!({"remote": "192.0.2.1:1"})),
        ]);
        assert_eq!(
            endpoints(&v),
            vec![
                ep("198.51.100.7", 3333),
                ep("203.0.113.9", 0),
                ep("203.0.113.10", 443),
                ep("2001:db8::9", 0),
            ]
        );
    }

    #[test]
    fn a_served_peer_or_a_garbled_address_names_no_endpoint() {
        let v = verdict(vec![
            evidence(
                EvidenceKind::Stratum,
                json!({"role": "server", "remote": "198.51.100.7:40000"}),
            ),
            evidence(EvidenceKind::Stratum, json!({"remote": "not an address"})),
            evidence(EvidenceKind::Stratum, json!({"remote": "0.0.0.0:0"})),
            evidence(
                EvidenceKind::PoolName,
                json!({"source": "dns", "answers": [7, "nope"]}),
            ),
            evidence(EvidenceKind::GpuHashing, json!({})),
        ]);
        assert!(endpoints(&v).is_empty());
    }

    #[test]
    fn an_address_denied_on_any_port_covers_its_ports() {
        let v = verdict(vec![
            evidence(EvidenceKind::Stratum, json!({"remote": "203.0.113.9:3333"})),
            evidence(
                EvidenceKind::PoolName,
                json!({"source": "dns", "answers": ["203.0.113.9"]}),
            ),
        ]);
        assert_eq!(endpoints(&v), vec![ep("203.0.113.9", 0)]);
    }

    #[test]
    fn an_ipv4_endpoint_is_keyed_for_both_programs_in_network_order() {
        let k = keys(
            7,
            &Endpoint {
                addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
                port: 3333,
            },
        );
        assert_eq!(k.len(), 2);
        assert_eq!((k[0].family, k[1].family), (AF_INET, AF_INET6));
        // As the kernel's user_ip4 and user_port hold them.
        assert_eq!(k[0].addr[0], u32::from_ne_bytes([127, 0, 0, 1]));
        assert_eq!(k[0].port, 3333u16.to_be());
        assert_eq!(k[1].addr[2], u32::from_ne_bytes([0, 0, 0xff, 0xff]));
        assert!(k.iter().all(|k| k.cgroup_id == 7));
        assert!(ep("127.0.0.1", 3333).matches("[::ffff:127.0.0.1]:3333".parse().unwrap()));
        assert!(ep("127.0.0.1", 0).matches("127.0.0.1:9".parse().unwrap()));
        assert!(!ep("127.0.0.1", 3333).matches("127.0.0.1:3334".parse().unwrap()));
    }
}
