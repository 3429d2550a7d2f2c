//! The safety rails: what enforcement never touches, and the disarmer
//! that stands it down when it acts more often than a human would expect.
//!
//! A cgroup is acted on only when it is the workload's own: never the
//! root, a slice (user or system: shared by design), `init.scope`, the
//! agent's own cgroup or any of its ancestors (freezing one would freeze
//! the agent), nor anything the `protect` globs name. A process is never
//! signalled when it is pid 1, a kernel thread, or the agent itself.
//! All of these are pure checks on paths and numbers, so that they are
//! tested without a kernel.

use std::collections::VecDeque;

use globset::{GlobBuilder, GlobMatcher};

/// The units protected when the operator names none: the host's remote
/// access and systemd's own.
pub const DEFAULT_PROTECT: [&str; 5] = [
    "/system.slice/ssh.service",
    "/system.slice/sshd.service",
    "/system.slice/systemd-*.service",
    "/system.slice/dbus.service",
    "/init.scope",
];

/// Actions per minute above which enforcement stands down.
pub const DEFAULT_MAX_ACTIONS_PER_MINUTE: u32 = 5;

/// cgroup globs never acted on, and the agent's own place.
#[derive(Debug, Clone)]
pub struct Rails {
    protect: Vec<(String, GlobMatcher)>,
    /// The agent's cgroup, relative to the cgroup2 mount.
    agent_cgroup: Option<String>,
    agent_pid: u32,
}

