//! Tests of the GPU classifier: miners, training and inference loops,
//! provers and benign workloads described as the CUDA sensor and the
//! telemetry window would see them, and the wording of the reasons.

use std::time::Duration;

use super::*;
use super::{
    names::is_zk_name,
    wording::{bytes, code, count, pct, rate, secs},
};
use crate::gpu::{
    samples::{DeviceSample, ProcessSample},
    window::TelemetryWindow,
};

const GB: u64 = 1_000_000_000;

fn kernels(list: &[(&str, u64)]) -> Vec<KernelLaunches> {
    list.iter()
        .map(|(name, launches)| KernelLaunches {
            name: (*name).to_owned(),
            launches: *launches,
        })
        .collect()
}

fn miner_libraries() -> MappedLibraries {
    MappedLibraries {
        libcuda: true,
        nvrtc: true,
        ..MappedLibraries::default()
    }
}

/// One search kernel in a loop, identical grid, sustained.
fn miner(name: &str, launches: u64) -> CudaActivity {
    CudaActivity {
        window_s: 5.0,
        launches,
        distinct_kernels: 1,
        kernels: kernels(&[(name, launches)]),
        distinct_launch_shapes: 1,
        shape_changes: 0,
        launch_gap_cv: Some(0.05),
        busy_slices: 10,
        slices: 10,
        modules_loaded: 1,
        runtime_compiles: 0,
        bytes_allocated: 5 * GB,
        largest_alloc: 5 * GB,
        allocations: 3,
        libraries: MappedLibraries {
            libcuda: true,
            ..MappedLibraries::default()
        },
    }
}

fn torch_libraries() -> MappedLibraries {
    MappedLibraries {
        libcuda: true,
        cublas: true,
        cublas_lt: true,
        cudnn: true,
        torch: true,
        ..MappedLibraries::default()
    }
}

/// A PyTorch training loop: hundreds of kernels, one elementwise kernel
/// most launched, GEMMs, backward and optimizer kernels.
fn training(distinct: usize, top_share: f64) -> CudaActivity {
    let launches = 200_000u64;
    let top = (launches as f64 * top_share) as u64;
    let rest = (launches - top) / 15;
    let names = [
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>",
        "ampere_sgemm_128x64_nn",
        "ampere_sgemm_128x64_tn",
        "void at::native::(anonymous namespace)::softmax_warp_forward<float, float, float, 10>",
        "void at::native::(anonymous namespace)::softmax_warp_backward<float, float, float, 10>",
        "sm80_xmma_wgrad_implicit_gemm_indexed_f32f32_tf32f32_f32_nhwckrsc_nhwc",
        "sm80_xmma_dgrad_implicit_gemm_indexed_f32f32_tf32f32_f32_nhwckrsc_nchw",
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float>>",
        "void cutlass::Kernel<cutlass_80_tensorop_s1688gemm_128x128_32x3_nn_align4>",
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<AdamFunctor>",
        "void cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, int, 512, true, 1>",
        "void cudnn::bn_bw_1C11_kernel_new<float, float, float2, 512, true, 1>",
        "void at::native::unrolled_elementwise_kernel<at::native::copy_>",
        "ampere_sgemm_64x64_nt",
        "void at::native::nll_loss_backward_reduce_cuda_kernel_2d<float, long>",
        "void at::native::(anonymous namespace)::layer_norm_grad_input_kernel<float>",
    ];
    let mut list = vec![(names[0], top)];
    list.extend(names[1..].iter().map(|n| (*n, rest)));
    CudaActivity {
        window_s: 5.0,
        launches,
        distinct_kernels: distinct,
        kernels: kernels(&list),
        distinct_launch_shapes: 240,
        shape_changes: 90_000,
        launch_gap_cv: Some(2.4),
        busy_slices: 10,
        slices: 10,
        modules_loaded: 0,
        runtime_compiles: 0,
        bytes_allocated: 60 * GB,
        largest_alloc: 2 * GB,
        allocations: 900,
        libraries: torch_libraries(),
    }
}

