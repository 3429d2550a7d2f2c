//! Rules 3 to 5, for launches without a decisive mining loop: ZK proving
//! from prover-named kernels, AI training or inference from a deep-learning
//! stack, and otherwise unknown (or a weak lean from proof-of-work names).
//! None of them is ever decisive.

use super::{
    AI_BASE_STRENGTH, AI_MARK_STRENGTH, AI_MAX_STRENGTH, AI_UNCLEAR_STRENGTH, CudaActivity,
    GpuClass, GpuVerdict, MINING_MAX_KERNELS, MINING_NAME_ONLY_STRENGTH, TRAINING_MIN_KERNELS,
    ZK_BASE_STRENGTH, ZK_MAX_STRENGTH, ZK_MIN_SHARE,
    facts::{KernelFacts, TelemetryFacts},
    wording::{count, in_window, is_are, list, pct},
};
pub(super) fn zk_proving(a: &CudaActivity, k: &KernelFacts) -> Option<GpuVerdict> {
    if k.zk_share < ZK_MIN_SHARE && k.zk_names.len() < 2 {
        return None;
    }
    let mut reasons = vec![format!(
        "kernels named like a zero-knowledge prover's ({}) made {} of {} launches{}",
        list(&k.zk_names),
        pct(k.zk_share),
        count(a.launches),
        in_window(a.window_s)
    )];
    let mut strength = ZK_BASE_STRENGTH;
    if k.ai_stack() {
        reasons.push(if k.dl_libraries.is_empty() {
            "deep-learning kernels run too".to_owned()
        } else {
            format!(
                "{} {} mapped too",
                k.dl_libraries.join(", "),
                is_are(k.dl_libraries.len())
            )
        });
    } else {
        strength += AI_MARK_STRENGTH;
        reasons.push("no deep-learning library mapped".to_owned());
    }
    if k.mining_shape {
        reasons.push(
            "launched like a mining loop (few kernels, one grid), but not enough for a mining \
             verdict"
                .to_owned(),
        );
    }
    reasons.push("kernel names are weak evidence".to_owned());
    Some(GpuVerdict::new(
        GpuClass::ZkProving,
        strength.min(ZK_MAX_STRENGTH),
        false,
        reasons,
    ))
}

pub(super) fn ai(a: &CudaActivity, k: &KernelFacts, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![
        if k.dl_libraries.is_empty() {
            format!(
                "kernels named like deep-learning libraries' ({})",
                list(&k.dl_names)
            )
        } else {
            format!(
                "deep-learning libraries mapped: {}",
                k.dl_libraries.join(", ")
            )
        },
        format!(
            "{} distinct kernels made {} launches{}",
            k.distinct,
            count(a.launches),
            in_window(a.window_s)
        ),
    ];
    let slices = format!("{} of {} slices", a.busy_slices, a.slices);
    let mut training = Vec::new();
    let strong_training = !k.training_names.is_empty();
    if strong_training {
        training.push(format!(
            "backward-pass or optimizer kernels launched ({})",
            list(&k.training_names)
        ));
    }
    if a.libraries.nccl && k.sustained() {
        training.push(format!(
            "NCCL mapped (gradients exchanged between GPUs), launches in {slices}"
        ));
    }
    if k.distinct >= TRAINING_MIN_KERNELS && k.sustained() {
        training.push(format!(
            "{} distinct kernels launched in {slices}: a steady training loop",
            k.distinct
        ));
    }
    training.extend(
        [&t.pcie_busy, &t.mem_changing]
            .into_iter()
            .flatten()
            .cloned(),
    );
    let mut inference = Vec::new();
    if k.bursty() {
        inference.push(format!(
            "launches in only {slices}: bursts with idle gaps, as requests come"
        ));
    }
    let runtimes = a.libraries.inference_runtimes();
    if !runtimes.is_empty() {
        inference.push(format!(
            "{} {} mapped (an inference runtime)",
            runtimes.join(", "),
            is_are(runtimes.len())
        ));
    }
    inference.extend(t.bursty.clone());
    let bursty_or_runtime = !inference.is_empty();
    if k.distinct < TRAINING_MIN_KERNELS {
        inference.push(format!(
            "{} distinct kernels: fewer than a training step runs",
            k.distinct
        ));
    }
    let (class, marks) = if strong_training {
        (GpuClass::AiTraining, training)
    } else if bursty_or_runtime {
        (GpuClass::AiInference, inference)
    } else if !training.is_empty() {
        (GpuClass::AiTraining, training)
    } else {
        reasons.extend(inference);
        reasons.push(
            "steady, but no backward pass seen and too few kernels for a training step".to_owned(),
        );
        return GpuVerdict::new(GpuClass::AiInference, AI_UNCLEAR_STRENGTH, false, reasons);
    };
    let strength = AI_BASE_STRENGTH + AI_MARK_STRENGTH * marks.len().saturating_sub(1) as f32;
    reasons.extend(marks);
    reasons.extend(t.shared.clone());
    GpuVerdict::new(class, strength.min(AI_MAX_STRENGTH), false, reasons)
}

pub(super) fn general(a: &CudaActivity, k: &KernelFacts, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![
        format!(
            "{} distinct kernels made {} launches{}",
            k.distinct,
            count(a.launches),
            in_window(a.window_s)
        ),
        "no deep-learning library mapped".to_owned(),
    ];
    if !k.pow_names.is_empty() {
        reasons.push(format!(
            "{} {} named like proof-of-work kernels",
            list(&k.pow_names),
            is_are(k.pow_names.len())
        ));
        if !k.constant_shape {
            reasons.push(format!(
                "but launched with {} shapes ({} changes): not a mining loop's constant grid",
                a.distinct_launch_shapes,
                count(a.shape_changes)
            ));
        }
        reasons.extend(t.mem_pinned.clone());
        return GpuVerdict::new(
            GpuClass::PowMining,
            MINING_NAME_ONLY_STRENGTH,
            false,
            reasons,
        );
    }
    reasons.push(if k.distinct > MINING_MAX_KERNELS {
        "a general CUDA application: neither a mining loop nor a deep-learning stack".to_owned()
    } else if !k.constant_shape {
        format!(
            "few kernels, but the launch shape changes ({} shapes, {} changes): not a mining \
             loop's constant grid",
            a.distinct_launch_shapes,
            count(a.shape_changes)
        )
    } else {
        format!(
            "the top kernels made only {} of the launches: not a single loop",
            pct(k.dominant_share)
        )
    });
    GpuVerdict::new(GpuClass::Unknown, 0.0, false, reasons)
}
