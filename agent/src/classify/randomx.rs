//! RandomX by its FPU fingerprint (SIGNATURES.md, CPU proof-of-work).
//!
//! RandomX programs execute CFROUND, which rewrites the MXCSR rounding
//! bits all the time, so a large share of a miner's context switches save
//! non-default rounding (~30 % for a real monerod miner here). Benign code
//! that changes rounding (interval arithmetic, some numeric libraries)
//! restores it within microseconds, so its share stays near zero. The share
//! alone says "RandomX code is running"; on a busy process it says "this
//! process is mining".

/// What one process did over one observation window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpuWindow {
    /// Context switches that saved the process's FPU state.
    pub switches: u64,
    /// Of those, switches with non-default MXCSR rounding.
    pub nondefault_rounding: u64,
    /// CPU the process used over the window, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
}

/// Fewer switches than this say too little either way.
pub const MIN_SWITCHES: u64 = 20;
/// Share of non-default-rounding switches that marks RandomX code.
pub const MARKER_SHARE: f64 = 0.05;
/// Share that, on a busy process, confirms mining alone.
pub const DECISIVE_SHARE: f64 = 0.10;
/// CPU use that makes a process "busy" (mining saturates its threads).
pub const BUSY_CORES: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomxMarker {
    /// Share of switches with non-default rounding.
    pub share: f64,
    pub busy: bool,
    /// Marker on a busy process: enough alone.
    pub decisive: bool,
}

/// The RandomX marker in one window, if present.
pub fn assess(window: &FpuWindow) -> Option<RandomxMarker> {
    if window.switches < MIN_SWITCHES {
        return None;
    }
    let share = window.nondefault_rounding.min(window.switches) as f64 / window.switches as f64;
    if share < MARKER_SHARE {
        return None;
    }
    let busy = window.cpu_cores >= BUSY_CORES;
    Some(RandomxMarker {
        share,
        busy,
        decisive: busy && share >= DECISIVE_SHARE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(switches: u64, nondefault_rounding: u64, cpu_cores: f64) -> FpuWindow {
        FpuWindow {
            switches,
            nondefault_rounding,
            cpu_cores,
        }
    }

    #[test]
    fn a_busy_miner_is_decisive() {
        let m = assess(&window(400, 120, 0.98)).unwrap();
        assert!(m.decisive && m.busy);
        assert!((m.share - 0.3).abs() < 1e-9);
    }

    #[test]
    fn the_marker_on_an_idle_process_is_not_decisive() {
        let m = assess(&window(400, 120, 0.05)).unwrap();
        assert!(!m.decisive);
    }

    #[test]
    fn busy_benign_work_and_brief_rounding_changes_show_nothing() {
        // A compressor: busy, default rounding throughout.
        assert_eq!(assess(&window(5000, 0, 1.0)), None);
        // Rounding changed for a moment now and then.
        assert_eq!(assess(&window(5000, 40, 1.0)), None);
        // Too few switches to say anything.
        assert_eq!(assess(&window(10, 10, 1.0)), None);
        // Corrupt counters never exceed a share of 1.
        assert!(assess(&window(20, 500, 1.0)).unwrap().share <= 1.0);
    }
}