/// A model server: forward kernels only, in bursts.
fn inference() -> CudaActivity {
    CudaActivity {
        window_s: 5.0,
        launches: 6_000,
        distinct_kernels: 24,
        kernels: kernels(&[
            (
                "ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_tn",
                2_400,
            ),
            (
                "void at::native::vectorized_elementwise_kernel<4, at::native::GeluCUDAKernelImpl>",
                1_200,
            ),
            (
                "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<c10::Half, float>",
                1_000,
            ),
            ("fmha_cutlassF_f16_aligned_64x64_rf_sm80", 800),
        ]),
        distinct_launch_shapes: 40,
        shape_changes: 3_000,
        launch_gap_cv: Some(3.1),
        busy_slices: 3,
        slices: 10,
        modules_loaded: 0,
        runtime_compiles: 0,
        bytes_allocated: 14 * GB,
        largest_alloc: 2 * GB,
        allocations: 300,
        libraries: torch_libraries(),
    }
}

/// A GPU prover: MSM and NTT kernels.
fn prover() -> CudaActivity {
    CudaActivity {
        window_s: 5.0,
        launches: 4_000,
        distinct_kernels: 9,
        kernels: kernels(&[
            ("msm_pippenger_bucket_accumulate_bls12_377", 1_500),
            ("_Z10ntt_kernelPN6icicle7scalarEj", 1_200),
            ("poseidon_hash_batch", 700),
            ("batch_inverse", 600),
        ]),
        distinct_launch_shapes: 12,
        shape_changes: 800,
        launch_gap_cv: Some(1.2),
        busy_slices: 8,
        slices: 10,
        modules_loaded: 2,
        runtime_compiles: 0,
        bytes_allocated: 20 * GB,
        largest_alloc: 8 * GB,
        allocations: 40,
        libraries: MappedLibraries {
            libcuda: true,
            ..MappedLibraries::default()
        },
    }
}

/// `seconds` of 1 Hz telemetry for one process alone on GPU 0.
fn telemetry(
    seconds: u64,
    gpu: fn(u64) -> u32,
    mem: fn(u64) -> u32,
    pcie_kbps: u32,
) -> TelemetrySummary {
    let mut w = TelemetryWindow::new(Duration::from_secs(seconds));
    for s in 0..seconds {
        w.push_device(DeviceSample {
            t_ms: s * 1000,
            index: 0,
            uuid: "GPU-test".into(),
            name: "test".into(),
            gpu_util_pct: Some(gpu(s)),
            mem_util_pct: Some(mem(s)),
            mem_used_bytes: Some(5 * GB),
            mem_total_bytes: Some(24 * GB),
            power_mw: Some(220_000),
            power_limit_mw: Some(250_000),
            sm_clock_mhz: Some(1_400),
            mem_clock_mhz: Some(9_501),
            pcie_tx_kbps: Some(pcie_kbps / 2),
            pcie_rx_kbps: Some(pcie_kbps / 2),
        });
        if s % 10 == 0 {
            w.push_process(ProcessSample {
                t_ms: s * 1000,
                device_index: 0,
                pid: 42,
                used_mem_bytes: Some(5 * GB - 200_000_000),
                sm_util_pct: Some(gpu(s)),
                mem_util_pct: Some(mem(s)),
            });
        }
    }
    w.summary(42).unwrap()
}

/// Memory-hard PoW on its own GPU: memory utilisation 96–98 %, PCIe idle.
fn pinned() -> TelemetrySummary {
    telemetry(60, |_| 100, |s| 96 + (s % 3) as u32, 20)
}

fn assert_well_formed(v: &GpuVerdict) {
    assert!(
        v.strength.is_finite() && (0.0..=1.0).contains(&v.strength),
        "{v:?}"
    );
    assert!(!v.reasons.is_empty(), "{v:?}");
    assert!(!v.decisive || v.class == GpuClass::PowMining, "{v:?}");
    assert!(v.class != GpuClass::Unknown || v.strength == 0.0, "{v:?}");
    for r in &v.reasons {
        assert!(
            !r.contains("NaN") && !r.split_whitespace().any(|w| w.ends_with("inf")),
            "{r}"
        );
    }
}

