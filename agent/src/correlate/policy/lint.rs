//! What `assay doctor` says about a policy that parses but likely lets
//! through more than its author meant. A rule lets verdicts through, so a
//! pattern that a tenant can satisfy by choosing a path or a name is a hole,
//! not a convenience: `exe = "*/hashcat"` allows any binary named hashcat,
//! `/tmp/bench/**` allows whatever anyone drops there.
//!
//! Warnings, not errors: a fleet shares one policy file, and a path that is
//! world-writable or missing here may be fine on the hosts it was written
//! for. The directory checks look at the real directories, under the same
//! root the agent matches `exe` against.

use std::path::{Path, PathBuf};

use super::{Action, Pattern, Policy, Rule};
use crate::correlate::Class;

/// Directories whose users choose what lives in them.
const USER_WRITABLE: [&str; 6] = [
    "/tmp",
    "/var/tmp",
    "/dev/shm",
    "/home",
    "/root",
    "/run/user",
];

/// What is at a path on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    Missing,
    Symlink,
    /// A directory and its permission bits (sticky bit included).
    Dir(u32),
    Other,
}

/// Warnings about `policy`'s rules, the directories looked at on this host.
pub fn warnings(policy: &Policy) -> Vec<String> {
    let root = policy.host_root.clone();
    warnings_with(policy, &|path| entry(&root, path))
}

fn entry(root: &Path, path: &Path) -> Entry {
    use std::os::unix::fs::PermissionsExt as _;
    let relative = path.strip_prefix("/").unwrap_or(path);
    match std::fs::symlink_metadata(root.join(relative)) {
        Err(_) => Entry::Missing,
        Ok(meta) if meta.file_type().is_symlink() => Entry::Symlink,
        Ok(meta) if meta.is_dir() => Entry::Dir(meta.permissions().mode() & 0o7777),
        Ok(_) => Entry::Other,
    }
}

pub(super) fn warnings_with(policy: &Policy, at: &dyn Fn(&Path) -> Entry) -> Vec<String> {
    let mut out = Vec::new();
    for rule in &policy.rules {
        let mut warn = |what: String| out.push(format!("rule \"{}\": {what}", rule.name));
        if let Some(exe) = &rule.exe {
            exe_warnings(exe, at, &mut warn);
        }
        if let Some(cgroup) = &rule.cgroup {
            if !cgroup.text.starts_with('/') {
                warn(anchor_warning(
                    "cgroup",
                    &cgroup.text,
                    "cgroup",
                    "cgroup v2",
                ));
            } else if literal_dir(&cgroup.text, false).as_os_str() == "/" {
                warn(format!(
                    "cgroup = \"{}\" matches from the top of the hierarchy: delegated subtrees \
                     (user sessions, containers) can create cgroups it matches; name the full \
                     parent path",
                    cgroup.text
                ));
            }
        }
        if let Some(service) = &rule.service
            && starts_wild(&service.text)
        {
            warn(format!(
                "service = \"{}\" matches any unit named so, users' own systemd units \
                 included; name the unit, or its cgroup path (cgroup = \
                 \"/system.slice/NAME.service\")",
                service.text
            ));
        }
        if let Some(why) = lets_mining_through_unpinned(rule) {
            warn(why);
        }
    }
    out
}

fn exe_warnings(exe: &Pattern, at: &dyn Fn(&Path) -> Entry, warn: &mut dyn FnMut(String)) {
    let text = &exe.text;
    if !text.starts_with('/') {
        warn(anchor_warning("exe", text, "binary", "resolved"));
        return;
    }
    let dir = literal_dir(text, true);
    if dir.as_os_str() == "/" {
        warn(format!(
            "exe = \"{text}\" matches binaries in any directory, /tmp and home directories \
             included: name the directory"
        ));
        return;
    }
    if let Some(user_dir) = USER_WRITABLE.iter().find(|d| dir.starts_with(d)) {
        let under = if text.contains("**") {
            "`**` under"
        } else {
            "under"
        };
        warn(format!(
            "exe = \"{text}\": {under} {user_dir}, where users put what they like: install \
             the allowed binary in a directory only root can write"
        ));
        return;
    }
    if let Some(why) = writable_on_host(&dir, at) {
        warn(format!("exe = \"{text}\": {why}"));
    }
}

/// For a pattern not starting with `/`.
fn anchor_warning(field: &str, text: &str, what: &str, kind: &str) -> String {
    if starts_wild(text) {
        format!(
            "{field} = \"{text}\" matches a {what} of that name anywhere: start it with the \
             absolute directory (\"/…\")"
        )
    } else {
        format!(
            "{field} = \"{text}\" never matches: {kind} paths are absolute; start it with \"/\""
        )
    }
}

