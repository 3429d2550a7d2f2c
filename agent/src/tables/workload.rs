//! Workloads: the unit a verdict is about.
//!
//! A container (cgroup of a known runtime, with its Kubernetes pod when
//! there is one), a systemd service, or otherwise the process tree under its
//! session leader. Decided from the cgroup v2 path and the session id, both
//! read from /proc.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    Container {
        runtime: &'static str,
        id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pod_uid: Option<String>,
    },
    Service {
        unit: String,
    },
    /// Processes sharing a session (a login shell and what it started).
    Session {
        sid: u32,
    },
    /// A process whose session could not be read, or that has none of its own.
    Process {
        tgid: u32,
    },
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Container { runtime, id, .. } => write!(f, "container {runtime}://{id}"),
            Self::Service { unit } => write!(f, "service {unit}"),
            Self::Session { sid } => write!(f, "session {sid}"),
            Self::Process { tgid } => write!(f, "process {tgid}"),
        }
    }
}

/// The runtimes the agent names, as static strings (read back from a
/// saved state; another name reads as "container").
const RUNTIMES: [&str; 5] = ["docker", "containerd", "cri-o", "podman", "cri"];

/// [`Workload`] as saved, with an owned runtime name.
#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum SavedWorkload {
    Container {
        runtime: String,
        id: String,
        pod_uid: Option<String>,
    },
    Service {
        unit: String,
    },
    Session {
        sid: u32,
    },
    Process {
        tgid: u32,
    },
}

impl<'de> Deserialize<'de> for Workload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SavedWorkload::deserialize(d).map(Self::from)
    }
}

impl From<SavedWorkload> for Workload {
    fn from(saved: SavedWorkload) -> Self {
        match saved {
            SavedWorkload::Container {
                runtime,
                id,
                pod_uid,
            } => Self::Container {
                runtime: RUNTIMES
                    .iter()
                    .find(|r| **r == runtime)
                    .copied()
                    .unwrap_or("container"),
                id,
                pod_uid,
            },
            SavedWorkload::Service { unit } => Self::Service { unit },
            SavedWorkload::Session { sid } => Self::Session { sid },
            SavedWorkload::Process { tgid } => Self::Process { tgid },
        }
    }
}

/// The container or service a cgroup v2 path belongs to, if any.
pub fn from_cgroup_path(path: &str) -> Option<Workload> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let pod_uid = segments.iter().find_map(|s| pod_uid(s));
    for (i, segment) in segments.iter().enumerate().rev() {
        if let Some((runtime, id)) = container_scope(segment) {
            return Some(Workload::Container {
                runtime,
                id,
                pod_uid,
            });
        }
        // cgroupfs driver layouts: /docker/<id>, /kubepods/burstable/pod<uid>/<id>
        if is_container_id(segment) && i > 0 {
            let parent = segments[i - 1];
            let runtime = match parent {
                "docker" => Some("docker"),
                "libpod_parent" | "machine.slice" => Some("podman"),
                _ if pod_uid.is_some() => Some("cri"),
                _ => None,
            };
            if let Some(runtime) = runtime {
                return Some(Workload::Container {
                    runtime,
                    id: (*segment).to_owned(),
                    pod_uid,
                });
            }
        }
    }
    segments
        .last()
        .filter(|s| s.ends_with(".service"))
        .map(|unit| Workload::Service {
            unit: (*unit).to_owned(),
        })
}

/// `docker-<id>.scope`, `cri-containerd-<id>.scope`, `crio-<id>.scope`, `libpod-<id>.scope`.
fn container_scope(segment: &str) -> Option<(&'static str, String)> {
    let stem = segment.strip_suffix(".scope")?;
    for (prefix, runtime) in [
        ("docker-", "docker"),
        ("cri-containerd-", "containerd"),
        ("crio-", "cri-o"),
        ("libpod-", "podman"),
    ] {
        if let Some(id) = stem.strip_prefix(prefix)
            && is_container_id(id)
        {
            return Some((runtime, id.to_owned()));
        }
    }
    None
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `kubepods-burstable-pod<uid>.slice` (systemd, `_` for `-`) or `pod<uid>`.
fn pod_uid(segment: &str) -> Option<String> {
    let segment = segment.strip_suffix(".slice").unwrap_or(segment);
    let at = segment.rfind("pod")?;
    let uid = &segment[at + 3..];
    let uid = uid.replace('_', "-");
    (uid.len() == 36 && uid.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')).then_some(uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1e2d3c4b5a69788796a5b4c3d2e1f04f1e2d3c4b5a69788796a5b4c3d2e1f0";

    #[test]
    fn container_runtimes_are_recognised_by_their_scopes() {
        for (path, runtime) in [
            (format!("/system.slice/docker-{ID}.scope"), "docker"),
            (
                format!("/system.slice/cri-containerd-{ID}.scope"),
                "containerd",
            ),
            (format!("/machine.slice/libpod-{ID}.scope"), "podman"),
            (format!("/docker/{ID}"), "docker"),
        ] {
            assert_eq!(
                from_cgroup_path(&path),
                Some(Workload::Container {
                    runtime,
                    id: ID.into(),
                    pod_uid: None
                }),
                "{path}"
            );
        }
    }

    #[test]
    fn kubernetes_pods_carry_their_uid() {
        let path = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f6b1c2d_1111_2222_3333_444455556666.slice/crio-{ID}.scope"
        );
        assert_eq!(
            from_cgroup_path(&path),
            Some(Workload::Container {
                runtime: "cri-o",
                id: ID.into(),
                pod_uid: Some("0f6b1c2d-1111-2222-3333-444455556666".into())
            })
        );
        let cgroupfs = format!("/kubepods/burstable/pod0f6b1c2d-1111-2222-3333-444455556666/{ID}");
        assert!(matches!(
            from_cgroup_path(&cgroupfs),
            Some(Workload::Container { runtime: "cri", .. })
        ));
    }

    #[test]
    fn services_and_plain_cgroups() {
        assert_eq!(
            from_cgroup_path("/system.slice/nginx.service"),
            Some(Workload::Service {
                unit: "nginx.service".into()
            })
        );
        assert_eq!(
            from_cgroup_path("/user.slice/user-0.slice/session-3.scope"),
            None
        );
        assert_eq!(from_cgroup_path("/"), None);
        assert_eq!(from_cgroup_path("/system.slice/docker-notanid.scope"), None);
    }
}
