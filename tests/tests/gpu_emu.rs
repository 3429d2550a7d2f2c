//! The GPU workload emulators on the stand-in CUDA libraries, without the
//! agent and without privilege: each pattern loads the libraries under
//! their real names (as `/proc/<pid>/maps` shows them), makes its calls and
//! finishes; the stand-in driver exports every symbol the CUDA sensor
//! attaches to, each at an address of its own.

use std::{
    collections::BTreeSet,
    ffi::CString,
    fs,
    io::{BufRead, BufReader},
};

use assay_tests::{fake_cuda_dir, gpu_emulator};

/// Runs a pattern for 2 s; returns the GPU libraries its maps listed once
/// it was ready, and the launches it reported.
fn run_pattern(pattern: &str) -> (BTreeSet<String>, u64) {
    let mut child = gpu_emulator(pattern, 2.0)
        .spawn()
        .expect("start assay-gpu-emu");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.next().expect("a first line").unwrap();
    assert_eq!(ready, format!("ready {}", child.id()), "{pattern}");
    let maps = fs::read_to_string(format!("/proc/{}/maps", child.id())).unwrap();
    let fake_dir = fake_cuda_dir();
    let mapped = maps
        .lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .filter_map(|path| path.strip_prefix(fake_dir.to_str().unwrap()))
        .map(|name| name.trim_start_matches('/').to_owned())
        .collect();
    let done = lines.next().expect("a last line").unwrap();
    let launches = done
        .strip_prefix("done launches ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{pattern}: unexpected {done:?}"));
    assert!(child.wait().unwrap().success(), "{pattern} failed");
    (mapped, launches)
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn a_miner_maps_the_driver_and_nvrtc_and_launches_at_a_steady_beat() {
    let (mapped, launches) = run_pattern("miner");
    assert_eq!(mapped, names(&["libcuda.so.1", "libnvrtc.so.12"]));
    // One launch every 2 ms for 2 s, give or take a loaded machine's sleeps.
    assert!((500..=1001).contains(&launches), "{launches} launches");
}

#[test]
fn training_maps_the_deep_learning_libraries() {
    let (mapped, launches) = run_pattern("training");
    assert_eq!(
        mapped,
        names(&[
            "libcuda.so.1",
            "libcublas.so.12",
            "libcudnn.so.9",
            "libnccl.so.2"
        ])
    );
    assert!(launches > 1000, "{launches} launches");
}

#[test]
fn inference_maps_the_deep_learning_libraries_and_launches_in_bursts() {
    let (mapped, launches) = run_pattern("inference");
    assert_eq!(
        mapped,
        names(&[
            "libcuda.so.1",
            "libcublas.so.12",
            "libcudnn.so.9",
            "libnccl.so.2"
        ])
    );
    assert!(launches > 100, "{launches} launches");
}

#[test]
fn the_launch_loop_reports_its_rate_as_the_benchmark_reads_it() {
    let output = gpu_emulator("launch-loop", 1.0).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let words: Vec<&str> = text.split_whitespace().collect();
    let ["ops", ops, "secs", secs] = words.as_slice() else {
        panic!("unexpected output {text:?}");
    };
    assert!(ops.parse::<u64>().unwrap() > 10_000);
    assert!(secs.parse::<f64>().unwrap() >= 1.0);
}

/// What the CUDA sensor attaches to, and what the emulators call.
const DRIVER_SYMBOLS: [&str; 31] = [
    "cuInit",
    "cuDriverGetVersion",
    "cuDeviceGet",
    "cuDeviceGetCount",
    "cuDeviceGetName",
    "cuCtxCreate_v2",
    "cuCtxCreate_v3",
    "cuCtxCreate_v4",
    "cuDevicePrimaryCtxRetain",
    "cuCtxDestroy_v2",
    "cuCtxSynchronize",
    "cuStreamSynchronize",
    "cuModuleLoadData",
    "cuModuleLoadDataEx",
    "cuModuleLoadFatBinary",
    "cuModuleGetFunction",
    "cuLibraryLoadData",
    "cuLibraryGetKernel",
    "cuMemAlloc_v2",
    "cuMemAllocManaged",
    "cuMemAllocAsync",
    "cuMemFree_v2",
    "cuMemGetInfo_v2",
    "cuMemcpyHtoD_v2",
    "cuMemcpyDtoH_v2",
    "cuLaunchKernel",
    "cuLaunchKernelEx",
    "cuLaunchKernel_ptsz",
    "cuLaunchKernelEx_ptsz",
    "cuGetProcAddress",
    "cuGetProcAddress_v2",
];

#[test]
fn the_stand_in_driver_exports_each_symbol_at_an_address_of_its_own() {
    let path = CString::new(
        fake_cuda_dir()
            .join("libcuda.so.1")
            .into_os_string()
            .into_encoded_bytes(),
    )
    .unwrap();
    // SAFETY: a NUL-terminated path to the stand-in driver (Rust, no
    // initialisers beyond std's).
    let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!lib.is_null(), "dlopen {path:?}");
    let mut addresses = BTreeSet::new();
    for symbol in DRIVER_SYMBOLS {
        let name = CString::new(symbol).unwrap();
        // SAFETY: a live handle and a NUL-terminated name.
        let address = unsafe { libc::dlsym(lib, name.as_ptr()) };
        assert!(!address.is_null(), "{symbol} not exported");
        assert!(
            addresses.insert(address as usize),
            "{symbol} shares an address"
        );
    }
}
