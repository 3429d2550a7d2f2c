//! Open verdicts across restarts (`--state-dir`): saved when the agent
//! stops, read back when it starts. A verdict still open keeps its id and
//! is not reported again; one whose processes all went while the agent was
//! down comes back as resolved. A state file that cannot be read is set
//! aside (`.bad`), never fatal.

use std::{fs, path::Path};

use tracing::{info, warn};

use super::{Correlator, Level, SAVED_STATE_VERSION, SavedState, Verdict};

/// The saved open verdicts in the state directory.
pub const STATE_FILE: &str = "verdicts.json";

/// What a restore found.
#[derive(Debug, Default)]
pub struct Restored {
    /// Verdicts reported by the previous run, with their levels.
    pub reported: Vec<(String, Level)>,
    /// Verdicts whose processes are all gone: to report resolved.
    pub gone: Vec<Verdict>,
}

/// Re-opens the verdicts a previous run saved in `dir`; `alive` says
/// whether a pid still runs.
pub fn restore(correlator: &mut Correlator, dir: &Path, alive: impl Fn(u32) -> bool) -> Restored {
    let path = dir.join(STATE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Restored::default(),
        Err(err) => {
            warn!(path = %path.display(), "cannot read saved verdicts: {err}");
            return Restored::default();
        }
    };
    let saved: SavedState = match serde_json::from_str(&text) {
        Ok(saved) => saved,
        Err(err) => {
            let aside = path.with_extension("json.bad");
            warn!(path = %path.display(), aside = %aside.display(), "saved verdicts unreadable ({err}): set aside");
            let _ = fs::rename(&path, &aside);
            return Restored::default();
        }
    };
    if saved.version != SAVED_STATE_VERSION {
        warn!(
            version = saved.version,
            "saved verdicts of another version: ignored"
        );
        return Restored::default();
    }
    let count = saved.verdicts.len();
    let reported = saved
        .verdicts
        .iter()
        .map(|s| (s.verdict.id.clone(), s.verdict.level))
        .collect();
    let gone = correlator.restore(saved, alive);
    info!(
        saved = count,
        resolved = gone.len(),
        "verdicts restored from the last run"
    );
    Restored { reported, gone }
}

/// Writes the open verdicts to `dir`, atomically (a new file, then a
/// rename).
pub fn save(correlator: &Correlator, dir: &Path) {
    let saved = correlator.save();
    let result = (|| -> std::io::Result<()> {
        fs::create_dir_all(dir)?;
        let path = dir.join(STATE_FILE);
        let staged = dir.join(format!(".{STATE_FILE}.{}", std::process::id()));
        fs::write(&staged, serde_json::to_vec(&saved)?)?;
        fs::rename(&staged, &path)
    })();
    match result {
        Ok(()) => {
            info!(verdicts = saved.verdicts.len(), dir = %dir.display(), "open verdicts saved")
        }
        Err(err) => warn!(dir = %dir.display(), "cannot save open verdicts: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_state_file_is_set_aside_not_fatal() {
        let dir = std::env::temp_dir().join(format!("assay-persist-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(STATE_FILE), b"{not json").unwrap();
        let mut correlator = Correlator::new("h");
        let restored = restore(&mut correlator, &dir, |_| true);
        assert!(restored.gone.is_empty() && restored.reported.is_empty());
        assert!(dir.join("verdicts.json.bad").exists());
        // An empty correlator saves and restores to nothing.
        save(&correlator, &dir);
        let restored = restore(&mut Correlator::new("h"), &dir, |_| true);
        assert!(restored.reported.is_empty());
    }
}