#[test]
fn kawpowminer_compiling_progpow_search_with_nvrtc_on_a_pinned_gpu_is_decisive_mining() {
    let mut a = miner("progpow_search", 48_000);
    a.runtime_compiles = 1;
    a.libraries = miner_libraries();
    let v = classify(&a, Some(&pinned()));
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(v.decisive, "{v:#?}");
    assert_eq!(v.strength, 1.0);
    assert_eq!(
        v.reasons[0],
        "one kernel (`progpow_search`) made 100 % of 48 000 launches in 5 s, all with the same grid"
    );
    assert!(
        v.reasons
            .iter()
            .any(|r| r == "no deep-learning library mapped (only libcuda and NVRTC)")
    );
    assert!(
        v.reasons
            .iter()
            .any(|r| r.starts_with("memory utilisation of GPU 0 pinned at 97 %"))
    );
}

#[test]
fn a_miner_mapping_files_named_like_deep_learning_libraries_is_judged_as_without_them() {
    // The agent counts a file named libcublas.so.12 that exports nothing of
    // cuBLAS as unidentified, not as cuBLAS: the verdict is the miner's.
    let mut plain = miner("search", 48_000);
    plain.runtime_compiles = 1;
    plain.libraries = miner_libraries();
    let mut decoyed = plain.clone();
    decoyed.libraries.unidentified = 3;
    let (v, d) = (
        classify(&plain, Some(&pinned())),
        classify(&decoyed, Some(&pinned())),
    );
    assert_well_formed(&d);
    assert_eq!(d.class, GpuClass::PowMining);
    assert_eq!((d.strength, d.decisive), (v.strength, v.decisive));
    assert!(
        d.reasons.iter().any(|r| r
            == "no deep-learning library mapped (only libcuda and NVRTC); \
                3 files named like a GPU library but exporting none of its API"),
        "{d:#?}"
    );
}

#[test]
fn ethminer_with_a_dag_kernel_beside_ethash_search_is_mining_and_decisive_only_with_telemetry() {
    let mut a = miner("ethash_search", 30_000);
    a.distinct_kernels = 2;
    a.kernels = kernels(&[("ethash_search", 29_990), ("ethash_calculate_dag_item", 10)]);
    a.distinct_launch_shapes = 2;
    let alone = classify(&a, None);
    assert_well_formed(&alone);
    assert_eq!(alone.class, GpuClass::PowMining);
    assert!(!alone.decisive, "a name is one strong fact: {alone:#?}");
    assert!(alone.reasons[0].starts_with(
        "one kernel (`ethash_search`) made 99 % of 30 000 launches in 5 s (2 distinct kernels in all)"
    ), "{}", alone.reasons[0]);
    let with = classify(&a, Some(&pinned()));
    assert!(with.decisive, "{with:#?}");
    assert!(with.strength > alone.strength);
}

#[test]
fn a_sha256_loop_is_mining_but_not_decisive() {
    let v = classify(&miner("sha256_kernel", 12_000), None);
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(!v.decisive);
    assert!(
        v.strength >= MINING_BASE_STRENGTH && v.strength < 0.9,
        "{v:#?}"
    );
}

#[test]
fn a_closed_miner_with_obfuscated_names_is_decisive_from_behaviour() {
    let mut a = miner("_Z2k7Pj", 20_000);
    a.runtime_compiles = 3;
    a.libraries = miner_libraries();
    let v = classify(&a, Some(&pinned()));
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(v.decisive, "{v:#?}");
}

#[test]
fn a_single_kernel_stencil_pinning_memory_is_only_suspected() {
    // One strong fact (pinned memory utilisation) is what a memory-bound
    // loop shows too: never decisive alone.
    let v = classify(&miner("lbm_stream_collide", 50_000), Some(&pinned()));
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(!v.decisive, "{v:#?}");
}

#[test]
fn few_launches_are_never_decisive() {
    let mut a = miner("progpow_search", 500);
    a.runtime_compiles = 1;
    let v = classify(&a, Some(&pinned()));
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(!v.decisive);
    assert!(
        v.reasons
            .iter()
            .any(|r| r == "not decisive: fewer than 1 000 launches")
    );
}

