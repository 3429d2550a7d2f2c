//! What the classifier says: the class of the GPU work, how strongly the
//! facts point at it, whether that is decisive, and the facts in words.
//! The constructor keeps the invariants (strength in 0..=1, zero for
//! unknown, decisive only for pow-mining) whatever a rule passes.

use serde::{Deserialize, Serialize};
/// What the GPU work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GpuClass {
    PowMining,
    AiTraining,
    AiInference,
    ZkProving,
    Unknown,
}

impl GpuClass {
    /// The class name used in findings.
    pub fn name(self) -> &'static str {
        match self {
            Self::PowMining => "pow-mining",
            Self::AiTraining => "ai-training",
            Self::AiInference => "ai-inference",
            Self::ZkProving => "zk-proving",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuVerdict {
    pub class: GpuClass,
    /// 0..=1: how strongly the facts point at the class (0 for unknown).
    pub strength: f32,
    /// Enough alone to confirm (only ever for pow-mining).
    pub decisive: bool,
    /// The facts, in words with their numbers.
    pub reasons: Vec<String>,
}

impl GpuVerdict {
    pub(super) fn new(
        class: GpuClass,
        strength: f32,
        decisive: bool,
        reasons: Vec<String>,
    ) -> Self {
        let strength = if strength.is_finite() {
            strength.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Self {
            class,
            strength: if class == GpuClass::Unknown {
                0.0
            } else {
                strength
            },
            decisive: decisive && class == GpuClass::PowMining,
            reasons,
        }
    }
}
