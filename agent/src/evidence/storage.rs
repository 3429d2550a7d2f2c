//! Storage proving (docs/grey-zone.md, "Storage proving: Chia"): a process
//! that keeps a proof-of-space chain's peer link and runs that chain's
//! native consensus code.
//!
//! Chia's peers speak over a WebSocket inside TLS 1.3 with a client
//! certificate on both sides (chia/server/server.py: the server's context
//! sets `minimum_version = TLSv1_3` and `CERT_REQUIRED`, the client's
//! `CERT_REQUIRED` and a certificate of its own). Under TLS 1.3 the
//! certificates, and Chia's CA in them, travel encrypted: what the wire
//! shows is a ClientHello that offers TLS 1.3 (its `supported_versions`
//! holds 0x0304; the client's context leaves TLS 1.2 offered too) and no
//! ALPN (aiohttp's WebSocket client names none). That shape alone is any
//! TLS 1.3 client that names no application protocol: the *link*, not the
//! verdict. What makes it
//! Chia is the code of the process on either end: it maps the extension
//! modules that define Chia's proof of space (`chiapos`), proof of time
//! (`chiavdf`) and consensus types (`chia_rs`), each recognised by the entry
//! point it exports ([`crate::procfs::native_modules`]), not by a file or
//! program name. A renamed program, a copied virtual environment, a
//! module file under another name: all still show.
//!
//! A process with the modules but no such link (a script that imports
//! chia_rs to parse a block) is not reported: the modules are looked at
//! only behind a link of that shape. A link of that shape from a process
//! without them is nothing.

use assay_classify::{Direction, tls::ClientHello};
use serde_json::json;

use super::{
    EvidenceKind,
    network::{Draft, FlowFacts, base_attributes, peer, who},
};
use crate::procfs::native_modules::{Found, Module};

/// TLS 1.3's version number in `supported_versions` (RFC 8446 §4.2.1).
const TLS_1_3: u16 = 0x0304;

/// Strength of a Chia peer link from a process running Chia's proof-of-space
/// and consensus code: suspected at once, not decisive (a wallet peers and
/// maps the same modules: it takes part in the chain without farming).
pub const CHIA_PEER: f32 = 0.8;

/// A GREASE value (RFC 8701): 0x?A?A, both bytes alike. Clients sprinkle
/// them in lists; they mean nothing.
fn grease(value: u16) -> bool {
    value & 0x0f0f == 0x0a0a && value >> 8 == value & 0xff
}

/// The ClientHello of a TLS 1.3 link with no application protocol named:
/// `supported_versions` offers TLS 1.3 (GREASE aside), and ALPN is absent.
pub fn tls13_without_alpn(hello: &ClientHello) -> bool {
    hello
        .supported_versions
        .iter()
        .any(|&v| v == TLS_1_3 && !grease(v))
        && hello.alpn.is_empty()
}

/// What the modules say about the chain, if they are a Chia node's: the
/// proof-of-space module and at least one more of Chia's own.
fn chia(modules: &[Found]) -> bool {
    let has = |m: Module| modules.iter().any(|f| f.module == m);
    has(Module::Chiapos) && (has(Module::ChiaRs) || has(Module::Chiavdf) || has(Module::Blspy))
}

