//! Policy: what the operator has allowed. A colocation provider may let
//! one tenant run a Bittensor miner, a lab may run hashing benchmarks; their
//! verdicts should not page anyone, but nothing should vanish silently.
//!
//! A TOML file of rules, checked in order; the first rule whose matchers
//! all match a verdict decides:
//!
//! ```toml
//! [[rule]]
//! name = "tenant-7 may mine"        # shown in the audit line
//! action = "allow"                  # allow | downgrade | ignore
//! class = ["pow-mining"]            # optional, any of
//! container = "4f1c6e2b"            # optional: container id or its prefix
//! pod = "0b7f…"                     # optional: Kubernetes pod UID
//! service = "render-*.service"      # optional: systemd unit, glob
//! cgroup = "/kubepods/*/pod0b7f*/**" # optional: cgroup v2 path, glob
//! exe = "/opt/bench/*"              # optional: executable path, glob
//! user = "alice"                    # optional: user name or uid
//! max_level = "observed"            # downgrade only: the level cap
//! ```
//!
//! - `allow`: the verdict is not reported; it is counted, and written as
//!   a `verdict.suppressed` line when `--log-suppressed` is given.
//! - `downgrade`: reported with its level capped at `max_level`.
//! - `ignore`: as `allow`, but never logged even with `--log-suppressed`
//!   (still counted): for known noise.
//!
//! Rules let things through, so every matcher fails closed: what the agent
//! does not know does not match.
//!
//! `exe` is matched against the file the process really runs, never the
//! path execve was given (`/opt/bench/../../tmp/xmrig`, a symlink in an
//! allowed directory, a relative path): the kernel's resolved path
//! (`/proc/<pid>/exe`, [`ProcessInfo::resolved_exe`]), and that path must
//! name, on the host, the very file the process runs (same device and
//! inode, the last component not a symlink). The second check is there
//! because the kernel writes a path relative to the root of the process's
//! mount namespace: a container's `/opt/bench/xmrig` reads as
//! `/opt/bench/xmrig` from the host. Paths are looked up under
//! `/proc/1/root`, the host's root as its init sees it, so they mean the
//! same with the agent on the host or in a container with the host's PID
//! namespace; where init's root cannot be read (some sandboxes' init
//! refuses it), under the agent's own root, said once at load. No resolved
//! path or inode (the process was gone before its
//! context was read), a deleted or replaced binary, or a file in another
//! mount namespace: the rule does not match and the verdict is reported.
//! Pinning by dev:inode in the file itself was left out: those numbers
//! change with every upgrade, and the check above already ties the rule to
//! the file at the named path.
//!
//! Globs (`exe`, `cgroup`, `service`) are compiled when the policy loads:
//! `*` and `?` never cross `/`, `**` as a whole component spans any
//! depth (inside a component it is a plain `*`), `[ab]` and `{a,b}` as
//! usual. cgroup paths are paths too: a `*`
//! that crossed `/` would let a delegated subtree (a user's systemd
//! session, a container with its own cgroup namespace) create a child
//! whose name completes the pattern. Container images are not known to the
//! agent (it reads cgroups, not runtime metadata), so rules name containers
//! by id. A file that does not parse, names an unknown key or value, holds
//! a bad glob, or a rule with no matcher, is refused at start with its line
//! and the reason.

mod enforce;
mod lint;

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde::Deserialize;
use toml::Spanned;

pub use enforce::{EnforceAction, EnforceRule};
pub use lint::warnings;

use crate::{
    correlate::{Class, Level},
    tables::processes::{ExeInode, ProcessInfo},
    tables::workload::Workload,
};

/// The host's root as its init sees it: where `exe` paths are looked up.
const HOST_ROOT: &str = "/proc/1/root";

