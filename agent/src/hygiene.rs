//! What a miner-hygiene system call means (SIGNATURES.md, CPU
//! proof-of-work): XMRig writes model-specific registers to turn off
//! hardware prefetchers (RandomX runs ~15 % faster), loads the msr module
//! to get at them, reserves huge pages and maps its 2 GiB RandomX dataset
//! with them (1 GiB pages when it can).
//!
//! Every one of these has honest users too: turbostat and cpupower read
//! MSRs, databases, DPDK and JVMs use huge pages, and module loads are
//! daily business. So each is weak evidence and none is decisive; only
//! together, or next to network or FPU evidence, do they raise a verdict.
//! Reading an MSR is not evidence at all: only opening one for writing.
//!
//! Pure: the kernel side filters and rate-limits, this module decides.

use assay_common::event::hygiene;
use serde_json::{Map, Value, json};

use crate::evidence::EvidenceKind;

/// What one hygiene event says, before the workload is attached.
#[derive(Debug, Clone, PartialEq)]
pub struct HygieneSign {
    pub strength: f32,
    /// Stable per kind of sign: repeated signs merge into one record.
    pub summary: String,
    pub attributes: Map<String, Value>,
}

/// Strength of opening an MSR device for writing.
pub const MSR_WRITE: f32 = 0.3;
/// Strength of loading the msr module.
pub const MSR_MODULE: f32 = 0.25;
/// Strength of writing a huge-page reservation setting: below the
/// correlator's `OPENS_AT`, so an administrator's sysctl opens nothing; it
/// only adds to other evidence about the same workload.
pub const HUGEPAGE_SETTING: f32 = 0.15;
/// Strength of a `MAP_HUGETLB` mapping the exact size of a RandomX
/// dataset.
pub const HUGETLB_DATASET: f32 = 0.3;
/// RandomX's dataset: `RANDOMX_DATASET_BASE_SIZE` (2 GiB) +
/// `RANDOMX_DATASET_EXTRA_SIZE` (33 554 368 B), which a miner maps rounded
/// up to its page size: 2080 MiB on 2 MiB pages, 3 GiB on 1 GiB pages.
/// Databases and JVMs map huge pages too, but not of this size.
const RANDOMX_DATASET_BYTES: u64 = (2 << 30) + 33_554_368;

const O_ACCMODE: u32 = 0o3;
/// `MAP_HUGE_SHIFT`: log2 of the page size sits in mmap flags bits 26–31.
const MAP_HUGE_SHIFT: u32 = 26;

pub const KIND: EvidenceKind = EvidenceKind::MinerHygiene;

/// `msr_module_loaded`: whether /sys/module/msr exists now (the caller
/// checks it after a module load; only then is the load about MSRs).
pub fn assess(
    what: u32,
    flags: u32,
    value: u64,
    path: &str,
    msr_module_loaded: bool,
) -> Option<HygieneSign> {
    let mut attributes = Map::new();
    let sign =
        |strength: f32, summary: String, mut attributes: Map<String, Value>, signal: &str| {
            attributes.insert("signal".into(), json!(signal));
            Some(HygieneSign {
                strength,
                summary,
                attributes,
            })
        };
    match what {
        hygiene::CPU_DEVICE_OPEN => {
            if !is_msr_device(path) || flags & O_ACCMODE == 0 {
                return None;
            }
            attributes.insert("path".into(), json!(path));
            sign(
                MSR_WRITE,
                "opened a CPU's model-specific registers (/dev/cpu/*/msr) for writing, as \
                 miners do to switch off hardware prefetchers"
                    .into(),
                attributes,
                "msr_write",
            )
        }
        hygiene::HUGEPAGE_SETTING_OPEN => {
            if flags & O_ACCMODE == 0 {
                return None;
            }
            attributes.insert("path".into(), json!(path));
            sign(
                HUGEPAGE_SETTING,
                format!("opened the huge-page reservation setting {path} for writing"),
                attributes,
                "hugepage_reservation",
            )
        }
        hygiene::HUGETLB_MAP => {
            // Page size: log2 in the flags, 0 = the default huge page (2 MiB
            // on x86-64).
            let page_log2 = match (flags >> MAP_HUGE_SHIFT) & 0x3f {
                0 => 21,
                log2 => log2,
            };
            let page = 1u64.checked_shl(page_log2)?;
            if value != RANDOMX_DATASET_BYTES.div_ceil(page) * page {
                return None;
            }
            attributes.insert("bytes".into(), json!(value));
            attributes.insert("page_bytes".into(), json!(page));
            sign(
                HUGETLB_DATASET,
                "mapped exactly the size of a RandomX dataset on huge pages".into(),
                attributes,
                "randomx_dataset_hugetlb",
            )
        }
        hygiene::MODULE_LOAD => msr_module_loaded.then(|| HygieneSign {
            strength: MSR_MODULE,
            summary: "loaded the msr kernel module, which gives access to model-specific \
                      registers"
                .into(),
            attributes: {
                let mut a = Map::new();
                a.insert("signal".into(), json!("msr_module_load"));
                a
            },
        }),
        _ => None,
    }
}