#[test]
fn a_miner_that_pauses_or_moves_data_is_not_decisive() {
    let mut a = miner("progpow_search", 48_000);
    a.runtime_compiles = 1;
    a.busy_slices = 5;
    assert!(!classify(&a, Some(&pinned())).decisive);
    let mut a = miner("progpow_search", 48_000);
    a.runtime_compiles = 1;
    let busy_pcie = telemetry(60, |_| 100, |s| 96 + (s % 3) as u32, 400_000);
    let v = classify(&a, Some(&busy_pcie));
    assert!(!v.decisive, "{v:#?}");
    assert!(
        v.reasons
            .iter()
            .any(|r| r.starts_with("but PCIe of GPU 0 busy (400 MB/s)"))
    );
}

#[test]
fn a_gemm_stress_test_with_cublas_is_not_mining() {
    let mut a = miner("ampere_sgemm_128x64_nn", 20_000);
    a.libraries.cublas = true;
    let v = classify(&a, Some(&pinned()));
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::Unknown, "{v:#?}");
    assert!(v.reasons[1].contains("gpu-burn"));
}

#[test]
fn a_proof_of_work_kernel_beside_cublas_is_suspected_not_decisive() {
    let mut a = miner("ethash_search", 20_000);
    a.runtime_compiles = 1;
    a.libraries.cublas = true;
    let v = classify(&a, Some(&pinned()));
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(!v.decisive);
    assert_eq!(v.strength, MINING_WITH_DL_STRENGTH);
}

#[test]
fn cupy_compiling_its_own_kernels_does_not_count_as_a_miners_nvrtc() {
    let mut a = miner("cupy_multiply__float_float_float", 20_000);
    a.runtime_compiles = 40;
    a.libraries.cupy = true;
    a.libraries.nvrtc = true;
    let v = classify(&a, Some(&pinned()));
    assert!(!v.decisive, "{v:#?}");
}

#[test]
fn a_pytorch_training_loop_is_training() {
    let v = classify(&training(320, 0.4), None);
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::AiTraining, "{v:#?}");
    assert!(!v.decisive);
    assert_eq!(
        v.reasons[0],
        "deep-learning libraries mapped: cuBLAS, cuBLASLt, cuDNN, PyTorch"
    );
    assert!(
        v.reasons
            .iter()
            .any(|r| r.starts_with("backward-pass or optimizer kernels launched"))
    );
}

#[test]
fn a_training_loop_is_never_mining_even_when_one_kernel_dominates() {
    for distinct in [5, 30, 60, 320, 5000] {
        for share in [0.5, 0.9, 0.96, 0.99, 0.999] {
            for libraries in [torch_libraries(), MappedLibraries::default()] {
                for telemetry in [None, Some(pinned())] {
                    let mut a = training(distinct, share);
                    a.libraries = libraries;
                    let v = classify(&a, telemetry.as_ref());
                    assert_well_formed(&v);
                    assert_ne!(v.class, GpuClass::PowMining, "{distinct} {share}: {v:#?}");
                }
            }
        }
    }
}

#[test]
fn a_training_loop_with_the_same_shape_every_launch_is_still_not_mining() {
    let mut a = training(80, 0.97);
    a.distinct_launch_shapes = 1;
    a.shape_changes = 0;
    a.runtime_compiles = 5; // torch.compile / NVRTC fusions
    let v = classify(&a, Some(&pinned()));
    assert_eq!(v.class, GpuClass::AiTraining, "{v:#?}");
}

#[test]
fn bursty_forward_only_kernels_are_inference() {
    let v = classify(&inference(), None);
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::AiInference, "{v:#?}");
    assert!(
        v.reasons
            .iter()
            .any(|r| r.starts_with("launches in only 3 of 10 slices"))
    );
}

#[test]
fn tensorrt_serving_steadily_is_inference() {
    let mut a = inference();
    a.busy_slices = 10;
    a.libraries = MappedLibraries {
        libcuda: true,
        tensorrt: true,
        cublas_lt: true,
        ..MappedLibraries::default()
    };
    let v = classify(&a, None);
    assert_eq!(v.class, GpuClass::AiInference, "{v:#?}");
    assert!(
        v.reasons
            .iter()
            .any(|r| r == "TensorRT is mapped (an inference runtime)")
    );
}