/// [`HOST_ROOT`] where it can be read, the agent's own root otherwise.
pub(crate) fn host_root() -> PathBuf {
    match std::fs::metadata(HOST_ROOT) {
        Ok(_) => PathBuf::from(HOST_ROOT),
        Err(err) => {
            tracing::warn!(
                "cannot read {HOST_ROOT} ({err}); exe rules look paths up under the \
                 agent's own root /"
            );
            PathBuf::from("/")
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Downgrade,
    Ignore,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum UserMatcher {
    Uid(u32),
    Name(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Option<String>,
    action: Action,
    #[serde(default)]
    class: Vec<ClassName>,
    container: Option<String>,
    pod: Option<String>,
    service: Option<Spanned<String>>,
    cgroup: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    user: Option<UserMatcher>,
    max_level: Option<LevelName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ClassName {
    PowMining,
    ChainNode,
    PosValidator,
    StorageProving,
    ChainClient,
    ZkProving,
    AiTraining,
    AiInference,
    General,
}

impl ClassName {
    fn class(self) -> Class {
        match self {
            Self::PowMining => Class::PowMining,
            Self::ChainNode => Class::ChainNode,
            Self::PosValidator => Class::PosValidator,
            Self::StorageProving => Class::StorageProving,
            Self::ChainClient => Class::ChainClient,
            Self::ZkProving => Class::ZkProving,
            Self::AiTraining => Class::AiTraining,
            Self::AiInference => Class::AiInference,
            Self::General => Class::General,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LevelName {
    Observed,
    Suspected,
    Confirmed,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
    #[serde(default)]
    enforce: Vec<enforce::EnforceSpec>,
}

/// A glob as written and as compiled.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    matcher: GlobMatcher,
}

impl Pattern {
    /// `*` and `?` stay within one component; `**` spans components.
    fn new(text: &str) -> Result<Self, globset::Error> {
        let glob = GlobBuilder::new(text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()?;
        Ok(Self {
            text: text.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    fn is_match(&self, text: &str) -> bool {
        self.matcher.is_match(text)
    }
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    classes: Vec<Class>,
    container: Option<String>,
    pod: Option<String>,
    service: Option<Pattern>,
    cgroup: Option<Pattern>,
    exe: Option<Pattern>,
    uid: Option<u32>,
    max_level: Option<Level>,
}

/// What the policy says about one verdict.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Report,
    /// Report, with the level capped.
    Downgrade {
        rule: String,
        to: Level,
    },
    /// Do not report; `log` when the suppression may be written out.
    Suppress {
        rule: String,
        log: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<Rule>,
    enforce: Vec<EnforceRule>,
    /// Where `exe` paths are looked up: `/` as parsed, [`host_root`] as
    /// loaded, a directory in tests.
    host_root: PathBuf,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            enforce: Vec::new(),
            host_root: PathBuf::from("/"),
        }
    }
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("policy {path}, line {line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

impl Policy {
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut policy = Self::parse(&text, &path.display().to_string(), &users_from_passwd())?;
        if policy
            .rules
            .iter()
            .chain(policy.enforce.iter().map(|e| &e.matchers))
            .any(|r| r.exe.is_some())
        {
            policy.host_root = host_root();
        }
        Ok(policy)
    }

    /// Parses policy text; `users` maps user names to uids.
    pub fn parse(text: &str, origin: &str, users: &[(String, u32)]) -> Result<Self, PolicyError> {
        let line_of = |offset: usize| line_of(text, offset);
        let invalid = |line: usize, reason: String| PolicyError::Invalid {
            path: origin.to_owned(),
            line,
            reason,
        };
        let file: PolicyFile = parse_toml(text).map_err(|(line, reason)| invalid(line, reason))?;
        // Where each [[rule]] starts, to name the line of a rule-level error.
        let rule_lines = table_lines(text, "[[rule]]");
        let mut rules = Vec::new();
        for (i, spec) in file.rule.into_iter().enumerate() {
            let line = rule_lines.get(i).copied().unwrap_or(1);
            let name = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("rule {}", i + 1));
            rules.push(build_rule(spec, name, line, users, &line_of, &invalid)?);
        }
        let enforce_lines = table_lines(text, "[[enforce]]");
        let mut enforce = Vec::new();
        for (i, spec) in file.enforce.into_iter().enumerate() {
            let line = enforce_lines.get(i).copied().unwrap_or(1);
            let (name, min_level, actions, matchers) = spec.split(line, &invalid)?;
            let rule = build_rule(matchers, name.clone(), line, users, &line_of, &invalid)?;
            enforce.push(EnforceRule {
                name,
                min_level,
                actions,
                matchers: rule,
            });
        }
        Ok(Self {
            rules,
            enforce,
            ..Self::default()
        })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn enforce_rules(&self) -> &[EnforceRule] {
        &self.enforce
    }

    /// The first `[[enforce]]` rule that matches a verdict of `class` at
    /// reported `level` about `workload`, its evidence from `process`.
    pub fn enforcement(
        &self,
        class: Class,
        level: Level,
        workload: &Workload,
        process: Option<&ProcessInfo>,
    ) -> Option<&EnforceRule> {
        self.enforce.iter().find(|e| {
            level >= e.min_level
                && e.matchers
                    .matches(class, workload, process, &self.host_root)
        })
    }

    /// The first matching rule's decision for a verdict of `class` about
    /// `workload`, its evidence coming from `process`.
    pub fn decide(
        &self,
        class: Class,
        level: Level,
        workload: &Workload,
        process: Option<&ProcessInfo>,
    ) -> Decision {
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.matches(class, workload, process, &self.host_root))
        else {
            return Decision::Report;
        };
        match rule.action {
            Action::Allow => Decision::Suppress {
                rule: rule.name.clone(),
                log: true,
            },
            Action::Ignore => Decision::Suppress {
                rule: rule.name.clone(),
                log: false,
            },
            Action::Downgrade => {
                let cap = rule.max_level.unwrap_or(Level::Observed);
                if level <= cap {
                    Decision::Report
                } else {
                    Decision::Downgrade {
                        rule: rule.name.clone(),
                        to: cap,
                    }
                }
            }
        }
    }
}

/// One checked rule from its spec (`name` already given a default, `line`
/// where its table starts).
fn build_rule(
    spec: RuleSpec,
    name: String,
    line: usize,
    users: &[(String, u32)],
    line_of: &dyn Fn(usize) -> usize,
    invalid: &dyn Fn(usize, String) -> PolicyError,
) -> Result<Rule, PolicyError> {
    let has_matcher = !spec.class.is_empty()
        || spec.container.is_some()
        || spec.pod.is_some()
        || spec.service.is_some()
        || spec.cgroup.is_some()
        || spec.exe.is_some()
        || spec.user.is_some();
    if !has_matcher {
        return Err(invalid(
            line,
            format!(
                "{name} matches everything: give at least one of class, container, pod, \
                 service, cgroup, exe, user"
            ),
        ));
    }
    let max_level = spec.max_level.map(|l| match l {
        LevelName::Observed => Level::Observed,
        LevelName::Suspected => Level::Suspected,
        LevelName::Confirmed => Level::Confirmed,
    });
    match (spec.action, max_level) {
        (Action::Downgrade, None) => {
            return Err(invalid(
                line,
                format!("{name}: action \"downgrade\" needs max_level (observed, suspected)"),
            ));
        }
        (Action::Allow | Action::Ignore, Some(_)) => {
            return Err(invalid(
                line,
                format!("{name}: max_level only goes with action \"downgrade\""),
            ));
        }
        _ => {}
    }
    let uid = match &spec.user {
        None => None,
        Some(UserMatcher::Uid(uid)) => Some(*uid),
        Some(UserMatcher::Name(user)) => Some(
            users
                .iter()
                .find(|(n, _)| n == user)
                .map(|(_, uid)| *uid)
                .ok_or_else(|| {
                    invalid(
                        line,
                        format!("{name}: unknown user \"{user}\" (not in /etc/passwd)"),
                    )
                })?,
        ),
    };
    let glob = |field: &str, spanned: Option<Spanned<String>>| {
        spanned
            .map(|s| {
                Pattern::new(s.get_ref()).map_err(|err| {
                    invalid(
                        line_of(s.span().start),
                        format!(
                            "{name}: {field} = \"{}\" is not a glob: {}",
                            s.get_ref(),
                            err.kind()
                        ),
                    )
                })
            })
            .transpose()
    };
    Ok(Rule {
        service: glob("service", spec.service)?,
        cgroup: glob("cgroup", spec.cgroup)?,
        exe: glob("exe", spec.exe)?,
        name,
        action: spec.action,
        classes: spec.class.iter().map(|c| c.class()).collect(),
        container: spec.container,
        pod: spec.pod,
        uid,
        max_level,
    })
}

/// A rule's matchers alone (no class, no action), for another file whose
/// entries name workloads as rules do: the ledger's `[[declare]]`
/// entries. Checked by [`Rule::from_matchers`] exactly as a rule's.
#[derive(Debug, Clone, Default)]
pub struct MatcherSpec {
    pub container: Option<String>,
    pub pod: Option<String>,
    pub service: Option<Spanned<String>>,
    pub cgroup: Option<Spanned<String>>,
    pub exe: Option<Spanned<String>>,
    pub user: Option<UserMatcher>,
}

/// What a rule's matchers look at, whether from a live process or as the
/// ledger recorded it.
#[derive(Clone, Copy)]
struct Seen<'a> {
    container_id: Option<&'a str>,
    pod_uid: Option<&'a str>,
    unit: Option<&'a str>,
    cgroup: Option<&'a str>,
    uid: Option<u32>,
}

impl Rule {
    /// A rule of `matchers` alone, named `name`, from `origin`'s entry at
    /// `line` (`text` is the whole file, for the lines of bad globs).
    pub fn from_matchers(
        matchers: MatcherSpec,
        name: String,
        line: usize,
        text: &str,
        origin: &str,
        users: &[(String, u32)],
    ) -> Result<Self, PolicyError> {
        let line_of = |offset: usize| line_of(text, offset);
        let invalid = |line: usize, reason: String| PolicyError::Invalid {
            path: origin.to_owned(),
            line,
            reason,
        };
        let spec = RuleSpec {
            name: Some(name.clone()),
            action: Action::Allow,
            class: Vec::new(),
            container: matchers.container,
            pod: matchers.pod,
            service: matchers.service,
            cgroup: matchers.cgroup,
            exe: matchers.exe,
            user: matchers.user,
            max_level: None,
        };
        build_rule(spec, name, line, users, &line_of, &invalid)
    }

    /// Whether the rule's matchers match a workload as the ledger recorded
    /// it: `exe` is the path the agent checked was the running file (see
    /// [`crate::ledger::Subject::exe`]).
    pub fn matches_recorded(&self, subject: &crate::ledger::Subject) -> bool {
        let seen = Seen {
            container_id: subject.container.as_deref(),
            pod_uid: subject.pod.as_deref(),
            unit: subject.service.as_deref(),
            cgroup: subject.cgroup.as_deref(),
            uid: subject.uid,
        };
        self.classes.is_empty()
            && self.matches_seen(&seen, |pattern| {
                subject.exe.as_deref().is_some_and(|e| pattern.is_match(e))
            })
    }

    fn matches(
        &self,
        class: Class,
        workload: &Workload,
        process: Option<&ProcessInfo>,
        host_root: &Path,
    ) -> bool {
        if !self.classes.is_empty() && !self.classes.contains(&class) {
            return false;
        }
        let (container_id, pod_uid, unit) = match workload {
            Workload::Container { id, pod_uid, .. } => {
                (Some(id.as_str()), pod_uid.as_deref(), None)
            }
            Workload::Service { unit } => (None, None, Some(unit.as_str())),
            _ => (None, None, None),
        };
        let seen = Seen {
            container_id,
            pod_uid,
            unit,
            cgroup: process.and_then(|p| p.cgroup.as_deref()),
            uid: process.map(|p| p.uid),
        };
        self.matches_seen(&seen, |pattern| {
            process.is_some_and(|p| runs_file_at(p, pattern, host_root))
        })
    }

    /// Every matcher but the class; `exe` last, the only one that may touch
    /// the file system.
    fn matches_seen(&self, seen: &Seen<'_>, exe: impl FnOnce(&Pattern) -> bool) -> bool {
        let Seen {
            container_id,
            pod_uid,
            unit,
            cgroup,
            uid,
        } = *seen;
        if let Some(want) = &self.container
            && !container_id.is_some_and(|id| id.starts_with(want.as_str()))
        {
            return false;
        }
        if let Some(want) = &self.pod
            && pod_uid != Some(want.as_str())
        {
            return false;
        }
        if let Some(pattern) = &self.service
            && !unit.is_some_and(|u| pattern.is_match(u))
        {
            return false;
        }
        if let Some(pattern) = &self.cgroup
            && !cgroup.is_some_and(|c| pattern.is_match(c))
        {
            return false;
        }
        if let Some(want) = self.uid
            && uid != Some(want)
        {
            return false;
        }
        // Last: the only matcher that touches the file system.
        if let Some(pattern) = &self.exe
            && !exe(pattern)
        {
            return false;
        }
        true
    }
}

/// Whether the file at absolute `path` on the host (under `host_root`) is
/// the one a process runs (`running`): what the ledger checks before it
/// records a workload's `exe`, as an `exe` matcher would.
pub fn is_running_file(host_root: &Path, path: &str, running: ExeInode) -> bool {
    host_file(host_root, path) == Some(running)
}

/// Whether `process` runs a file whose resolved path `pattern` matches and
/// which is, on the host, that very file at that path.
fn runs_file_at(process: &ProcessInfo, pattern: &Pattern, host_root: &Path) -> bool {
    let (Some(path), Some(running)) = (process.resolved_exe.as_deref(), process.exe_inode) else {
        return false;
    };
    pattern.is_match(path) && host_file(host_root, path) == Some(running)
}

/// The regular file at absolute `path` under `root`, the last component
/// not followed: a symlink is not the file it points to.
fn host_file(root: &Path, path: &str) -> Option<ExeInode> {
    use std::os::unix::fs::MetadataExt as _;
    let relative = path.strip_prefix('/')?;
    // The kernel writes no `.` or `..`; a path with one is not taken.
    if relative.split('/').any(|c| c == "." || c == "..") {
        return None;
    }
    let meta = std::fs::symlink_metadata(root.join(relative)).ok()?;
    meta.is_file().then(|| ExeInode {
        dev: meta.dev(),
        ino: meta.ino(),
    })
}

/// The line (from 1) that byte `offset` of `text` is on.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// `text` read as TOML into `T`, or the line and reason of what is wrong
/// with it (a syntax error, an unknown key, a value of the wrong type).
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, (usize, String)> {
    toml::from_str(text).map_err(|err| {
        let line = err.span().map(|s| line_of(text, s.start)).unwrap_or(1);
        (line, err.message().trim().to_owned())
    })
}

/// The line (from 1) on which each `header` (such as `[[rule]]`) of
/// `text` stands, in order: where each entry of that array of tables
/// starts, to name the line of an entry-level error.
pub(crate) fn table_lines(text: &str, header: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with(header))
        .map(|(i, _)| i + 1)
        .collect()
}

/// (name, uid) of the local users.
pub(crate) fn users_from_passwd() -> Vec<(String, u32)> {
    std::fs::read_to_string("/etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let uid = fields.nth(1)?.parse().ok()?;
            Some((name.to_owned(), uid))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, symlink};

    use super::*;

    const ID: &str = "4f1c6e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4c3b2a19081";

    fn users() -> Vec<(String, u32)> {
        vec![("alice".into(), 1000)]
    }

    /// A host's root in a temporary directory: root's benchmark binaries
    /// in /opt/bench (one a level down), a miner in /tmp, and in
    /// /opt/bench a symlink to that miner.
    struct Host(PathBuf);

    impl Host {
        fn new(name: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("assay-policy-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            for dir in ["opt/bench/sub", "tmp", "usr/bin"] {
                std::fs::create_dir_all(root.join(dir)).unwrap();
            }
            for file in [
                "opt/bench/hashcat",
                "opt/bench/sub/deep",
                "tmp/xmrig",
                "usr/bin/python3",
                "usr/bin/xmrig",
            ] {
                std::fs::write(root.join(file), file).unwrap();
            }
            symlink("../../tmp/xmrig", root.join("opt/bench/xmrig")).unwrap();
            Self(root)
        }

        fn inode(&self, path: &str) -> ExeInode {
            let meta = std::fs::metadata(self.0.join(path.trim_start_matches('/'))).unwrap();
            ExeInode {
                dev: meta.dev(),
                ino: meta.ino(),
            }
        }

        /// A process execve'd `given` which the kernel resolved to `resolved`.
        fn runs(&self, given: &str, resolved: &str) -> ProcessInfo {
            let mut p = ProcessInfo::for_tests(7);
            p.exe = given.into();
            p.resolved_exe = Some(resolved.into());
            p.exe_inode = Some(self.inode(resolved));
            p.cgroup = Some("/user.slice/user-1000.slice/session-3.scope".into());
            p
        }

        fn policy(&self, text: &str) -> Policy {
            Policy {
                host_root: self.0.clone(),
                ..Policy::parse(text, "test.toml", &users()).unwrap()
            }
        }
    }

    impl Drop for Host {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn container() -> Workload {
        Workload::Container {
            runtime: "containerd",
            id: ID.into(),
            pod_uid: Some("0b7f0c1e-1111-2222-3333-444455556666".into()),
        }
    }

    const SESSION: Workload = Workload::Session { sid: 5 };

    fn allowed(rule: &str) -> Decision {
        Decision::Suppress {
            rule: rule.into(),
            log: true,
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let host = Host::new("first");
        let policy = host.policy(
            r#"
[[rule]]
name = "tenant-7 may run a Bittensor miner"
action = "allow"
class = ["pow-mining", "chain-node"]
container = "4f1c6e2b"

[[rule]]
name = "benchmarks"
action = "downgrade"
exe = "/opt/bench/*"
max_level = "observed"

[[rule]]
action = "ignore"
user = "alice"
class = ["ai-training"]
"#,
        );
        let mut p = host.runs("/opt/bench/hashcat", "/opt/bench/hashcat");
        p.uid = 1000;
        assert_eq!(
            policy.decide(Class::PowMining, Level::Confirmed, &container(), Some(&p)),
            allowed("tenant-7 may run a Bittensor miner")
        );
        assert_eq!(
            policy.decide(Class::PowMining, Level::Confirmed, &SESSION, Some(&p)),
            Decision::Downgrade {
                rule: "benchmarks".into(),
                to: Level::Observed
            }
        );
        // Already at the cap: reported as is.
        assert_eq!(
            policy.decide(Class::PowMining, Level::Observed, &SESSION, Some(&p)),
            Decision::Report
        );
        let mut python = host.runs("/usr/bin/python3", "/usr/bin/python3");
        python.uid = 1000;
        assert_eq!(
            policy.decide(Class::AiTraining, Level::Suspected, &SESSION, Some(&python)),
            Decision::Suppress {
                rule: "rule 3".into(),
                log: false
            }
        );
        // Nothing matches: reported.
        let other = host.runs("/usr/bin/xmrig", "/usr/bin/xmrig");
        assert_eq!(
            policy.decide(Class::PowMining, Level::Confirmed, &SESSION, Some(&other)),
            Decision::Report
        );
    }

    #[test]
    fn a_rule_names_every_class_by_the_name_findings_carry() {
        let host = Host::new("classes");
        for class in Class::ALL {
            let name = class.name();
            let policy = host.policy(&format!(
                "[[rule]]\nname = \"r\"\naction = \"ignore\"\nclass = [\"{name}\"]\nuser = \"alice\"\n"
            ));
            let mut p = host.runs("/usr/bin/python3", "/usr/bin/python3");
            p.uid = 1000;
            for other in Class::ALL {
                let decision = policy.decide(other, Level::Confirmed, &SESSION, Some(&p));
                assert_eq!(
                    decision == Decision::Report,
                    other != class,
                    "rule for {name}, verdict {}",
                    other.name()
                );
            }
        }
    }

    #[test]
    fn exe_is_where_the_kernel_resolved_it_not_what_execve_was_given() {
        let host = Host::new("resolved");
        let policy =
            host.policy("[[rule]]\nname = \"bench\"\naction = \"allow\"\nexe = \"/opt/bench/*\"\n");
        let decide =
            |p: &ProcessInfo| policy.decide(Class::PowMining, Level::Confirmed, &SESSION, Some(p));
        // `..` out of the allowed directory: the kernel resolved /tmp.
        assert_eq!(
            decide(&host.runs("/opt/bench/../../tmp/xmrig", "/tmp/xmrig")),
            Decision::Report
        );
        // A symlink in the allowed directory to a miner outside it.
        assert_eq!(
            decide(&host.runs("/opt/bench/xmrig", "/tmp/xmrig")),
            Decision::Report
        );
        // Lexically outside, really inside: allowed.
        assert_eq!(
            decide(&host.runs("/tmp/../opt/bench/hashcat", "/opt/bench/hashcat")),
            allowed("bench")
        );
        // Relative execve paths: the resolved path decides.
        for given in ["./hashcat", "hashcat", "bench/hashcat"] {
            assert_eq!(
                decide(&host.runs(given, "/opt/bench/hashcat")),
                allowed("bench"),
                "{given}"
            );
        }
        assert_eq!(
            decide(&host.runs("./xmrig", "/tmp/xmrig")),
            Decision::Report
        );
    }

    #[test]
    fn star_stays_in_one_directory_and_double_star_spans_any_depth() {
        let host = Host::new("depth");
        let deep = host.runs("/opt/bench/sub/deep", "/opt/bench/sub/deep");
        for (pattern, decision) in [
            ("/opt/bench/*", Decision::Report),
            ("/opt/*/deep", Decision::Report),
            ("/opt/bench/**", allowed("r")),
            ("/opt/**/deep", allowed("r")),
            ("/opt/bench/*/deep", allowed("r")),
            ("/opt/bench/s?b/d*", allowed("r")),
        ] {
            let policy = host.policy(&format!(
                "[[rule]]\nname = \"r\"\naction = \"allow\"\nexe = \"{pattern}\"\n"
            ));
            assert_eq!(
                policy.decide(Class::PowMining, Level::Confirmed, &SESSION, Some(&deep)),
                decision,
                "{pattern}"
            );
        }
    }

    #[test]
    fn without_a_resolved_path_and_inode_an_exe_rule_does_not_match() {
        let host = Host::new("unknown");
        let policy = host.policy(
            "[[rule]]\naction = \"allow\"\nexe = \"/opt/bench/*\"\n\n\
             [[rule]]\naction = \"downgrade\"\nexe = \"/opt/**\"\nmax_level = \"observed\"\n",
        );
        let mut no_path = host.runs("/opt/bench/hashcat", "/opt/bench/hashcat");
        no_path.resolved_exe = None;
        let mut no_inode = host.runs("/opt/bench/hashcat", "/opt/bench/hashcat");
        no_inode.exe_inode = None;
        for p in [Some(&no_path), Some(&no_inode), None] {
            assert_eq!(
                policy.decide(Class::PowMining, Level::Confirmed, &SESSION, p),
                Decision::Report,
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_resolved_path_naming_another_file_on_the_host_does_not_match() {
        let host = Host::new("other");
        let policy = host.policy("[[rule]]\naction = \"allow\"\nexe = \"/opt/bench/**\"\n");
        let decide =
            |p: &ProcessInfo| policy.decide(Class::PowMining, Level::Confirmed, &SESSION, Some(p));
        // In a container's mount namespace the kernel writes the path from
        // the container's root: its own /opt/bench/hashcat is not the host's.
        let mut contained = host.runs("/opt/bench/hashcat", "/opt/bench/hashcat");
        contained.exe_inode = Some(host.inode("/tmp/xmrig"));
        assert_eq!(decide(&contained), Decision::Report);
        // The host's path is a symlink to the running file: not the file.
        let mut through_link = host.runs("/opt/bench/xmrig", "/tmp/xmrig");
        through_link.resolved_exe = Some("/opt/bench/xmrig".into());
        assert_eq!(decide(&through_link), Decision::Report);
        // Deleted or replaced since it started.
        let mut deleted = host.runs("/opt/bench/hashcat", "/opt/bench/hashcat");
        deleted.resolved_exe = Some("/opt/bench/hashcat (deleted)".into());
        assert_eq!(decide(&deleted), Decision::Report);
        let mut dotted = host.runs("/opt/bench/hashcat", "/opt/bench/hashcat");
        dotted.resolved_exe = Some("/opt/bench/sub/../hashcat".into());
        assert_eq!(decide(&dotted), Decision::Report);
        // The control: the same file at the same path.
        assert_eq!(
            decide(&host.runs("/opt/bench/hashcat", "/opt/bench/hashcat")),
            allowed("rule 1")
        );
    }

    #[test]
    fn cgroup_globs_are_paths() {
        let host = Host::new("cgroup");
        let mut p = host.runs("/usr/bin/xmrig", "/usr/bin/xmrig");
        p.cgroup =
            Some("/user.slice/user-1000.slice/user@1000.service/app.slice/render.scope".into());
        for (pattern, decision) in [
            ("/user.slice/*/render.scope", Decision::Report),
            ("/user.slice/*render.scope", Decision::Report),
            ("/user.slice/**/render.scope", allowed("rule 1")),
            (
                "/user.slice/user-1000.slice/user@1000.service/app.slice/*.scope",
                allowed("rule 1"),
            ),
        ] {
            let policy = host.policy(&format!(
                "[[rule]]\naction = \"allow\"\ncgroup = \"{pattern}\"\n"
            ));
            assert_eq!(
                policy.decide(Class::PowMining, Level::Confirmed, &SESSION, Some(&p)),
                decision,
                "{pattern}"
            );
        }
    }

    #[test]
    fn bad_files_are_refused_with_their_line() {
        let cases = [
            (
                "[[rule]]\naction = \"allow\"\nexe = \"/x\"\ncontainr = \"4f\"\n",
                4,
                "unknown field `containr`",
            ),
            (
                "[[rule]]\naction = \"permit\"\nexe = \"/x\"\n",
                2,
                "unknown variant `permit`",
            ),
            (
                "\n\n[[rule]]\naction = \"allow\"\n",
                3,
                "matches everything",
            ),
            (
                "[[rule]]\naction = \"downgrade\"\nexe = \"/x\"\n",
                1,
                "needs max_level",
            ),
            (
                "[[rule]]\naction = \"allow\"\nuser = \"mallory\"\n",
                1,
                "unknown user",
            ),
            (
                "[[rule]]\naction = \"allow\"\nclass = [\"mining\"]\n",
                3,
                "unknown variant `mining`",
            ),
            ("[[rule]\n", 1, ""),
            (
                "[[rule]]\nname = \"bench\"\naction = \"allow\"\n\nexe = \"/opt/[bench\"\n",
                5,
                "bench: exe = \"/opt/[bench\" is not a glob: unclosed character class",
            ),
            (
                "[[rule]]\naction = \"allow\"\ncgroup = \"/a/{b,c\"\n",
                3,
                "rule 1: cgroup = \"/a/{b,c\" is not a glob",
            ),
            (
                "[[rule]]\naction = \"allow\"\nexe = \"/ok\"\n[[rule]]\naction = \"allow\"\n\
                 service = \"[x\"\n",
                6,
                "rule 2: service = \"[x\" is not a glob",
            ),
        ];
        for (text, line, reason) in cases {
            match Policy::parse(text, "p.toml", &users()) {
                Err(PolicyError::Invalid {
                    line: got,
                    reason: why,
                    ..
                }) => {
                    assert_eq!(got, line, "{text:?}: {why}");
                    assert!(why.contains(reason), "{text:?}: {why}");
                }
                other => panic!("{text:?} accepted: {other:?}"),
            }
        }
    }

    #[test]
    fn globs_match_whole_strings_one_component_a_star() {
        let glob = |p: &str, t: &str| Pattern::new(p).unwrap().is_match(t);
        assert!(glob("/opt/bench/*", "/opt/bench/a"));
        assert!(!glob("/opt/bench/*", "/opt/bench/a/b"));
        assert!(glob("/opt/bench/**", "/opt/bench/a/b"));
        assert!(!glob("/opt/bench/**", "/opt/bench"));
        assert!(glob("*.service", "render-1.service"));
        assert!(glob("render-?.service", "render-1.service"));
        assert!(!glob("/a?b", "/a/b"));
        assert!(!glob("/opt/bench/*", "/usr/opt/bench/x"));
        assert!(!glob("/opt/bench/*", "/opt/bench/../../tmp/xmrig/x"));
        assert!(!glob("a*b", "acbd"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("*", ""));
        // `**` inside a component is a plain `*`: it does not cross `/`.
        assert!(glob("/opt/a**", "/opt/abc"));
        assert!(!glob("/opt/a**", "/opt/a/b"));
        assert!(glob("/opt/{bench,lab}/x", "/opt/lab/x"));
        assert!(glob("/opt/[*]", "/opt/*"));
        assert!(!glob("/opt/[*]", "/opt/x"));
        // Long inputs stay linear.
        let long = "a".repeat(10_000);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
    }
}