impl Rails {
    /// `protect`: cgroup globs (`*` within a component, `**` across); each
    /// also protects what lies below what it matches.
    pub fn new(
        protect: &[String],
        agent_cgroup: Option<String>,
        agent_pid: u32,
    ) -> Result<Self, String> {
        let protect = protect
            .iter()
            .map(|text| {
                GlobBuilder::new(text)
                    .literal_separator(true)
                    .build()
                    .map(|g| (text.clone(), g.compile_matcher()))
                    .map_err(|e| format!("--protect {text:?} is not a glob: {}", e.kind()))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self {
            protect,
            agent_cgroup,
            agent_pid,
        })
    }

    /// Why `cgroup` is not one to act on, if it is not.
    pub fn cgroup_refused(&self, cgroup: &str) -> Option<String> {
        let trimmed = cgroup.trim_end_matches('/');
        if trimmed.is_empty() || !cgroup.starts_with('/') {
            return Some(format!("{cgroup:?} is the root cgroup, shared by the host"));
        }
        let leaf = trimmed.rsplit('/').next().unwrap_or_default();
        if leaf.ends_with(".slice") {
            return Some(format!("{trimmed} is a slice, shared by design"));
        }
        if trimmed == "/init.scope" {
            return Some("/init.scope is the host's init".into());
        }
        self.cgroup_protected(trimmed)
    }

    /// Why `cgroup` is protected (the agent's, or a `protect` glob's), if
    /// it is: no process in it is ever signalled either.
    pub fn cgroup_protected(&self, cgroup: &str) -> Option<String> {
        let trimmed = cgroup.trim_end_matches('/');
        if let Some(own) = &self.agent_cgroup {
            let own = own.trim_end_matches('/');
            if own == trimmed || own.starts_with(&format!("{trimmed}/")) {
                return Some(format!("{trimmed} holds the agent itself"));
            }
        }
        // A protected cgroup protects what lies below it: the path and
        // each of its ancestors are checked.
        let mut path = trimmed;
        loop {
            if let Some((text, _)) = self.protect.iter().find(|(_, m)| m.is_match(path)) {
                return Some(format!("{trimmed} is protected ({text})"));
            }
            match path.rfind('/') {
                Some(0) | None => return None,
                Some(cut) => path = &path[..cut],
            }
        }
    }

    /// Why process `pid` (parent `ppid`) is not one to signal, if it is not.
    pub fn process_refused(&self, pid: u32, ppid: u32) -> Option<String> {
        match pid {
            0 | 1 => Some(format!("pid {pid} is init")),
            2 => Some("pid 2 is kthreadd".into()),
            _ if ppid == 2 => Some(format!("pid {pid} is a kernel thread")),
            _ if pid == self.agent_pid => Some(format!("pid {pid} is the agent")),
            _ => None,
        }
    }
}

/// Stands enforcement down, for the rest of the run, when more than
/// `limit` actions come within a minute: a flood of actions is far more
/// likely a bad rule or a fooled detector than a flood of miners, and a
/// human should look before more is done.
#[derive(Debug)]
pub struct Disarmer {
    limit: u32,
    /// When the actions of the last minute were taken (ns, monotonic).
    taken: VecDeque<u64>,
    tripped: bool,
}

const MINUTE_NS: u64 = 60_000_000_000;

impl Disarmer {
    pub fn new(limit: u32) -> Self {
        Self {
            limit,
            taken: VecDeque::new(),
            tripped: false,
        }
    }

    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// Whether an action may be taken at `now_ns`; counts it if so. The
    /// first refusal trips the disarmer for good (`Err(true)` that once,
    /// `Err(false)` after).
    pub fn take(&mut self, now_ns: u64) -> Result<(), bool> {
        if self.tripped {
            return Err(false);
        }
        while self
            .taken
            .front()
            .is_some_and(|t| now_ns.saturating_sub(*t) >= MINUTE_NS)
        {
            self.taken.pop_front();
        }
        if self.taken.len() >= self.limit as usize {
            self.tripped = true;
            return Err(true);
        }
        self.taken.push_back(now_ns);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rails() -> Rails {
        let protect: Vec<String> = DEFAULT_PROTECT.iter().map(|s| (*s).to_owned()).collect();
        Rails::new(
            &[protect, vec!["/kubepods/**/pod-infra*".into()]].concat(),
            Some("/system.slice/assay.service".into()),
            4242,
        )
        .unwrap()
    }

    #[test]
    fn shared_cgroups_are_never_acted_on() {
        let r = rails();
        for shared in [
            "/",
            "",
            "/user.slice",
            "/user.slice/user-1000.slice",
            "/system.slice",
            "/init.scope",
        ] {
            assert!(r.cgroup_refused(shared).is_some(), "{shared}");
        }
    }

    #[test]
    fn the_agent_its_ancestors_and_protected_units_are_never_acted_on() {
        let r = rails();
        assert!(
            r.cgroup_refused("/system.slice/assay.service")
                .unwrap()
                .contains("agent")
        );
        for protected in [
            "/system.slice/ssh.service",
            "/system.slice/systemd-journald.service",
            // Below a protected unit is protected too.
            "/system.slice/sshd.service/session",
            "/kubepods/burstable/podx/pod-infra-1",
        ] {
            assert!(
                r.cgroup_refused(protected).unwrap().contains("protected"),
                "{protected}"
            );
        }
        // A look-alike name outside the protected path is not protected.
        for own in [
            "/system.slice/miner.service",
            "/user.slice/user-1000.slice/session-4.scope",
            "/system.slice/not-ssh.service",
            "/kubepods/burstable/podx/abc",
            "/assay-test-x/miner.scope",
        ] {
            assert_eq!(r.cgroup_refused(own), None, "{own}");
        }
    }

    #[test]
    fn init_kernel_threads_and_the_agent_are_never_signalled() {
        let r = rails();
        assert!(r.process_refused(1, 0).is_some());
        assert!(r.process_refused(2, 0).is_some());
        assert!(r.process_refused(77, 2).unwrap().contains("kernel thread"));
        assert!(r.process_refused(4242, 1).unwrap().contains("agent"));
        assert_eq!(r.process_refused(5000, 4000), None);
    }

    #[test]
    fn a_bad_protect_glob_is_refused() {
        assert!(Rails::new(&["/a/[".into()], None, 1).is_err());
    }

    #[test]
    fn the_sixth_action_in_a_minute_trips_the_disarmer_for_good() {
        let mut d = Disarmer::new(5);
        let s = 1_000_000_000;
        for i in 0..5 {
            assert_eq!(d.take(i * s), Ok(()));
        }
        assert_eq!(d.take(10 * s), Err(true));
        assert!(d.tripped());
        // Even long after, it stays down until a human restarts the agent.
        assert_eq!(d.take(3600 * s), Err(false));
    }

    #[test]
    fn actions_spread_over_minutes_do_not_trip_it() {
        let mut d = Disarmer::new(5);
        for i in 0..50 {
            assert_eq!(d.take(i * 15_000_000_000), Ok(()), "action {i}");
        }
        assert!(!d.tripped());
    }
}