fn starts_wild(text: &str) -> bool {
    text.starts_with(['*', '?', '[', '{'])
}

fn has_meta(component: &str) -> bool {
    component.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// The directory a pattern fixes before its first wildcard; with
/// `file_last`, the last component is a file name and never a directory.
fn literal_dir(text: &str, file_last: bool) -> PathBuf {
    let mut components: Vec<&str> = text.split('/').filter(|c| !c.is_empty()).collect();
    if file_last || components.last().is_some_and(|c| has_meta(c)) {
        components.pop();
    }
    let mut dir = PathBuf::from("/");
    for component in components {
        if has_meta(component) {
            break;
        }
        dir.push(component);
    }
    dir
}

/// Why someone other than root could place a binary under `dir`: the
/// first directory on the way that is world-writable (sticky ones only
/// where the binary itself goes or a directory on the way is missing), or
/// a symlink the resolved path never takes.
fn writable_on_host(dir: &Path, at: &dyn Fn(&Path) -> Entry) -> Option<String> {
    let mut path = PathBuf::from("/");
    let mut parent_mode = None;
    let mut components = dir.components().skip(1).peekable();
    loop {
        let last = components.peek().is_none();
        match at(&path) {
            Entry::Dir(mode) => {
                let world = mode & 0o002 != 0;
                let sticky = mode & 0o1000 != 0;
                if world && (!sticky || last) {
                    return Some(format!(
                        "{} is world-writable (mode {mode:o}): anyone can put a binary there \
                         that the rule allows",
                        path.display()
                    ));
                }
                parent_mode = Some(mode);
            }
            Entry::Missing => {
                return parent_mode.filter(|m| m & 0o002 != 0).map(|_| {
                    format!(
                        "{} does not exist and its parent is world-writable: whoever creates \
                         it decides what the rule allows",
                        path.display()
                    )
                });
            }
            Entry::Symlink => {
                return Some(format!(
                    "{} is a symlink: the kernel's resolved path never goes through it, so \
                     the rule matches nothing; name the real directory",
                    path.display()
                ));
            }
            Entry::Other => return None,
        }
        path.push(components.next()?);
    }
}

/// An allow or ignore rule that lets pow-mining through with nothing tying
/// it to a program or a workload (a user alone can run anything).
fn lets_mining_through_unpinned(rule: &Rule) -> Option<String> {
    let quiet = matches!(rule.action, Action::Allow | Action::Ignore);
    let mining = rule.classes.is_empty() || rule.classes.contains(&Class::PowMining);
    let pinned = rule.exe.is_some()
        || rule.cgroup.is_some()
        || rule.container.is_some()
        || rule.pod.is_some()
        || rule.service.is_some();
    (quiet && mining && !pinned).then(|| {
        let classes = if rule.classes.is_empty() {
            "every class, pow-mining included,"
        } else {
            "pow-mining"
        };
        format!(
            "{} {classes} with no exe or cgroup (container, pod, service) to say which \
             program or workload: add one",
            if rule.action == Action::Allow {
                "allows"
            } else {
                "ignores"
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn policy(text: &str) -> Policy {
        Policy::parse(text, "p.toml", &[("alice".into(), 1000)]).unwrap()
    }

    /// A host where /opt/bench is root's, /opt/shared is world-writable,
    /// /srv/drop is sticky and world-writable, /usr/local/bin is a symlink.
    fn host(path: &Path) -> Entry {
        let dirs: HashMap<&str, Entry> = [
            ("/", Entry::Dir(0o755)),
            ("/opt", Entry::Dir(0o755)),
            ("/opt/bench", Entry::Dir(0o755)),
            ("/opt/bench/bin", Entry::Dir(0o755)),
            ("/opt/shared", Entry::Dir(0o777)),
            ("/opt/shared/bin", Entry::Dir(0o755)),
            ("/srv", Entry::Dir(0o755)),
            ("/srv/drop", Entry::Dir(0o1777)),
            ("/usr", Entry::Dir(0o755)),
            ("/usr/local", Entry::Dir(0o755)),
            ("/usr/local/bin", Entry::Symlink),
        ]
        .into_iter()
        .collect();
        dirs.get(path.to_str().unwrap())
            .copied()
            .unwrap_or(Entry::Missing)
    }

    fn warned(rule: &str) -> Vec<String> {
        let p = policy(&format!(
            "[[rule]]\nname = \"r\"\naction = \"allow\"\n{rule}\n"
        ));
        warnings_with(&p, &host)
    }

    fn one_warning(rule: &str, says: &str) {
        let got = warned(rule);
        assert_eq!(got.len(), 1, "{rule}: {got:?}");
        assert!(got[0].contains(says), "{rule}: {got:?}");
        assert!(got[0].starts_with("rule \"r\": "), "{got:?}");
    }

    #[test]
    fn a_root_owned_absolute_directory_draws_no_warning() {
        for rule in [
            "exe = \"/opt/bench/*\"",
            "exe = \"/opt/bench/hashcat\"",
            "exe = \"/opt/bench/**/hashcat\"",
            "exe = \"/opt/bench/{hashcat,john}\"",
            "class = [\"pow-mining\"]\ncgroup = \"/system.slice/render-*.service\"",
            "class = [\"pow-mining\"]\ncontainer = \"4f1c6e2b\"",
            "service = \"render-*.service\"",
            "class = [\"ai-training\"]\nuser = \"alice\"",
        ] {
            assert_eq!(warned(rule), Vec::<String>::new(), "{rule}");
        }
    }

    #[test]
    fn patterns_not_anchored_at_an_absolute_directory_are_named() {
        one_warning("exe = \"*/hashcat\"", "anywhere");
        one_warning("exe = \"**/hashcat\"", "anywhere");
        one_warning("exe = \"hashcat\"", "never matches");
        one_warning("exe = \"/*/hashcat\"", "any directory");
        one_warning("exe = \"/**\"", "any directory");
        one_warning("cgroup = \"*/render.service\"", "anywhere");
        one_warning("cgroup = \"system.slice/x.service\"", "never matches");
        one_warning("cgroup = \"/**/bench.scope\"", "delegated subtrees");
        one_warning("service = \"*.service\"", "users' own systemd units");
    }

    #[test]
    fn binaries_in_directories_users_write_are_named() {
        one_warning("exe = \"/tmp/bench/**\"", "`**` under /tmp");
        one_warning("exe = \"/home/alice/bin/*\"", "under /home");
        one_warning("exe = \"/dev/shm/x\"", "/dev/shm");
        one_warning("exe = \"/var/tmp/**/x\"", "/var/tmp");
    }

    #[test]
    fn world_writable_directories_on_this_host_are_named() {
        one_warning("exe = \"/opt/shared/*\"", "/opt/shared is world-writable");
        // Below a world-writable directory, one that is root's is no help:
        // the whole directory can be renamed away and replaced.
        one_warning(
            "exe = \"/opt/shared/bin/x\"",
            "/opt/shared is world-writable",
        );
        // Sticky: others cannot replace /srv/drop's entries, but can add.
        one_warning("exe = \"/srv/drop/x\"", "/srv/drop is world-writable");
        one_warning("exe = \"/srv/drop/new/x\"", "does not exist");
        one_warning("exe = \"/usr/local/bin/x\"", "is a symlink");
        // Missing under a directory only root writes: nothing to say.
        assert_eq!(warned("exe = \"/opt/nothing/x\""), Vec::<String>::new());
    }

    #[test]
    fn mining_let_through_with_nothing_pinning_the_program_is_named() {
        one_warning(
            "class = [\"pow-mining\"]\nuser = \"alice\"",
            "allows pow-mining with no exe or cgroup",
        );
        one_warning("user = 1000", "every class, pow-mining included");
        let ignore = policy("[[rule]]\naction = \"ignore\"\nclass = [\"pow-mining\"]\n");
        let got = warnings_with(&ignore, &host);
        assert!(
            got.len() == 1 && got[0].contains("ignores pow-mining"),
            "{got:?}"
        );
        // A downgrade still reports: no warning.
        let downgrade = policy(
            "[[rule]]\naction = \"downgrade\"\nclass = [\"pow-mining\"]\n\
             max_level = \"observed\"\n",
        );
        assert_eq!(warnings_with(&downgrade, &host), Vec::<String>::new());
    }

    #[test]
    fn the_real_directory_mode_is_read() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("assay-lint-{}", std::process::id()));
        let open = dir.join("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut p = policy("[[rule]]\naction = \"allow\"\nexe = \"/open/*\"\n");
        p.host_root.clone_from(&dir);
        let got = warnings(&p);
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).unwrap();
        let quiet = warnings(&p);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            got.len() == 1 && got[0].contains("/open is world-writable (mode 777)"),
            "{got:?}"
        );
        assert_eq!(quiet, Vec::<String>::new());
    }
}