/// `/dev/cpu/<n>/msr`; not `cpuid`, not anything else under /dev/cpu.
fn is_msr_device(path: &str) -> bool {
    path.strip_prefix("/dev/cpu/")
        .and_then(|rest| rest.strip_suffix("/msr"))
        .is_some_and(|cpu| !cpu.is_empty() && cpu.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const O_RDONLY: u32 = 0;
    const O_WRONLY: u32 = 1;
    const O_RDWR: u32 = 2;
    const MAP_HUGETLB: u32 = 0x40000;

    #[test]
    fn writing_an_msr_is_a_sign_and_reading_one_is_not() {
        let write = assess(hygiene::CPU_DEVICE_OPEN, O_RDWR, 0, "/dev/cpu/3/msr", false);
        assert_eq!(write.unwrap().strength, MSR_WRITE);
        // turbostat, cpupower: read-only.
        assert!(
            assess(
                hygiene::CPU_DEVICE_OPEN,
                O_RDONLY,
                0,
                "/dev/cpu/3/msr",
                false
            )
            .is_none()
        );
        assert!(
            assess(
                hygiene::CPU_DEVICE_OPEN,
                O_WRONLY,
                0,
                "/dev/cpu/3/cpuid",
                false
            )
            .is_none()
        );
        assert!(
            assess(
                hygiene::CPU_DEVICE_OPEN,
                O_WRONLY,
                0,
                "/dev/cpu/x/msr",
                false
            )
            .is_none()
        );
    }

    #[test]
    fn huge_page_reservations_and_large_mappings_are_weak_signs() {
        let setting = assess(
            hygiene::HUGEPAGE_SETTING_OPEN,
            O_WRONLY,
            0,
            "/proc/sys/vm/nr_hugepages",
            false,
        )
        .unwrap();
        assert!(setting.strength < 0.2);
        assert!(
            assess(
                hygiene::HUGEPAGE_SETTING_OPEN,
                O_RDONLY,
                0,
                "/proc/sys/vm/nr_hugepages",
                false
            )
            .is_none()
        );
        let dataset = 2080u64 << 20;
        let two_mb = assess(
            hygiene::HUGETLB_MAP,
            MAP_HUGETLB | (21 << 26),
            dataset,
            "",
            false,
        );
        assert_eq!(two_mb.unwrap().strength, HUGETLB_DATASET);
        let default_size = assess(hygiene::HUGETLB_MAP, MAP_HUGETLB, dataset, "", false);
        assert!(default_size.is_some());
        let one_gb = assess(
            hygiene::HUGETLB_MAP,
            MAP_HUGETLB | (30 << 26),
            3 << 30,
            "",
            false,
        );
        assert_eq!(one_gb.unwrap().attributes["page_bytes"], json!(1u64 << 30));
        // A database's shared buffers on huge pages: any other size.
        for size in [4u64 << 20, 256 << 20, 2 << 30, 8 << 30] {
            assert!(assess(hygiene::HUGETLB_MAP, MAP_HUGETLB, size, "", false).is_none());
        }
        // A bogus page-size field does not panic.
        assert!(assess(hygiene::HUGETLB_MAP, u32::MAX, dataset, "", false).is_none());
    }

    #[test]
    fn a_module_load_counts_only_when_it_brought_msr() {
        assert!(assess(hygiene::MODULE_LOAD, 0, 0, "", false).is_none());
        assert!(assess(hygiene::MODULE_LOAD, 0, 0, "", true).is_some());
    }

    #[test]
    fn no_sign_is_decisive_and_a_reservation_alone_only_supports() {
        const {
            assert!(MSR_WRITE < crate::correlate::SUSPECTED_AT);
            assert!(MSR_MODULE < crate::correlate::SUSPECTED_AT);
            assert!(HUGETLB_DATASET < crate::correlate::SUSPECTED_AT);
            assert!(HUGEPAGE_SETTING < crate::correlate::OPENS_AT);
        }
    }
}
