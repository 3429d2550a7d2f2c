//! The catalogue: the data detectors name things by, loaded from a
//! versioned data file (data/catalogue.toml, built in) that an operator can
//! extend without a rebuild (`assay --catalogue FILE`).
//!
//! It holds the names of Bitcoin-family network magics and of CryptoNote
//! (Levin) network ids, and extra mining-pool domains on top of
//! data/pool-domains.txt. Detection of chains does not hang on it: a
//! Bitcoin-family peer on a magic nobody listed is still recognised by its
//! message structure (checksummed `version`) and reported with its magic;
//! the catalogue gives it a name. Only the built-in magics relax the
//! structural check (any command, not only `version`, counts on them): an
//! operator's file adds names, never laxer detection. Pool domains do
//! decide evidence (`net.pool_name`), so an operator's extra domains are
//! validated like the built-in list.
//!
//! The crate stays free of I/O: callers read the file and pass its text.

use std::{collections::HashMap, sync::LazyLock};

use serde::Deserialize;

use crate::dns::{PoolDomains, PoolListError};

/// The format version this build reads.
pub const VERSION: u32 = 1;

const BUILTIN_TEXT: &str = include_str!("../data/catalogue.toml");
const BUILTIN_POOLS: &str = include_str!("../data/pool-domains.txt");

static BUILTIN: LazyLock<Catalogue> = LazyLock::new(|| {
    Catalogue::builtin_from(BUILTIN_TEXT)
        .expect("data/catalogue.toml is valid (checked by a unit test)")
});

/// What a catalogue file says, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    #[serde(default)]
    pool_domains: Vec<String>,
    #[serde(default)]
    bitcoin_magic: Vec<MagicEntry>,
    #[serde(default)]
    levin_network: Vec<LevinEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MagicEntry {
    /// 8 hex digits, in wire order (`f9beb4d9`).
    magic: String,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LevinEntry {
    /// 32 hex digits (cryptonote_config.h `NETWORK_ID`).
    network_id: String,
    name: String,
}

/// Why a catalogue file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("not a catalogue: {0}")]
    Syntax(String),
    #[error("catalogue version {found}: this assay reads version {VERSION}")]
    Version { found: u32 },
    #[error("bitcoin_magic {value:?}: a magic is 8 hex digits in wire order")]
    Magic { value: String },
    #[error("levin_network {value:?}: a network id is 32 hex digits")]
    NetworkId { value: String },
    #[error("{what} {value:?}: a name is 1–64 printable characters")]
    Name { what: &'static str, value: String },
    #[error("pool_domains: {0}")]
    Pools(PoolListError),
}

/// Names and pool domains, the built-in ones with any an operator added.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pools: PoolDomains,
    magics: HashMap<[u8; 4], String>,
    networks: HashMap<[u8; 16], String>,
    /// Where it came from: "built-in", or the operator's file.
    pub source: String,
    /// Entries the operator's file added (pool domains, magics, network
    /// ids), for `assay doctor`.
    pub added: (usize, usize, usize),
}

impl Catalogue {
    /// The catalogue shipped in the binary.
    pub fn builtin() -> &'static Catalogue {
        &BUILTIN
    }

    fn builtin_from(text: &str) -> Result<Catalogue, CatalogueError> {
        let empty = Catalogue {
            pools: PoolDomains::default(),
            magics: HashMap::new(),
            networks: HashMap::new(),
            source: "built-in".into(),
            added: (0, 0, 0),
        };
        let mut catalogue = empty.extended_with(text, "built-in", BUILTIN_POOLS)?;
        catalogue.added = (0, 0, 0);
        Ok(catalogue)
    }

    /// The built-in catalogue extended by an operator's file (`text`, read
    /// from `source`): its names are added (and win over built-in ones for
    /// the same magic or id), its pool domains added to the list.
    pub fn with_file(text: &str, source: &str) -> Result<Catalogue, CatalogueError> {
        Self::builtin().extended_with(text, source, "")
    }

    fn extended_with(
        &self,
        text: &str,
        source: &str,
        base_pools: &str,
    ) -> Result<Catalogue, CatalogueError> {
        let file: File = toml::from_str(text).map_err(|e| CatalogueError::Syntax(e.to_string()))?;
        if file.version != VERSION {
            return Err(CatalogueError::Version {
                found: file.version,
            });
        }
        let mut next = self.clone();
        next.source = source.to_owned();
        for entry in &file.bitcoin_magic {
            let magic = hex_array::<4>(&entry.magic).ok_or_else(|| CatalogueError::Magic {
                value: entry.magic.clone(),
            })?;
            next.magics
                .insert(magic, checked_name("bitcoin_magic", &entry.name)?);
        }
        for entry in &file.levin_network {
            let id =
                hex_array::<16>(&entry.network_id).ok_or_else(|| CatalogueError::NetworkId {
                    value: entry.network_id.clone(),
                })?;
            next.networks
                .insert(id, checked_name("levin_network", &entry.name)?);
        }
        if !file.pool_domains.is_empty() || !base_pools.is_empty() {
            let extra =
                PoolDomains::parse(&file.pool_domains.join("\n")).map_err(CatalogueError::Pools)?;
            let base = if base_pools.is_empty() {
                self.pools.clone()
            } else {
                PoolDomains::parse(base_pools).map_err(CatalogueError::Pools)?
            };
            next.pools = base.union(&extra);
        }
        next.added = (
            file.pool_domains.len(),
            file.bitcoin_magic.len(),
            file.levin_network.len(),
        );
        Ok(next)
    }

    /// The mining-pool domains.
    pub fn pools(&self) -> &PoolDomains {
        &self.pools
    }

    /// The network best known by this Bitcoin-family magic.
    pub fn magic_name(&self, magic: [u8; 4]) -> Option<&str> {
        self.magics.get(&magic).map(String::as_str)
    }

    /// The network with this CryptoNote network id.
    pub fn network_name(&self, id: [u8; 16]) -> Option<&str> {
        self.networks.get(&id).map(String::as_str)
    }

    /// Magics and names, for tests and `assay doctor`.
    pub fn magics(&self) -> impl Iterator<Item = ([u8; 4], &str)> {
        self.magics.iter().map(|(m, n)| (*m, n.as_str()))
    }

    /// (pool domains, magics, network ids) known.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.pools.len(), self.magics.len(), self.networks.len())
    }
}

