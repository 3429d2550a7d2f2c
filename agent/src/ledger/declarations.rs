//! Declarations (`--declarations FILE`): what operators say their compute
//! is for, to be set against what the ledger observed.
//!
//! ```toml
//! [[declare]]
//! name = "tenant-7 inference"        # required, unique
//! purpose = "ai-inference"           # ai-training | ai-inference | chain-node
//!                                    # | pow-mining | zk-proving | general
//! registration = "KZ-DC-2026-0042"   # optional: a licence or registry id
//! valid_until = 2027-12-31           # optional: a date
//! cgroup = "/tenants/7/**"           # the policy's matchers: container, pod,
//!                                    # service, cgroup, exe, user
//! ```
//!
//! The matchers are the policy's own ([`crate::correlate::policy`]), built
//! and checked by the same code, so a declaration names a workload exactly
//! as a rule would; they are matched against what the ledger recorded of
//! the workload. The first declaration that matches is the workload's. A
//! file that does not parse, names an unknown key or purpose, holds a bad
//! glob, repeats a name or has an entry with no matcher is refused with its
//! line, as a policy file is.

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::Subject;
use crate::correlate::policy::{
    MatcherSpec, PolicyError, Rule, UserMatcher, line_of, parse_toml, table_lines,
};

/// The purposes a workload can be declared for: the verdicts' classes.
pub const PURPOSES: [&str; 9] = [
    "ai-training",
    "ai-inference",
    "chain-node",
    "pos-validator",
    "storage-proving",
    "chain-client",
    "pow-mining",
    "zk-proving",
    "general",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclarationsFile {
    #[serde(default)]
    declare: Vec<DeclareSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclareSpec {
    name: Option<String>,
    purpose: Option<Spanned<String>>,
    registration: Option<String>,
    valid_until: Option<Spanned<toml::value::Datetime>>,
    container: Option<String>,
    pod: Option<String>,
    service: Option<Spanned<String>>,
    cgroup: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    user: Option<UserMatcher>,
}

/// One checked declaration.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub name: String,
    pub purpose: String,
    pub registration: Option<String>,
    /// The last day it holds, `YYYY-MM-DD`.
    pub valid_until: Option<String>,
    /// The end of that day, in Unix minutes.
    pub valid_until_minute: Option<i64>,
    /// Where it starts in its file.
    pub line: usize,
    rule: Rule,
}

/// A declaration as a report shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Declared {
    pub name: String,
    pub purpose: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<String>,
}

