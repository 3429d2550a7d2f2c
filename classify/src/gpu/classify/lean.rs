//! Rule 1: too few launches to judge the kernels. Telemetry alone gives a
//! lean, capped at `TELEMETRY_ONLY_MAX_STRENGTH` and never decisive, since
//! any memory- or compute-bound job alone on a GPU looks like a miner's.

use super::{
    CudaActivity, GpuClass, GpuVerdict, TELEMETRY_AI_LEAN, TELEMETRY_COMPUTE_PINNED_LEAN,
    TELEMETRY_MEM_PINNED_LEAN, TELEMETRY_ONLY_MAX_STRENGTH,
    facts::TelemetryFacts,
    wording::{count, in_window, is_are, secs},
};
pub(super) fn telemetry_only(a: &CudaActivity, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![match a.launches {
        0 if a.window_s.is_finite() && a.window_s > 0.0 => {
            format!("no kernel launches seen in {}", secs(a.window_s))
        }
        0 => "no kernel launches seen".to_owned(),
        n => format!(
            "only {} launch{}{}: too few to judge the kernels",
            count(n),
            if n == 1 { "" } else { "es" },
            in_window(a.window_s)
        ),
    }];
    reasons.extend(t.shared.clone());
    let dl = a.libraries.deep_learning();
    let mining_lean = t.pcie_busy.is_none()
        && t.mem_changing.is_none()
        && (t.mem_pinned.is_some() || (t.compute_pinned.is_some() && t.pcie_idle.is_some()));
    let lean = |class, strength: f32, facts: &[&Option<String>], mut reasons: Vec<String>| {
        reasons.extend(facts.iter().filter_map(|f| (*f).clone()));
        reasons.push("telemetry alone is only a lean, never a verdict".to_owned());
        GpuVerdict::new(
            class,
            strength.min(TELEMETRY_ONLY_MAX_STRENGTH),
            false,
            reasons,
        )
    };
    if mining_lean {
        if dl.is_empty() {
            let strength = if t.mem_pinned.is_some() {
                TELEMETRY_MEM_PINNED_LEAN
            } else {
                TELEMETRY_COMPUTE_PINNED_LEAN
            };
            reasons.push(
                "the GPU looks like a mining loop's, but so does any memory- or compute-bound \
                 job alone on a GPU"
                    .to_owned(),
            );
            return lean(
                GpuClass::PowMining,
                strength,
                &[
                    &t.mem_pinned,
                    &t.compute_pinned,
                    &t.pcie_idle,
                    &t.mem_static,
                ],
                reasons,
            );
        }
        reasons.push(format!(
            "the GPU looks like a mining loop's, but {} {} mapped",
            dl.join(", "),
            is_are(dl.len())
        ));
    }
    if t.bursty.is_some() {
        return lean(
            GpuClass::AiInference,
            TELEMETRY_AI_LEAN,
            &[&t.bursty],
            reasons,
        );
    }
    if t.steady_busy.is_some()
        && (t.pcie_busy.is_some() || t.mem_changing.is_some() || t.mem_util_varying.is_some())
    {
        return lean(
            GpuClass::AiTraining,
            TELEMETRY_AI_LEAN,
            &[
                &t.steady_busy,
                &t.pcie_busy,
                &t.mem_changing,
                &t.mem_util_varying,
            ],
            reasons,
        );
    }
    GpuVerdict::new(GpuClass::Unknown, 0.0, false, reasons)
}
