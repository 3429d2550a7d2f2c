//! `[[enforce]]` rules: what the operator wants done about a verdict, as a
//! ladder of actions tried in order. Parsed here with the same matchers as
//! `[[rule]]`s (a rule's matchers are reused as they are, so that one
//! pattern means the same in both); what the actions do is
//! [`crate::enforce`]'s business.
//!
//! ```toml
//! [[enforce]]
//! name = "no mining in tenant racks"  # required: named in every record
//! class = ["pow-mining"]
//! min_level = "confirmed"             # observed | suspected | confirmed
//! actions = ["freeze", "kill"]        # throttle | freeze | kill | deny-egress
//! cgroup = "/kubepods/**"             # container, pod, service, cgroup, exe, user
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::{Action, ClassName, LevelName, PolicyError, Rule, RuleSpec, UserMatcher};
use crate::correlate::Level;

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EnforceAction {
    /// `cpu.max` on the workload's own cgroup.
    Throttle,
    /// `cgroup.freeze` on the workload's own cgroup.
    Freeze,
    /// `cgroup.kill` on the workload's own cgroup, else signals to the
    /// process tree.
    Kill,
    /// New connections to the evidence's endpoints refused.
    DenyEgress,
}

impl EnforceAction {
    pub fn name(self) -> &'static str {
        match self {
            Self::Throttle => "throttle",
            Self::Freeze => "freeze",
            Self::Kill => "kill",
            Self::DenyEgress => "deny-egress",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnforceSpec {
    name: Option<String>,
    min_level: Option<LevelName>,
    #[serde(default)]
    actions: Vec<EnforceAction>,
    #[serde(default)]
    class: Vec<ClassName>,
    container: Option<String>,
    pod: Option<String>,
    service: Option<Spanned<String>>,
    cgroup: Option<Spanned<String>>,
    exe: Option<Spanned<String>>,
    user: Option<UserMatcher>,
}

impl EnforceSpec {
    /// Its name, level and ladder, checked, and its matchers as a rule's.
    pub(super) fn split(
        self,
        line: usize,
        invalid: &dyn Fn(usize, String) -> PolicyError,
    ) -> Result<(String, Level, Vec<EnforceAction>, RuleSpec), PolicyError> {
        let Some(name) = self.name else {
            return Err(invalid(
                line,
                "[[enforce]] needs a name: every record of what it did names it".into(),
            ));
        };
        let Some(min_level) = self.min_level else {
            return Err(invalid(
                line,
                format!("{name}: min_level is required (observed, suspected, confirmed)"),
            ));
        };
        if self.actions.is_empty() {
            return Err(invalid(
                line,
                format!(
                    "{name}: actions is empty: give the ladder (throttle, freeze, kill, deny-egress)"
                ),
            ));
        }
        let mut seen = Vec::new();
        for action in &self.actions {
            if seen.contains(action) {
                return Err(invalid(
                    line,
                    format!("{name}: action \"{}\" is named twice", action.name()),
                ));
            }
            seen.push(*action);
        }
        let level = match min_level {
            LevelName::Observed => Level::Observed,
            LevelName::Suspected => Level::Suspected,
            LevelName::Confirmed => Level::Confirmed,
        };
        let matchers = RuleSpec {
            name: Some(name.clone()),
            action: Action::Allow,
            class: self.class,
            container: self.container,
            pod: self.pod,
            service: self.service,
            cgroup: self.cgroup,
            exe: self.exe,
            user: self.user,
            max_level: None,
        };
        Ok((name, level, self.actions, matchers))
    }
}

/// One checked `[[enforce]]` rule.
#[derive(Debug, Clone)]
pub struct EnforceRule {
    pub name: String,
    /// The verdict's reported level must be at least this.
    pub min_level: Level,
    /// The ladder, in the order the rungs are tried.
    pub actions: Vec<EnforceAction>,
    /// Which verdicts it is about (its `action` means nothing here).
    pub(super) matchers: Rule,
}

#[cfg(test)]
mod tests {
    use super::super::Policy;
    use super::*;

    fn parse(text: &str) -> Result<Policy, String> {
        Policy::parse(text, "p.toml", &[("alice".into(), 1000)]).map_err(|e| e.to_string())
    }

    #[test]
    fn an_enforce_rule_reads_with_its_ladder_in_order() {
        let p = parse(
            "[[rule]]\naction = \"allow\"\nexe = \"/opt/bench/*\"\n\n\
             [[enforce]]\nname = \"no mining in tenant racks\"\nclass = [\"pow-mining\"]\n\
             min_level = \"confirmed\"\nactions = [\"freeze\", \"kill\"]\n\
             cgroup = \"/kubepods/**\"\nuser = \"alice\"\n",
        )
        .unwrap();
        assert_eq!(p.rules().len(), 1);
        let e = &p.enforce_rules()[0];
        assert_eq!(e.name, "no mining in tenant racks");
        assert_eq!(e.min_level, Level::Confirmed);
        assert_eq!(e.actions, vec![EnforceAction::Freeze, EnforceAction::Kill]);
    }

    #[test]
    fn bad_enforce_rules_are_refused_with_their_line() {
        for (text, line, says) in [
            (
                "[[enforce]]\nname = \"x\"\nmin_level = \"confirmed\"\nactions = [\"nuke\"]\nclass = [\"pow-mining\"]\n",
                4,
                "unknown variant `nuke`",
            ),
            (
                "\n[[enforce]]\nmin_level = \"confirmed\"\nactions = [\"kill\"]\nclass = [\"pow-mining\"]\n",
                2,
                "needs a name",
            ),
            (
                "[[enforce]]\nname = \"x\"\nactions = [\"kill\"]\nclass = [\"pow-mining\"]\n",
                1,
                "min_level is required",
            ),
            (
                "[[enforce]]\nname = \"x\"\nmin_level = \"confirmed\"\nactions = []\nclass = [\"pow-mining\"]\n",
                1,
                "actions is empty",
            ),
            (
                "[[enforce]]\nname = \"x\"\nmin_level = \"confirmed\"\nactions = [\"kill\", \"kill\"]\nclass = [\"pow-mining\"]\n",
                1,
                "named twice",
            ),
            (
                "[[enforce]]\nname = \"x\"\nmin_level = \"confirmed\"\nactions = [\"kill\"]\n",
                1,
                "matches everything",
            ),
            (
                "[[enforce]]\nname = \"x\"\nmin_level = \"confirmed\"\nactions = [\"kill\"]\nclass = [\"pow-mining\"]\nmax_level = \"observed\"\n",
                6,
                "unknown field `max_level`",
            ),
            (
                "[[enforce]]\nname = \"x\"\nmin_level = \"confirmed\"\nactions = [\"kill\"]\nexe = \"/a/[\"\n",
                5,
                "not a glob",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                err.contains(&format!("line {line}:")) && err.contains(says),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn the_first_matching_enforce_rule_at_its_level_applies() {
        use crate::{correlate::Class, tables::workload::Workload};
        let p = parse(
            "[[enforce]]\nname = \"tenant\"\nclass = [\"pow-mining\"]\nmin_level = \"suspected\"\n\
             actions = [\"throttle\"]\ncontainer = \"4f1c\"\n\n\
             [[enforce]]\nname = \"any\"\nclass = [\"pow-mining\"]\nmin_level = \"confirmed\"\n\
             actions = [\"kill\"]\n",
        )
        .unwrap();
        let container = Workload::Container {
            runtime: "docker",
            id: "4f1c6e2b".into(),
            pod_uid: None,
        };
        let session = Workload::Session { sid: 9 };
        let name = |w: &Workload, level| {
            p.enforcement(Class::PowMining, level, w, None)
                .map(|e| e.name.as_str())
        };
        assert_eq!(name(&container, Level::Suspected), Some("tenant"));
        assert_eq!(name(&session, Level::Suspected), None);
        assert_eq!(name(&session, Level::Confirmed), Some("any"));
        assert_eq!(
            p.enforcement(Class::AiTraining, Level::Confirmed, &session, None)
                .map(|e| e.name.as_str()),
            None
        );
    }
}
