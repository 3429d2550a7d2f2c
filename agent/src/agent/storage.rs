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

/// What a worker found in a process's maps, with the links that asked.
#[derive(Debug)]
pub(super) struct ModulesFound {
    tgid: u32,
    modules: Vec<Found>,
}

#[derive(Debug, Default)]
pub(super) struct StorageWatch {
    files: Arc<NativeModules>,
    /// Per process: its modules once read, and the links seen meanwhile.
    known: HashMap<u32, (Option<Vec<Found>>, Vec<Link>)>,
    /// Processes whose mapped files were read (the exit summary's
    /// `native_module_scans`).
    pub(super) scanned: u64,
}

impl StorageWatch {
    pub(super) fn forget(&mut self, tgid: u32) {
        self.known.remove(&tgid);
    }
}

/// Links of one process kept while its maps are read, at most.
const MAX_WAITING_LINKS: usize = 16;

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
        let watch = &mut self.storage;
        if let Some((modules, waiting)) = watch.known.get_mut(&tgid) {
            match modules {
                Some(modules) => {
                    let modules = modules.clone();
                    self.report_storage_link(&link, &modules);
                }
                None if waiting.len() < MAX_WAITING_LINKS => waiting.push(link),
                None => {}
            }
            return;
        }
        if watch.known.len() >= MAX_WATCHED {
            return;
        }
        let files = Arc::clone(&watch.files);
        if self.workers.submit(move || {
            Done::NativeModules(ModulesFound {
                tgid,
                modules: files.mapped_by(tgid),
            })
        }) {
            self.storage.known.insert(tgid, (None, vec![link]));
        }
    }

    pub(super) fn on_native_modules(&mut self, found: ModulesFound) {
        // The process may have exited or exec'd meanwhile.
        let Some((modules, waiting)) = self.storage.known.get_mut(&found.tgid) else {
            return;
        };
        *modules = Some(found.modules.clone());
        self.storage.scanned += 1;
        for link in std::mem::take(waiting) {
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
