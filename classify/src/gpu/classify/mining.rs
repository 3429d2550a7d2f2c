//! Rule 2: the mining loop's shape, its strong extras and minor facts,
//! and when (rarely) that is decisive. The one rule that can confirm on
//! its own, so every condition that withholds decisiveness is here.

use super::{
    CudaActivity, DECISIVE_MIN_EXTRAS, DECISIVE_MIN_LAUNCHES, FEW_ALLOCATIONS, GpuClass,
    GpuVerdict, LARGE_ALLOCATION, MINING_BASE_STRENGTH, MINING_EXTRA_STRENGTH,
    MINING_MINOR_STRENGTH, MINING_WITH_DL_STRENGTH, REGULAR_GAP_MAX_CV, SUSTAINED_MIN_BUSY_SHARE,
    facts::{KernelFacts, TelemetryFacts},
    wording::{bytes, code, count, in_window, is_are, pct, plural},
};
/// "one kernel (`search`) made 99 % of 48 000 launches in 5 s, all with
/// the same grid"
fn dominance(a: &CudaActivity, k: &KernelFacts) -> String {
    let names: Vec<String> = a
        .kernels
        .iter()
        .take(k.dominant)
        .map(|kl| code(&kl.name))
        .collect();
    let who = match names.as_slice() {
        [one] => format!("one kernel ({one})"),
        [first, second] => format!("two kernels ({first} and {second})"),
        _ => format!(
            "{} distinct kernel{}",
            k.distinct,
            plural(k.distinct as u64)
        ),
    };
    let grid = if a.shape_changes == 0 {
        if a.distinct_launch_shapes <= 1 {
            "all with the same grid".to_owned()
        } else {
            "each with a constant grid".to_owned()
        }
    } else {
        format!(
            "the grid changed in only {} launch{}",
            count(a.shape_changes),
            if a.shape_changes == 1 { "" } else { "es" }
        )
    };
    let others = if k.distinct > k.dominant && !names.is_empty() {
        format!(" ({} distinct kernels in all)", k.distinct)
    } else {
        String::new()
    };
    format!(
        "{who} made {} of {} launches{}{others}, {grid}",
        pct(k.dominant_share),
        count(a.launches),
        in_window(a.window_s)
    )
}

pub(super) fn mining(a: &CudaActivity, k: &KernelFacts, t: &TelemetryFacts) -> GpuVerdict {
    let mut reasons = vec![dominance(a, k)];
    let pow_name = k.pow_names.first().map(|n| {
        format!(
            "{} is named like a proof-of-work algorithm's kernel",
            code(n)
        )
    });
    if !k.dl_libraries.is_empty() {
        let libs = k.dl_libraries.join(", ");
        let verb = is_are(k.dl_libraries.len());
        if let Some(pow_name) = pow_name {
            reasons.push(pow_name);
            reasons.push(format!(
                "but {libs} {verb} mapped, as in no miner: not decisive"
            ));
            return GpuVerdict::new(GpuClass::PowMining, MINING_WITH_DL_STRENGTH, false, reasons);
        }
        reasons.push(format!(
            "but {libs} {verb} mapped: a GEMM benchmark or a stress test (gpu-burn) launches \
             this way too"
        ));
        return GpuVerdict::new(GpuClass::Unknown, 0.0, false, reasons);
    }
    let l = &a.libraries;
    let mapped: Vec<&str> = [(l.libcuda, "libcuda"), (l.nvrtc, "NVRTC"), (l.cupy, "CuPy")]
        .into_iter()
        .filter_map(|(m, n)| m.then_some(n))
        .collect();
    let mut none_mapped = if mapped.is_empty() {
        "no deep-learning library mapped".to_owned()
    } else {
        format!(
            "no deep-learning library mapped (only {})",
            mapped.join(" and ")
        )
    };
    if l.unidentified > 0 {
        // A file named like cuBLAS that exports nothing of cuBLAS: a decoy
        // at worst, never a sign of deep learning.
        none_mapped.push_str(&format!(
            "; {} file{} named like a GPU library but exporting none of its API",
            count(u64::from(l.unidentified)),
            plural(u64::from(l.unidentified))
        ));
    }
    reasons.push(none_mapped);
    let (mut extras, mut minors) = (0usize, 0usize);
    if a.runtime_compiles > 0 {
        let what = format!(
            "{} program{} compiled at run time by NVRTC",
            count(a.runtime_compiles),
            plural(a.runtime_compiles)
        );
        if l.cupy {
            reasons.push(format!("{what}, as CuPy does for its own kernels"));
        } else {
            extras += 1;
            reasons.push(what);
        }
    } else if a.modules_loaded > 0 {
        minors += 1;
        reasons.push(format!(
            "code loaded from {} module image{} at run time",
            count(a.modules_loaded),
            plural(a.modules_loaded)
        ));
    }
    if let Some(r) = &t.mem_pinned {
        extras += 1;
        reasons.push(format!("{r}, as memory-hard proof-of-work keeps it"));
    }
    if let Some(r) = pow_name {
        extras += 1;
        reasons.push(r);
    }
    for r in [&t.compute_pinned, &t.pcie_idle, &t.mem_static]
        .into_iter()
        .flatten()
    {
        minors += 1;
        reasons.push(r.clone());
    }
    if let Some(cv) = a.launch_gap_cv.filter(|cv| cv.is_finite())
        && cv <= REGULAR_GAP_MAX_CV
    {
        minors += 1;
        reasons.push(format!(
            "launches on a regular beat (gap variation {cv:.2})"
        ));
    }
    if k.sustained() {
        minors += 1;
        reasons.push(format!(
            "launches in {} of {} slices of the window",
            a.busy_slices, a.slices
        ));
    }
    if (1..=FEW_ALLOCATIONS).contains(&a.allocations) && a.largest_alloc >= LARGE_ALLOCATION {
        minors += 1;
        reasons.push(format!(
            "only {} allocation{}, the largest {}: a buffer set up once",
            a.allocations,
            plural(a.allocations),
            bytes(a.largest_alloc as f64)
        ));
    }
    let mut strength = MINING_BASE_STRENGTH
        + MINING_EXTRA_STRENGTH * extras as f32
        + MINING_MINOR_STRENGTH * minors as f32;
    let mut decisive = a.launches >= DECISIVE_MIN_LAUNCHES && extras >= DECISIVE_MIN_EXTRAS;
    if let Some(busy) = k.busy_share
        && busy < SUSTAINED_MIN_BUSY_SHARE
    {
        decisive = false;
        reasons.push(format!(
            "but launches paused: only {} of {} slices busy",
            a.busy_slices, a.slices
        ));
    }
    if let Some(r) = &t.pcie_busy {
        decisive = false;
        strength -= MINING_EXTRA_STRENGTH;
        reasons.push(format!("but {r}, which a mining loop does not need"));
    }
    reasons.extend(t.shared.clone());
    if decisive {
        reasons.push(format!(
            "decisive: a mining loop's shape, no deep-learning library, and {extras} \
             independent mining facts agree"
        ));
    } else if extras >= DECISIVE_MIN_EXTRAS && a.launches < DECISIVE_MIN_LAUNCHES {
        reasons.push(format!(
            "not decisive: fewer than {} launches",
            count(DECISIVE_MIN_LAUNCHES)
        ));
    }
    GpuVerdict::new(GpuClass::PowMining, strength, decisive, reasons)
}
