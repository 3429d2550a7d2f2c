//! TLS 1.3 links without ALPN to the storage-proving detector
//! ([`crate::evidence::storage`]): a process seen on a link of that shape
//! gets the native modules it maps read once, on a worker; what they are
//! decides whether this link, and its later ones, are evidence.

use std::{collections::HashMap, sync::Arc};

use assay_classify::{Direction, tls::ClientHello};

use super::{state::Agent, work::Done};
use crate::{
    evidence::{network::FlowFacts, storage},
    procfs::native_modules::{Found, NativeModules},
};

/// Processes whose modules are remembered, at most.
const MAX_WATCHED: usize = 4096;

/// A link waiting for its process's modules.
#[derive(Debug)]
pub(super) struct Link {
    hello: ClientHello,
    direction: Direction,
    facts: FlowFacts,
    first_payload_ns: Option<u64>,
}

/// What a worker found in a process's maps.
#[derive(Debug)]
pub(super) struct ModulesFound {
    tgid: u32,
    modules: Vec<Found>,
}

#[derive(Debug, Default)]
pub(super) struct StorageWatch {
    files: Arc<NativeModules>,
    /// Per process: its modules once read, and the links seen meanwhile.
    known: HashMap<u32, Entry>,
    /// Processes whose mapped files were read (the exit summary's
    /// `native_module_scans`).
    pub(super) scanned: u64,
}

#[derive(Debug)]
struct Entry {
    modules: Option<Vec<Found>>,
    waiting: Vec<Link>,
    /// When the read was asked for: one that missed its deadline (its
    /// result is dropped) is asked again by the next link.
    asked_ns: u64,
}

impl StorageWatch {
    pub(super) fn forget(&mut self, tgid: u32) {
        self.known.remove(&tgid);
    }
}

/// Links of one process kept while its maps are read, at most.
const MAX_WAITING_LINKS: usize = 16;
/// A read not answered after this long missed the workers' deadline.
const RETRY_AFTER_NS: u64 = 2 * crate::procfs::workers::DEADLINE.as_nanos() as u64;

impl Agent {
    /// A ClientHello on a flow of `facts.tgid`: a TLS 1.3 link
    /// without ALPN asks what the process runs (once per process).
    pub(super) fn on_tls13_link(
        &mut self,
        hello: &ClientHello,
        direction: Direction,
        facts: FlowFacts,
        first_payload_ns: Option<u64>,
    ) {
        if !storage::tls13_without_alpn(hello) {
            return;
        }
        let tgid = facts.tgid;
        let link = Link {
            hello: hello.clone(),
            direction,
            facts,
            first_payload_ns,
        };
        let now = crate::time::monotonic_ns();
        let watch = &mut self.storage;
        if let Some(entry) = watch.known.get_mut(&tgid) {
            match &entry.modules {
                Some(modules) => {
                    let modules = modules.clone();
                    self.report_storage_link(&link, &modules);
                    return;
                }
                None if now.saturating_sub(entry.asked_ns) < RETRY_AFTER_NS => {
                    if entry.waiting.len() < MAX_WAITING_LINKS {
                        entry.waiting.push(link);
                    }
                    return;
                }
                None => {
                    watch.known.remove(&tgid);
                }
            }
        }
        // A read of the socket tables must not wait behind this one: with
        // one permit left it is not started (the process's next link asks
        // again).
        if watch.known.len() >= MAX_WATCHED || self.workers.available() <= 1 {
            return;
        }
        let files = Arc::clone(&watch.files);
        if self.workers.submit(move || {
            Done::NativeModules(ModulesFound {
                tgid,
                modules: files.mapped_by(tgid),
            })
        }) {
            self.storage.known.insert(
                tgid,
                Entry {
                    modules: None,
                    waiting: vec![link],
                    asked_ns: now,
                },
            );
        }
    }

    pub(super) fn on_native_modules(&mut self, found: ModulesFound) {
        // The process may have exited or exec'd meanwhile.
        let Some(entry) = self.storage.known.get_mut(&found.tgid) else {
            return;
        };
        entry.modules = Some(found.modules.clone());
        let waiting = std::mem::take(&mut entry.waiting);
        self.storage.scanned += 1;
        for link in waiting {
            self.report_storage_link(&link, &found.modules);
        }
    }

    fn report_storage_link(&mut self, link: &Link, modules: &[Found]) {
        if let Some(draft) =
            storage::evidence_for(&link.hello, link.direction, &link.facts, modules)
        {
            self.report_flow_draft(link.facts.tgid, draft, link.first_payload_ns, true);
        }
    }
}