#[test]
fn a_statically_linked_framework_is_recognised_by_its_kernel_names() {
    let mut a = training(120, 0.3);
    a.libraries = MappedLibraries {
        libcuda: true,
        ..MappedLibraries::default()
    };
    let v = classify(&a, None);
    assert_eq!(v.class, GpuClass::AiTraining, "{v:#?}");
    assert!(v.reasons[0].starts_with("kernels named like deep-learning libraries'"));
}

#[test]
fn msm_and_ntt_kernels_are_zk_proving_and_never_decisive() {
    let v = classify(&prover(), Some(&pinned()));
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::ZkProving, "{v:#?}");
    assert!(!v.decisive);
    assert!(v.strength <= ZK_MAX_STRENGTH);
}

#[test]
fn prover_names_match_and_lookalikes_do_not() {
    for name in [
        "msm_kernel",
        "_Z10msm_kernelPj",
        "icicle::ntt::forward",
        "bn254_g1_add",
        "poseidon2_hash",
        "groth16_prove",
        "intt_inplace",
    ] {
        assert!(is_zk_name(name), "{name}");
    }
    for name in [
        "flash_attention_forward",
        "fmha_attention_fwd",
        "ampere_sgemm_128x64_nn",
        "ethash_search",
        "transmission_kernel",
    ] {
        assert!(!is_zk_name(name), "{name}");
    }
}

#[test]
fn a_miner_disguised_with_a_prover_name_still_gets_its_decisive_verdict() {
    let mut a = miner("msm_kernel", 48_000);
    a.runtime_compiles = 1;
    a.libraries = miner_libraries();
    let v = classify(&a, Some(&pinned()));
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(v.decisive);
}

#[test]
fn nothing_launched_is_unknown() {
    let v = classify(&CudaActivity::default(), None);
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::Unknown);
    assert_eq!(v.reasons, ["no kernel launches seen"]);
    let one = CudaActivity {
        window_s: 1.0,
        launches: 1,
        distinct_kernels: 1,
        kernels: kernels(&[("ethash_search", 1)]),
        distinct_launch_shapes: 1,
        ..CudaActivity::default()
    };
    let v = classify(&one, None);
    assert_eq!(v.class, GpuClass::Unknown);
    assert_eq!(
        v.reasons[0],
        "only 1 launch in 1 s: too few to judge the kernels"
    );
}

#[test]
fn huge_and_nonsense_numbers_give_a_well_formed_verdict() {
    let mut cases = Vec::new();
    let mut a = miner("progpow_search", u64::MAX);
    a.kernels = kernels(&[("progpow_search", u64::MAX), ("x", u64::MAX)]);
    a.distinct_kernels = 2;
    a.window_s = f64::NAN;
    a.launch_gap_cv = Some(f64::NAN);
    a.shape_changes = u64::MAX;
    a.bytes_allocated = u64::MAX;
    a.largest_alloc = u64::MAX;
    a.allocations = u64::MAX;
    a.runtime_compiles = u64::MAX;
    a.modules_loaded = u64::MAX;
    cases.push(a.clone());
    a.window_s = f64::INFINITY;
    a.shape_changes = 0;
    a.busy_slices = u32::MAX;
    a.slices = 4;
    cases.push(a.clone());
    a.window_s = -3.0;
    a.distinct_kernels = usize::MAX;
    a.distinct_launch_shapes = usize::MAX;
    a.kernels = kernels(&[("k", 7); 40]);
    cases.push(a);
    let mut t = training(usize::MAX, 1.0);
    t.busy_slices = 0;
    cases.push(t);
    let mut long = miner(&"x".repeat(10_000), 2_000);
    long.kernels[0].name.push('é');
    cases.push(long);
    for a in &cases {
        for telemetry in [None, Some(pinned())] {
            assert_well_formed(&classify(a, telemetry.as_ref()));
        }
    }
}

