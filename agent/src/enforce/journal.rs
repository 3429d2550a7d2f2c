//! What enforcement has in force, on disk (`--state-dir`), so that an
//! agent that died without its exit path (SIGKILL, OOM, a crash) does not
//! leave a workload frozen or throttled for good: the next start with the
//! same state directory undoes what the file lists before anything else.
//!
//! Written (atomically: a temporary file renamed over it) whenever what is
//! in force changes, removed when nothing is. deny-egress entries are not
//! listed: the kernel frees the map with the agent's programs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::actions::Undo;

/// The file's name in the state directory.
pub const FILE: &str = "enforcement.json";
/// Bumped when the file's shape changes; another version is not read.
const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
enum Saved {
    Thaw(PathBuf),
    CpuMax(PathBuf, String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Journal {
    version: u32,
    undo: Vec<Saved>,
}

/// Writes `undo` (what can outlive the agent) to `dir`, or removes the
/// file when nothing is in force.
pub fn save<'a>(dir: &Path, undo: impl Iterator<Item = &'a Undo>) -> Result<(), String> {
    let undo: Vec<Saved> = undo
        .filter_map(|u| match u {
            Undo::Thaw(d) => Some(Saved::Thaw(d.clone())),
            Undo::CpuMax(d, old) => Some(Saved::CpuMax(d.clone(), old.clone())),
            Undo::Allow(..) => None,
        })
        .collect();
    let path = dir.join(FILE);
    if undo.is_empty() {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(format!("cannot remove {}: {e}", path.display()))
            }
            _ => Ok(()),
        };
    }
    let text = serde_json::to_string(&Journal {
        version: VERSION,
        undo,
    })
    .map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What a previous run left in force in `dir` (nothing when there is no
/// file, or one this version cannot read: said so in the `Err`).
pub fn load(dir: &Path) -> Result<Vec<Undo>, String> {
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let journal: Journal = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not an enforcement journal: {e}", path.display()))?;
    if journal.version != VERSION {
        return Err(format!(
            "{} is version {}, this agent reads {VERSION}",
            path.display(),
            journal.version
        ));
    }
    Ok(journal
        .undo
        .into_iter()
        .map(|s| match s {
            Saved::Thaw(d) => Undo::Thaw(d),
            Saved::CpuMax(d, old) => Undo::CpuMax(d, old),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("assay-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn what_is_in_force_survives_to_the_next_start_and_nothing_leaves_no_file() {
        let dir = temp("roundtrip");
        let undo = [
            Undo::Thaw("/sys/fs/cgroup/t/a.scope".into()),
            Undo::CpuMax("/sys/fs/cgroup/t/b.scope".into(), "max 100000".into()),
            Undo::Allow("/sys/fs/cgroup/t/c.scope".into(), Vec::new()),
        ];
        save(&dir, undo.iter()).unwrap();
        assert_eq!(load(&dir).unwrap(), undo[..2].to_vec());
        save(&dir, [].iter()).unwrap();
        assert!(!dir.join(FILE).exists());
        assert_eq!(load(&dir).unwrap(), Vec::new());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_garbled_or_foreign_journal_is_refused_not_acted_on() {
        let dir = temp("garbled");
        for text in ["{", r#"{"version": 99, "undo": []}"#, "\u{0}\u{1}"] {
            std::fs::write(dir.join(FILE), text).unwrap();
            assert!(load(&dir).is_err(), "{text:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
