//! The ladder: which rungs of a rule's `actions` can be tried on this
//! workload, in order, and why the others are skipped. Pure: the facts
//! (its own cgroup or why it has none, its processes, a GPU context) are
//! gathered by the caller, the trying is [`super::actions`]'.
//!
//! A rung that cannot apply is skipped with its reason and the next one
//! is tried: a workload with no cgroup of its own cannot be frozen or
//! throttled but can still have its process tree killed; a process that
//! holds a CUDA context is never frozen (a stopped context can wedge the
//! driver for every other tenant of the GPU), so a freeze rung gives way
//! to the next.

use super::deny::Endpoint;
use crate::correlate::policy::EnforceAction;

/// What the caller knows about the workload a verdict is about.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Its own cgroup (relative to the cgroup2 mount), or why none.
    pub cgroup: Result<String, String>,
    /// The offending processes (the evidence's and their descendants),
    /// the ones the rails allow signalling.
    pub pids: Vec<u32>,
    /// Why freezing is unsafe (a process with a CUDA context), if it is.
    pub gpu: Option<String>,
    /// The endpoints the verdict's evidence names as the pool's
    /// ([`super::deny::endpoints`]): what deny-egress refuses.
    pub endpoints: Vec<Endpoint>,
}

/// Where one rung acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Cgroup(String),
    /// The process tree, by pidfd signals (no cgroup of its own).
    Processes(Vec<u32>),
    /// Connects and sends from the cgroup (and those below it) to these
    /// endpoints.
    Egress {
        cgroup: String,
        endpoints: Vec<Endpoint>,
    },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Self::Cgroup(path) => format!("cgroup {path}"),
            Self::Processes(pids) => format!(
                "pids {}",
                pids.iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Self::Egress { cgroup, endpoints } => format!(
                "cgroup {cgroup} to {}",
                endpoints
                    .iter()
                    .map(Endpoint::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// One rung, planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Skip {
        action: EnforceAction,
        reason: String,
    },
    Try {
        action: EnforceAction,
        target: Target,
    },
}

/// The rungs of `actions`, in order, each to try or skipped with why.
/// `done`: actions already taken on this workload (never taken twice).
pub fn plan(actions: &[EnforceAction], facts: &Facts, done: &[EnforceAction]) -> Vec<Step> {
    actions
        .iter()
        .map(|&action| {
            let skip = |reason: String| Step::Skip { action, reason };
            if done.contains(&action) {
                return skip(format!("{} was already done", action.name()));
            }
            let cgroup = facts.cgroup.as_ref();
            match action {
                EnforceAction::DenyEgress if facts.endpoints.is_empty() => {
                    skip("the verdict's evidence names no endpoint to deny".into())
                }
                EnforceAction::DenyEgress => match cgroup {
                    Ok(path) => Step::Try {
                        action,
                        target: Target::Egress {
                            cgroup: path.clone(),
                            endpoints: facts.endpoints.clone(),
                        },
                    },
                    Err(why) => skip(format!("no cgroup of its own: {why}")),
                },
                EnforceAction::Freeze if facts.gpu.is_some() => {
                    skip(facts.gpu.clone().unwrap_or_default())
                }
                EnforceAction::Throttle | EnforceAction::Freeze => match cgroup {
                    Ok(path) => Step::Try {
                        action,
                        target: Target::Cgroup(path.clone()),
                    },
                    Err(why) => skip(format!("no cgroup of its own: {why}")),
                },
                EnforceAction::Kill => match (cgroup, facts.pids.is_empty()) {
                    (Ok(path), _) => Step::Try {
                        action,
                        target: Target::Cgroup(path.clone()),
                    },
                    (Err(_), false) => Step::Try {
                        action,
                        target: Target::Processes(facts.pids.clone()),
                    },
                    (Err(why), true) => skip(format!(
                        "no cgroup of its own ({why}) and no process the rails allow signalling"
                    )),
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use EnforceAction::{DenyEgress, Freeze, Kill, Throttle};

    fn own() -> Facts {
        Facts {
            cgroup: Ok("/t/miner.scope".into()),
            pids: vec![10, 11],
            gpu: None,
            endpoints: vec![Endpoint {
                addr: "198.51.100.7".parse().unwrap(),
                port: 3333,
            }],
        }
    }

    fn tried(steps: &[Step]) -> Vec<(EnforceAction, Target)> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Try { action, target } => Some((*action, target.clone())),
                Step::Skip { .. } => None,
            })
            .collect()
    }

    #[test]
    fn every_rung_is_planned_in_order_on_the_workloads_own_cgroup() {
        let steps = plan(&[Throttle, Freeze, Kill], &own(), &[]);
        let cgroup = Target::Cgroup("/t/miner.scope".into());
        assert_eq!(
            tried(&steps),
            vec![
                (Throttle, cgroup.clone()),
                (Freeze, cgroup.clone()),
                (Kill, cgroup)
            ]
        );
    }

    #[test]
    fn a_process_with_a_cuda_context_is_never_frozen() {
        let facts = Facts {
            gpu: Some("pid 10 holds a CUDA context".into()),
            ..own()
        };
        let steps = plan(&[Freeze, Kill], &facts, &[]);
        assert!(
            matches!(&steps[0], Step::Skip { action: Freeze, reason } if reason.contains("CUDA")),
            "{steps:?}"
        );
        assert_eq!(
            tried(&steps),
            vec![(Kill, Target::Cgroup("/t/miner.scope".into()))]
        );
    }

    #[test]
    fn without_a_cgroup_of_its_own_only_kill_applies_to_the_process_tree() {
        let facts = Facts {
            cgroup: Err("/user.slice is a slice".into()),
            pids: vec![10, 11],
            gpu: None,
            endpoints: Vec::new(),
        };
        let steps = plan(&[Throttle, Freeze, Kill], &facts, &[]);
        assert_eq!(tried(&steps), vec![(Kill, Target::Processes(vec![10, 11]))]);
        assert!(
            steps[..2]
                .iter()
                .all(|s| matches!(s, Step::Skip { reason, .. } if reason.contains("slice")))
        );
        let nothing = Facts {
            pids: Vec::new(),
            ..facts
        };
        assert!(tried(&plan(&[Kill], &nothing, &[])).is_empty());
    }

    #[test]
    fn an_action_already_done_is_not_planned_again() {
        let steps = plan(&[Freeze, Kill], &own(), &[Freeze]);
        assert!(matches!(&steps[0], Step::Skip { action: Freeze, .. }));
        assert_eq!(tried(&steps).len(), 1);
    }

    #[test]
    fn deny_egress_refuses_the_evidence_endpoints_from_the_workloads_own_cgroup() {
        let steps = plan(&[DenyEgress, Kill], &own(), &[]);
        let Step::Try {
            action: DenyEgress,
            target: Target::Egress { cgroup, endpoints },
        } = &steps[0]
        else {
            panic!("{steps:?}");
        };
        assert_eq!(cgroup, "/t/miner.scope");
        assert_eq!(endpoints, &own().endpoints);
    }

    #[test]
    fn deny_egress_without_an_endpoint_or_a_cgroup_gives_way_to_the_next_rung() {
        let none = Facts {
            endpoints: Vec::new(),
            ..own()
        };
        let shared = Facts {
            cgroup: Err("/user.slice is a slice".into()),
            ..own()
        };
        for (facts, why) in [(none, "no endpoint"), (shared, "slice")] {
            let steps = plan(&[DenyEgress, Kill], &facts, &[]);
            assert!(
                matches!(&steps[0], Step::Skip { action: DenyEgress, reason } if reason.contains(why)),
                "{steps:?}"
            );
            assert_eq!(tried(&steps)[0].0, Kill);
        }
    }
}