impl Declaration {
    pub fn shown(&self) -> Declared {
        Declared {
            name: self.name.clone(),
            purpose: self.purpose.clone(),
            registration: self.registration.clone(),
            valid_until: self.valid_until.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeclarationsError {
    #[error("cannot read declarations {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("declarations {path}, line {line}: {reason}")]
    Invalid {
        path: String,
        line: usize,
        reason: String,
    },
}

#[derive(Debug, Clone, Default)]
pub struct Declarations {
    pub entries: Vec<Declaration>,
}

impl Declarations {
    pub fn load(path: &Path) -> Result<Self, DeclarationsError> {
        let text = std::fs::read_to_string(path).map_err(|source| DeclarationsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(
            &text,
            &path.display().to_string(),
            &crate::correlate::policy::users_from_passwd(),
        )
    }

    /// Parses declarations text; `users` maps user names to uids.
    pub fn parse(
        text: &str,
        origin: &str,
        users: &[(String, u32)],
    ) -> Result<Self, DeclarationsError> {
        let line_of = |offset: usize| line_of(text, offset);
        let invalid = |line: usize, reason: String| DeclarationsError::Invalid {
            path: origin.to_owned(),
            line,
            reason,
        };
        let file: DeclarationsFile =
            parse_toml(text).map_err(|(line, reason)| invalid(line, reason))?;
        let starts = table_lines(text, "[[declare]]");
        let mut entries: Vec<Declaration> = Vec::new();
        for (i, spec) in file.declare.into_iter().enumerate() {
            let line = starts.get(i).copied().unwrap_or(1);
            let name = match spec.name {
                Some(name) if !name.trim().is_empty() => name,
                _ => return Err(invalid(line, "[[declare]] needs a name".into())),
            };
            if let Some(first) = entries.iter().find(|d| d.name == name) {
                return Err(invalid(
                    line,
                    format!("{name}: declared twice (first at line {})", first.line),
                ));
            }
            let Some(purpose) = spec.purpose else {
                return Err(invalid(
                    line,
                    format!("{name}: purpose is required ({})", PURPOSES.join(", ")),
                ));
            };
            if !PURPOSES.contains(&purpose.get_ref().as_str()) {
                return Err(invalid(
                    line_of(purpose.span().start),
                    format!(
                        "{name}: purpose \"{}\" is not one of {}",
                        purpose.get_ref(),
                        PURPOSES.join(", ")
                    ),
                ));
            }
            let (valid_until, valid_until_minute) = match spec.valid_until {
                None => (None, None),
                Some(at) => {
                    let Some(date) = at.get_ref().date.filter(|_| at.get_ref().time.is_none())
                    else {
                        return Err(invalid(
                            line_of(at.span().start),
                            format!("{name}: valid_until must be a date (2027-12-31)"),
                        ));
                    };
                    let days = days_from_civil(
                        i64::from(date.year),
                        i64::from(date.month),
                        i64::from(date.day),
                    );
                    (Some(date.to_string()), Some((days + 1) * 1440 - 1))
                }
            };
            let matchers = MatcherSpec {
                container: spec.container,
                pod: spec.pod,
                service: spec.service,
                cgroup: spec.cgroup,
                exe: spec.exe,
                user: spec.user,
            };
            if matchers.container.is_none()
                && matchers.pod.is_none()
                && matchers.service.is_none()
                && matchers.cgroup.is_none()
                && matchers.exe.is_none()
                && matchers.user.is_none()
            {
                return Err(invalid(
                    line,
                    format!(
                        "{name} names no workload: give at least one of container, pod, \
                         service, cgroup, exe, user"
                    ),
                ));
            }
            let rule = Rule::from_matchers(matchers, name.clone(), line, text, origin, users)
                .map_err(|err| match err {
                    PolicyError::Invalid { line, reason, .. } => invalid(line, reason),
                    other => invalid(line, other.to_string()),
                })?;
            entries.push(Declaration {
                name,
                purpose: purpose.into_inner(),
                registration: spec.registration,
                valid_until,
                valid_until_minute,
                line,
                rule,
            });
        }
        Ok(Self { entries })
    }

    /// The first declaration that names this workload.
    pub fn for_subject(&self, subject: &Subject) -> Option<&Declaration> {
        self.entries
            .iter()
            .find(|d| d.rule.matches_recorded(subject))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[declare]]
name = "tenant-7 inference"
purpose = "ai-inference"
registration = "KZ-DC-2026-0042"
valid_until = 2027-12-31
cgroup = "/tenants/7/**"

[[declare]]
name = "batch"
purpose = "general"
service = "batch-*.service"
user = "alice"
"#;

    fn users() -> Vec<(String, u32)> {
        vec![("alice".into(), 1000)]
    }

    #[test]
    fn declarations_match_what_the_ledger_recorded_first_one_wins() {
        let d = Declarations::parse(GOOD, "d.toml", &users()).unwrap();
        assert_eq!(d.entries.len(), 2);
        let first = &d.entries[0];
        assert_eq!(first.line, 2);
        assert_eq!(first.valid_until.as_deref(), Some("2027-12-31"));
        assert_eq!(
            first.valid_until_minute,
            Some((days_from_civil(2028, 1, 1)) * 1440 - 1)
        );
        let tenant = Subject {
            cgroup: Some("/tenants/7/job/a".into()),
            ..Subject::default()
        };
        assert_eq!(d.for_subject(&tenant).unwrap().purpose, "ai-inference");
        // `*` does not cross `/`: a sibling whose name completes it does not match.
        let other = Subject {
            cgroup: Some("/tenants/70".into()),
            ..Subject::default()
        };
        assert!(d.for_subject(&other).is_none());
        let batch = Subject {
            service: Some("batch-nightly.service".into()),
            uid: Some(1000),
            ..Subject::default()
        };
        assert_eq!(d.for_subject(&batch).unwrap().name, "batch");
        // Every matcher must match: another user's unit is not declared.
        let someone = Subject {
            uid: Some(0),
            ..batch.clone()
        };
        assert!(d.for_subject(&someone).is_none());
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn bad_declarations_are_refused_with_their_line() {
        let cases: &[(&str, usize, &str)] = &[
            (
                "[[declare]]\nname = \"a\"\npurpose = \"mining\"\ncgroup = \"/a\"\n",
                3,
                "not one of",
            ),
            (
                "[[declare]]\nname = \"a\"\ncgroup = \"/a\"\n",
                1,
                "purpose is required",
            ),
            (
                "[[declare]]\npurpose = \"general\"\ncgroup = \"/a\"\n",
                1,
                "needs a name",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\n",
                1,
                "names no workload",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\ncgroup = \"/a\"\n\n[[declare]]\nname = \"a\"\npurpose = \"general\"\ncgroup = \"/b\"\n",
                6,
                "declared twice",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\ncgroup = \"/a[\"\n",
                4,
                "not a glob",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\ncgroup = \"/a\"\ncolour = 1\n",
                5,
                "unknown field",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\nuser = \"nobody-here\"\n",
                1,
                "unknown user",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\ncgroup = \"/a\"\nvalid_until = \"soon\"\n",
                5,
                "invalid type",
            ),
            (
                "[[declare]]\nname = \"a\"\npurpose = \"general\"\ncgroup = \"/a\"\nvalid_until = 2027-01-01T10:00:00Z\n",
                5,
                "must be a date",
            ),
            ("[[declare]\nname = \"a\"\n", 1, ""),
        ];
        for (text, line, reason) in cases {
            match Declarations::parse(text, "d.toml", &users()) {
                Err(DeclarationsError::Invalid {
                    line: got,
                    reason: why,
                    ..
                }) => {
                    assert_eq!(got, *line, "{text:?}: {why}");
                    assert!(why.contains(reason), "{text:?}: {why}");
                }
                other => panic!("{text:?}: {other:?}"),
            }
        }
        // Empty is fine: nothing declared.
        assert!(
            Declarations::parse("", "d.toml", &[])
                .unwrap()
                .entries
                .is_empty()
        );
    }
}