/// Evidence about the owner of a TLS 1.3 link without ALPN (`hello` seen in
/// `direction`) whose process maps `modules`.
pub fn evidence_for(
    hello: &ClientHello,
    direction: Direction,
    facts: &FlowFacts,
    modules: &[Found],
) -> Option<Draft> {
    if !tls13_without_alpn(hello) || !chia(modules) {
        return None;
    }
    let mut attributes = base_attributes("tls", direction, facts);
    attributes.insert("network".into(), json!("chia"));
    attributes.insert(
        "tls_versions_offered".into(),
        json!(
            hello
                .supported_versions
                .iter()
                .filter(|&&v| !grease(v))
                .map(|v| format!("{v:#06x}"))
                .collect::<Vec<_>>()
        ),
    );
    attributes.insert("alpn".into(), json!(null));
    attributes.insert("ja4".into(), json!(hello.ja4));
    if let Some(sni) = &hello.sni {
        attributes.insert("sni".into(), json!(sni));
    }
    let mut names: Vec<&str> = Vec::new();
    let listed: Vec<serde_json::Value> = modules
        .iter()
        .map(|f| {
            if !names.contains(&f.module.export()) {
                names.push(f.module.export());
            }
            json!({"module": f.module, "export": f.module.export(), "file": f.file, "build_id": f.build_id})
        })
        .collect();
    attributes.insert("modules".into(), json!(listed));
    let link = match direction {
        Direction::Outbound => format!("opened a peer link to {}", peer(facts)),
        Direction::Inbound => format!("accepted a peer link from {}", peer(facts)),
    };
    Some(Draft {
        kind: EvidenceKind::StorageProving,
        strength: CHIA_PEER,
        decisive: false,
        summary: format!(
            "{} {link} offering TLS 1.3 with no ALPN (the shape of Chia's mutual-TLS WebSocket \
             peer protocol), and maps Chia's native proof-of-space and consensus modules, \
             recognised by the entry points they export ({}): a node of the Chia \
             proof-of-space chain",
            who(facts),
            names.join(", ")
        ),
        attributes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::sockets::Role;

    fn hello(versions: &[u16], alpn: &[&str]) -> ClientHello {
        ClientHello {
            legacy_version: 0x0303,
            supported_versions: versions.to_vec(),
            sni: None,
            alpn: alpn.iter().map(|s| (*s).to_owned()).collect(),
            cipher_suites: vec![0x1301, 0x1302, 0x1303],
            extensions: vec![43, 51, 13],
            signature_algorithms: vec![0x0403],
            ja4: "t13i030300_55b375c5d22e_00000000".into(),
        }
    }

    fn facts() -> FlowFacts {
        FlowFacts {
            tgid: 7,
            comm: "renamed".into(),
            role: Role::Client,
            remote: Some("127.0.0.1:41234".parse().unwrap()),
            local: Some("127.0.0.1:50000".parse().unwrap()),
            sent_miner_call: false,
            owner_cores: None,
            forwarding: false,
        }
    }

    fn found(modules: &[Module]) -> Vec<Found> {
        modules
            .iter()
            .map(|&module| Found {
                module,
                file: format!("/anywhere/{module:?}.so"),
                build_id: None,
            })
            .collect()
    }

    #[test]
    fn a_tls13_link_without_alpn_from_a_process_running_chia_code_is_a_chia_node() {
        let modules = found(&[Module::ChiaRs, Module::Chiapos, Module::Chiavdf]);
        let draft = evidence_for(
            &hello(&[0x0304], &[]),
            Direction::Outbound,
            &facts(),
            &modules,
        )
        .unwrap();
        assert_eq!(draft.kind, EvidenceKind::StorageProving);
        assert_eq!(draft.attributes["network"], "chia");
        assert!(!draft.decisive);
        assert!(
            draft.summary.contains("PyInit_chiapos"),
            "{}",
            draft.summary
        );
        // GREASE in the list, TLS 1.2 offered beside 1.3 (Chia's client
        // context): the same; the server side counts too.
        assert!(
            evidence_for(
                &hello(&[0x7a7a, 0x0304, 0x0303], &[]),
                Direction::Inbound,
                &facts(),
                &modules
            )
            .is_some()
        );
    }

    #[test]
    fn the_link_shape_or_the_modules_alone_are_nothing() {
        let modules = found(&[Module::ChiaRs, Module::Chiapos]);
        // An ordinary HTTPS client: ALPN offered, or no TLS 1.3.
        for (versions, alpn) in [
            (&[0x0303][..], &[][..]),
            (&[0x0304, 0x0303][..], &["http/1.1"][..]),
            (&[0x0304][..], &["h2", "http/1.1"][..]),
            (&[][..], &[][..]),
            (&[0x0a0a][..], &[][..]),
        ] {
            assert!(
                evidence_for(
                    &hello(versions, alpn),
                    Direction::Outbound,
                    &facts(),
                    &modules
                )
                .is_none(),
                "{versions:?} {alpn:?}"
            );
        }
        // The right link, without Chia's proof of space in the process.
        for modules in [
            found(&[]),
            found(&[Module::ChiaRs]),
            found(&[Module::ChiaRs, Module::Chiavdf, Module::Chiabip158]),
            found(&[Module::Chiapos]),
        ] {
            assert!(
                evidence_for(
                    &hello(&[0x0304], &[]),
                    Direction::Outbound,
                    &facts(),
                    &modules
                )
                .is_none()
            );
        }
    }
}
