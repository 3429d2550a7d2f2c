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
//! cgroup = "/kubepods*/pod0b7f*"    # optional: cgroup v2 path, glob
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
//! Globs take `*` (any run of characters, `/` included) and `?`. Container
//! images are not known to the agent (it reads cgroups, not runtime
//! metadata), so rules name containers by id. A file that does not parse,
//! names an unknown key or value, or a rule with no matcher, is refused at
//! start with its line and the reason.

use std::path::Path;

use serde::Deserialize;

use crate::{
    correlate::{Class, Level},
    tables::processes::ProcessInfo,
    tables::workload::Workload,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Downgrade,
    Ignore,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum UserMatcher {
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
    service: Option<String>,
    cgroup: Option<String>,
    exe: Option<String>,
    user: Option<UserMatcher>,
    max_level: Option<LevelName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ClassName {
    PowMining,
    ChainNode,
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
}

/// One checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub action: Action,
    classes: Vec<Class>,
    container: Option<String>,
    pod: Option<String>,
    service: Option<String>,
    cgroup: Option<String>,
    exe: Option<String>,
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

#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
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
        Self::parse(&text, &path.display().to_string(), &users_from_passwd())
    }

    /// Parses policy text; `users` maps user names to uids.
    pub fn parse(text: &str, origin: &str, users: &[(String, u32)]) -> Result<Self, PolicyError> {
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid = |line: usize, reason: String| PolicyError::Invalid {
            path: origin.to_owned(),
            line,
            reason,
        };
        let file: PolicyFile = toml::from_str(text).map_err(|err| {
            let line = err.span().map(|s| line_of(s.start)).unwrap_or(1);
            invalid(line, err.message().trim().to_owned())
        })?;
        // Where each [[rule]] starts, to name the line of a rule-level error.
        let rule_lines: Vec<usize> = text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_start().starts_with("[[rule]]"))
            .map(|(i, _)| i + 1)
            .collect();
        let mut rules = Vec::new();
        for (i, spec) in file.rule.into_iter().enumerate() {
            let line = rule_lines.get(i).copied().unwrap_or(1);
            let name = spec
                .name
                .clone()
                .unwrap_or_else(|| format!("rule {}", i + 1));
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
                        format!(
                            "{name}: action \"downgrade\" needs max_level (observed, suspected)"
                        ),
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
            rules.push(Rule {
                name,
                action: spec.action,
                classes: spec.class.iter().map(|c| c.class()).collect(),
                container: spec.container,
                pod: spec.pod,
                service: spec.service,
                cgroup: spec.cgroup,
                exe: spec.exe,
                uid,
                max_level,
            });
        }
        Ok(Self { rules })
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
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
            .find(|r| r.matches(class, workload, process))
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

impl Rule {
    fn matches(&self, class: Class, workload: &Workload, process: Option<&ProcessInfo>) -> bool {
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
            && !unit.is_some_and(|u| glob(pattern, u))
        {
            return false;
        }
        if let Some(pattern) = &self.cgroup
            && !process
                .and_then(|p| p.cgroup.as_deref())
                .is_some_and(|c| glob(pattern, c))
        {
            return false;
        }
        if let Some(pattern) = &self.exe
            && !process.is_some_and(|p| glob(pattern, &p.exe))
        {
            return false;
        }
        if let Some(uid) = self.uid
            && process.is_none_or(|p| p.uid != uid)
        {
            return false;
        }
        true
    }
}

/// `*` matches any run of characters (`/` too), `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with one backtrack point: linear in practice,
    // never exponential.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// (name, uid) of the local users.
fn users_from_passwd() -> Vec<(String, u32)> {
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
    use super::*;

    const ID: &str = "4f1c6e2b9a8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a291807f6e5d4c3b2a19081";

    fn users() -> Vec<(String, u32)> {
        vec![("alice".into(), 1000)]
    }

    fn process(exe: &str, uid: u32, cgroup: &str) -> ProcessInfo {
        let mut p = crate::tables::processes::ProcessInfo::for_tests(7);
        p.exe = exe.into();
        p.uid = uid;
        p.cgroup = Some(cgroup.into());
        p
    }

    fn container() -> Workload {
        Workload::Container {
            runtime: "containerd",
            id: ID.into(),
            pod_uid: Some("0b7f0c1e-1111-2222-3333-444455556666".into()),
        }
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let policy = Policy::parse(
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
            "test.toml",
            &users(),
        )
        .unwrap();
        let p = process("/opt/bench/hashcat", 1000, "/kubepods/pod0b7f/4f1c");
        assert_eq!(
            policy.decide(Class::PowMining, Level::Confirmed, &container(), Some(&p)),
            Decision::Suppress {
                rule: "tenant-7 may run a Bittensor miner".into(),
                log: true
            }
        );
        let session = Workload::Session { sid: 5 };
        assert_eq!(
            policy.decide(Class::PowMining, Level::Confirmed, &session, Some(&p)),
            Decision::Downgrade {
                rule: "benchmarks".into(),
                to: Level::Observed
            }
        );
        // Already at the cap: reported as is.
        assert_eq!(
            policy.decide(Class::PowMining, Level::Observed, &session, Some(&p)),
            Decision::Report
        );
        assert_eq!(
            policy.decide(
                Class::AiTraining,
                Level::Suspected,
                &session,
                Some(&process("/usr/bin/python3", 1000, "/"))
            ),
            Decision::Suppress {
                rule: "rule 3".into(),
                log: false
            }
        );
        // Nothing matches: reported.
        let other = process("/usr/bin/xmrig", 0, "/user.slice");
        assert_eq!(
            policy.decide(Class::PowMining, Level::Confirmed, &session, Some(&other)),
            Decision::Report
        );
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
    fn globs_match_whole_strings() {
        assert!(glob("/opt/bench/*", "/opt/bench/a/b"));
        assert!(glob("*.service", "render-1.service"));
        assert!(glob("render-?.service", "render-1.service"));
        assert!(!glob("/opt/bench/*", "/usr/opt/bench/x"));
        assert!(!glob("a*b", "acbd"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(glob("*", ""));
        // Long inputs stay linear.
        let long = "a".repeat(10_000);
        assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
    }
}
