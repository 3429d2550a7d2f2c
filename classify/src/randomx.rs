//! RandomX by its FPU fingerprint (docs/signatures.md, CPU proof-of-work).
//!
//! RandomX programs execute CFROUND, which rewrites the MXCSR rounding
//! bits all the time, so a large share of a miner's context switches save
//! non-default rounding (~15–50 % for a real monerod miner here). CFROUND
//! picks the mode at random, so all three non-default modes (down, up,
//! toward zero) appear in about equal numbers. Benign code that changes
//! rounding either restores it within microseconds (its share stays near
//! zero) or, like interval arithmetic, holds up and down rounding for long
//! stretches but never toward zero: the mode mix tells them apart. The
//! marker alone says "RandomX code is running"; on a busy thread it says
//! "this process is mining".

/// What one process did over one observation window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FpuWindow {
    /// Context switches that saved the thread's FPU state.
    pub switches: u64,
    /// Of those, by saved rounding mode: [nearest, down, up, toward zero].
    pub by_mode: [u64; 4],
    /// CPU the thread used over the window, in cores (1.0 = one core busy).
    pub cpu_cores: f64,
}

impl FpuWindow {
    pub fn nondefault(&self) -> u64 {
        self.by_mode[1] + self.by_mode[2] + self.by_mode[3]
    }
}

/// Fewer switches than this say too little either way.
pub const MIN_SWITCHES: u64 = 20;
/// Share of non-default-rounding switches that marks RandomX code.
pub const MARKER_SHARE: f64 = 0.05;
/// Share that, on a busy process, confirms mining alone.
pub const DECISIVE_SHARE: f64 = 0.10;
/// CPU use that makes a thread "busy": a hashing thread takes all the CPU
/// it is given, which on a crowded host may be well under a core; a node
/// that only verifies proofs uses milliseconds per block.
pub const BUSY_CORES: f64 = 0.25;
/// Each non-default mode's least share of the non-default switches (a
/// uniform choice gives each a third).
pub const MODE_MIN_SHARE: f64 = 0.1;

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
    let nondefault = window.nondefault();
    let share = nondefault.min(window.switches) as f64 / window.switches as f64;
    if share < MARKER_SHARE {
        return None;
    }
    let all_modes = window.by_mode[1..]
        .iter()
        .all(|&n| n as f64 >= nondefault as f64 * MODE_MIN_SHARE && n > 0);
    if !all_modes {
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

    /// A window whose non-default switches are spread evenly over the three
    /// modes, as CFROUND spreads them.
    fn window(switches: u64, nondefault: u64, cpu_cores: f64) -> FpuWindow {
        let third = nondefault / 3;
        FpuWindow {
            switches,
            by_mode: [
                switches.saturating_sub(nondefault),
                third,
                third,
                nondefault - 2 * third,
            ],
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
        let m = assess(&window(400, 120, 0.1)).unwrap();
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

    #[test]
    fn interval_arithmetic_holding_up_and_down_rounding_is_not_randomx() {
        // Busy, half its switches in non-default modes, but never toward zero.
        let interval = FpuWindow {
            switches: 1000,
            by_mode: [500, 250, 250, 0],
            cpu_cores: 1.0,
        };
        assert_eq!(assess(&interval), None);
        // Upward only (CGAL's Protect_FPU_rounding).
        let upward = FpuWindow {
            switches: 1000,
            by_mode: [100, 0, 900, 0],
            cpu_cores: 1.0,
        };
        assert_eq!(assess(&upward), None);
    }
}
