//! What a miner-hygiene sign means (docs/signatures.md, CPU proof-of-work):
//! XMRig writes model-specific registers to turn off hardware prefetchers
//! (RandomX runs ~15 % faster), loads the msr module to get at them,
//! reserves huge pages and maps its 2 GiB RandomX dataset on them.
//!
//! Every one of these has honest users too: turbostat and cpupower read
//! MSRs (reading is no sign here, only writing), databases, DPDK and JVMs
//! reserve and use huge pages, and module loads are daily business. So each
//! is weak evidence and none is decisive; only together, or next to network
//! or FPU evidence, do they raise a verdict.
//!
//! Pure: the kernel side filters and rate-limits, this module decides.

use assay_common::event::hygiene;
use serde_json::{Map, Value, json};

use crate::{evidence::EvidenceKind, procfs::libraries::memory_maps};

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
/// Strength of a mapping the exact size of a RandomX dataset (huge pages
/// or not).
pub const DATASET_MAPPING: f32 = 0.3;
/// RandomX's dataset: `RANDOMX_DATASET_BASE_SIZE` (2 GiB) +
/// `RANDOMX_DATASET_EXTRA_SIZE` (33 554 368 B), which a miner maps rounded
/// up to its page size: 2080 MiB on 4 KiB or 2 MiB pages, 3 GiB on 1 GiB
/// pages. Databases and JVMs map large regions too, but not of this size.
const RANDOMX_DATASET_BYTES: u64 = (2 << 30) + 33_554_368;

pub const KIND: EvidenceKind = EvidenceKind::MinerHygiene;

/// `name`: the sysctl or module name the kernel reported.
pub fn assess(what: u32, flags: u32, value: u64, name: &str) -> Option<HygieneSign> {
    let sign = |strength: f32, summary: String, signal: &str, facts: &[(&str, Value)]| {
        let mut attributes = Map::new();
        attributes.insert("signal".into(), json!(signal));
        for (key, fact) in facts {
            attributes.insert((*key).into(), fact.clone());
        }
        Some(HygieneSign {
            strength,
            summary,
            attributes,
        })
    };
    match what {
        hygiene::MSR_WRITE => sign(
            MSR_WRITE,
            "opened a CPU's model-specific registers (/dev/cpu/*/msr) for writing, as \
             miners do to switch off hardware prefetchers"
                .into(),
            "msr_write",
            &[("cpu", json!(flags))],
        ),
        hygiene::HUGEPAGE_SETTING if flags == 1 => sign(
            HUGEPAGE_SETTING,
            format!("set the huge-page reservation {name} to {value}"),
            "hugepage_reservation",
            &[("sysctl", json!(name)), ("pages", json!(value))],
        ),
        hygiene::DATASET_MAPPING => {
            let page = u64::from(flags) * 1024;
            if page == 0 || value != RANDOMX_DATASET_BYTES.div_ceil(page) * page {
                return None;
            }
            sign(
                DATASET_MAPPING,
                "maps a memory region of exactly a RandomX dataset's size".into(),
                "randomx_dataset",
                &[("bytes", json!(value)), ("page_bytes", json!(page))],
            )
        }
        hygiene::MODULE_LOAD if name == "msr" => sign(
            MSR_MODULE,
            "loaded the msr kernel module, which gives access to model-specific registers".into(),
            "msr_module_load",
            &[],
        ),
        _ => None,
    }
}