fn hex_array<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Names end up in findings and logs: printable, bounded.
fn checked_name(what: &'static str, name: &str) -> Result<String, CatalogueError> {
    let fine = (1..=64).contains(&name.chars().count()) && !name.chars().any(char::is_control);
    fine.then(|| name.to_owned())
        .ok_or_else(|| CatalogueError::Name {
            what,
            value: name.chars().take(80).collect(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_catalogue_is_valid_and_names_the_listed_networks() {
        let c = Catalogue::builtin();
        assert_eq!(
            c.magic_name([0xf9, 0xbe, 0xb4, 0xd9]),
            Some("Bitcoin mainnet")
        );
        assert_eq!(c.magic_name(*b"RAVN"), Some("Ravencoin mainnet"));
        assert_eq!(c.magic_name([1, 2, 3, 4]), None);
        let (pools, magics, networks) = c.counts();
        assert!(
            pools > 10 && magics >= 18 && networks == 3,
            "{:?}",
            c.counts()
        );
        assert!(c.pools().matches("pool.supportxmr.com").is_some());
        assert_eq!(c.added, (0, 0, 0));
    }

    #[test]
    fn an_operators_file_adds_names_and_pools() {
        let text = r#"
version = 1
pool_domains = ["pool.example-coin.org"]
[[bitcoin_magic]]
magic = "e6e8e9e5"
name = "Peercoin mainnet"
[[levin_network]]
network_id = "0102030405060708090a0b0c0d0e0f10"
name = "Example CryptoNote fork"
"#;
        let c = Catalogue::with_file(text, "/etc/assay/catalogue.toml").unwrap();
        assert_eq!(
            c.magic_name([0xe6, 0xe8, 0xe9, 0xe5]),
            Some("Peercoin mainnet")
        );
        assert_eq!(
            c.magic_name([0xf9, 0xbe, 0xb4, 0xd9]),
            Some("Bitcoin mainnet")
        );
        assert_eq!(
            c.network_name(hex_array::<16>("0102030405060708090a0b0c0d0e0f10").unwrap()),
            Some("Example CryptoNote fork")
        );
        assert!(c.pools().matches("eu.pool.example-coin.org").is_some());
        assert!(c.pools().matches("pool.supportxmr.com").is_some());
        assert_eq!(c.added, (1, 1, 1));
        assert_eq!(c.source, "/etc/assay/catalogue.toml");
        // The built-in copy is untouched.
        assert_eq!(
            Catalogue::builtin().magic_name([0xe6, 0xe8, 0xe9, 0xe5]),
            None
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let refused = |text: &str| Catalogue::with_file(text, "f").unwrap_err().to_string();
        assert!(refused("version = 2").contains("version 2"));
        assert!(refused("").contains("not a catalogue"));
        assert!(refused("version = 1\nmagic = 3").contains("not a catalogue"));
        assert!(
            refused("version = 1\n[[bitcoin_magic]]\nmagic = \"f9beb4\"\nname = \"x\"")
                .contains("8 hex digits")
        );
        assert!(
            refused("version = 1\n[[levin_network]]\nnetwork_id = \"zz\"\nname = \"x\"")
                .contains("32 hex digits")
        );
        assert!(
            refused("version = 1\n[[bitcoin_magic]]\nmagic = \"f9beb4d9\"\nname = \"a\\nb\"")
                .contains("printable")
        );
        assert!(refused("version = 1\npool_domains = [\"not a domain\"]").contains("pool_domains"));
    }
}