#[test]
fn telemetry_alone_is_a_weak_lean_never_decisive() {
    let idle = CudaActivity {
        window_s: 1.0,
        ..CudaActivity::default()
    };
    let v = classify(&idle, Some(&pinned()));
    assert_well_formed(&v);
    assert_eq!(v.class, GpuClass::PowMining);
    assert!(!v.decisive);
    assert!(v.strength <= TELEMETRY_ONLY_MAX_STRENGTH);
    assert_eq!(v.reasons[0], "no kernel launches seen in 1 s");
    // The same GPU, but the process maps PyTorch: no mining lean.
    let mut torch = idle.clone();
    torch.libraries = torch_libraries();
    assert_ne!(classify(&torch, Some(&pinned())).class, GpuClass::PowMining);
    // Bursts between idle seconds lean to inference.
    let bursty = telemetry(
        60,
        |s| if s % 10 < 3 { 80 } else { 0 },
        |s| if s % 10 < 3 { 30 } else { 0 },
        5_000,
    );
    let v = classify(&idle, Some(&bursty));
    assert_eq!(v.class, GpuClass::AiInference, "{v:#?}");
    assert!(v.strength <= TELEMETRY_ONLY_MAX_STRENGTH);
}

#[test]
fn a_shared_gpus_figures_are_not_held_against_one_process() {
    let mut w = TelemetryWindow::new(Duration::from_secs(60));
    for s in 0..60 {
        w.push_device(DeviceSample {
            t_ms: s * 1000,
            index: 0,
            uuid: String::new(),
            name: String::new(),
            gpu_util_pct: Some(100),
            mem_util_pct: Some(97),
            mem_used_bytes: None,
            mem_total_bytes: None,
            power_mw: None,
            power_limit_mw: None,
            sm_clock_mhz: None,
            mem_clock_mhz: None,
            pcie_tx_kbps: None,
            pcie_rx_kbps: None,
        });
    }
    for pid in [42, 43] {
        w.push_process(ProcessSample {
            t_ms: 0,
            device_index: 0,
            pid,
            used_mem_bytes: None,
            sm_util_pct: None,
            mem_util_pct: None,
        });
    }
    let v = classify(&CudaActivity::default(), w.summary(42).as_ref());
    assert_eq!(v.class, GpuClass::Unknown, "{v:#?}");
    assert!(v.reasons[1].contains("shared with other processes"));
}

#[test]
fn benign_workloads_are_never_mining() {
    let mut steady_inference = inference();
    steady_inference.busy_slices = 10;
    let benign = [
        training(320, 0.4),
        training(40, 0.95),
        inference(),
        steady_inference,
        prover(),
    ];
    for a in &benign {
        for t in [None, Some(pinned())] {
            let v = classify(a, t.as_ref());
            assert_ne!(v.class, GpuClass::PowMining, "{a:#?}\n{v:#?}");
        }
    }
}

#[test]
fn numbers_read_as_a_person_writes_them() {
    assert_eq!(count(0), "0");
    assert_eq!(count(999), "999");
    assert_eq!(count(48_000), "48 000");
    assert_eq!(count(1_234_567), "1 234 567");
    assert_eq!(pct(0.996), "99 %");
    assert_eq!(pct(1.0), "100 %");
    assert_eq!(pct(0.001), "under 1 %");
    assert_eq!(pct(f64::NAN), "0 %");
    assert_eq!(secs(5.0), "5 s");
    assert_eq!(secs(2.5), "2.5 s");
    assert_eq!(bytes(5.2e9), "5.2 GB");
    assert_eq!(rate(12.0), "12 kB/s");
    assert_eq!(rate(820_000.0), "820 MB/s");
    assert_eq!(code(""), "an unnamed kernel");
    assert!(code(&"y".repeat(100)).ends_with("…`"));
}

#[test]
fn the_class_names_are_the_findings_names() {
    for (class, name) in [
        (GpuClass::PowMining, "pow-mining"),
        (GpuClass::AiTraining, "ai-training"),
        (GpuClass::AiInference, "ai-inference"),
        (GpuClass::ZkProving, "zk-proving"),
        (GpuClass::Unknown, "unknown"),
    ] {
        assert_eq!(class.name(), name);
        assert_eq!(serde_json::to_value(class).unwrap(), name);
    }
}