/// A RandomX dataset among the mappings of `/proc/<pid>/smaps`: the size
/// of a mapping (`Size:`) with its `KernelPageSize:`, as (bytes, page KiB)
/// for [`assess`] with [`hygiene::DATASET_MAPPING`]. procfs parses the
/// text, one mapping at a time ([`memory_maps`]).
pub fn dataset_mapping(smaps: &str) -> Option<(u64, u32)> {
    memory_maps(smaps).find_map(|mapping| {
        let fields = &mapping.extension.map;
        // procfs gives the sizes in bytes.
        let bytes = *fields.get("Size")?;
        let page = u32::try_from(*fields.get("KernelPageSize")? / 1024)
            .ok()
            .filter(|&page| page > 0)?;
        let page_bytes = u64::from(page) * 1024;
        (bytes == RANDOMX_DATASET_BYTES.div_ceil(page_bytes) * page_bytes).then_some((bytes, page))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_msr_write_and_a_reservation_are_signs() {
        let write = assess(hygiene::MSR_WRITE, 3, 202, "").unwrap();
        assert_eq!(write.strength, MSR_WRITE);
        assert_eq!(write.attributes["cpu"], json!(3));
        let reservation = assess(hygiene::HUGEPAGE_SETTING, 1, 1280, "vm/nr_hugepages").unwrap();
        assert!(reservation.summary.contains("1280"));
        // Only writes are reported by the kernel; anything else is nothing.
        assert!(assess(hygiene::HUGEPAGE_SETTING, 0, 1280, "vm/nr_hugepages").is_none());
        assert!(assess(99, 0, 0, "").is_none());
    }

    #[test]
    fn only_a_dataset_sized_mapping_is_a_sign() {
        let dataset = 2080u64 << 20;
        for page_kib in [4u32, 2048] {
            let sign = assess(hygiene::DATASET_MAPPING, page_kib, dataset, "").unwrap();
            assert_eq!(sign.strength, DATASET_MAPPING);
        }
        assert!(assess(hygiene::DATASET_MAPPING, 1 << 20, 3 << 30, "").is_some());
        // A database's shared buffers, a JVM heap: other sizes.
        for size in [4u64 << 20, 256 << 20, 2 << 30, 8 << 30] {
            assert!(assess(hygiene::DATASET_MAPPING, 4, size, "").is_none());
        }
        assert!(assess(hygiene::DATASET_MAPPING, 0, dataset, "").is_none());
    }

    #[test]
    fn the_dataset_is_found_in_smaps() {
        // As the kernel writes it: a space after the inode of an anonymous
        // mapping.
        let smaps = "\
7f0000000000-7f0082000000 rw-p 00000000 00:00 0 
Size:            2129920 kB
KernelPageSize:        4 kB
MMUPageSize:           4 kB
7f1000000000-7f1010000000 rw-p 00000000 00:00 0 
Size:             262144 kB
KernelPageSize:        4 kB
";
        assert_eq!(dataset_mapping(smaps), Some((2080 << 20, 4)));
        let other = "\
7f0000000000-7f0010000000 rw-p 00000000 00:00 0 
Size: 262144 kB
KernelPageSize: 4 kB
7f1000000000-7f1080000000 rw-p 00000000 00:0f 1234 /anon_hugepage (deleted)
Size: 2097152 kB
KernelPageSize: 2048 kB
";
        assert_eq!(dataset_mapping(other), None);
        assert_eq!(
            dataset_mapping("garbage\nSize: x kB\nKernelPageSize: 0 kB"),
            None
        );
        // On 2 MiB pages, after mappings that cannot be read (a file named
        // like a System V segment, a field that is no number): still found.
        let huge = "\
7e0000000000-7e0000001000 rw-p 00000000 00:05 9 /SYSV1
Size:                  4 kB
KernelPageSize:        4 kB
7e0000001000-7e0000002000 rw-p 00000000 00:00 0 
Size:                  x kB
7f0000000000-7f0082000000 rw-p 00000000 00:0f 77 /anon_hugepage (deleted)
Size:            2129920 kB
KernelPageSize:     2048 kB
VmFlags: rd wr mr mw me de ht
";
        assert_eq!(dataset_mapping(huge), Some((2080 << 20, 2048)));
        let zero_page =
            "7f00-7f01 rw-p 00000000 00:00 0 \nSize: 2129920 kB\nKernelPageSize: 0 kB\n";
        assert_eq!(dataset_mapping(zero_page), None);
    }

    #[test]
    fn a_module_load_counts_only_for_msr() {
        assert!(assess(hygiene::MODULE_LOAD, 0, 0, "nf_tables").is_none());
        assert!(assess(hygiene::MODULE_LOAD, 0, 0, "msr").is_some());
    }

    #[test]
    fn no_sign_is_decisive_and_a_reservation_alone_only_supports() {
        const {
            assert!(MSR_WRITE < crate::correlate::SUSPECTED_AT);
            assert!(MSR_MODULE < crate::correlate::SUSPECTED_AT);
            assert!(DATASET_MAPPING < crate::correlate::SUSPECTED_AT);
            assert!(HUGEPAGE_SETTING < crate::correlate::OPENS_AT);
        }
    }
}
