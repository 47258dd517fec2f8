//! The built-in Sigma packs, embedded in the binary from `content/sigma` (see its README):
//! [`SIGMAHQ_CLOUD`] (the SigmaHQ cloud rules, unmodified) and [`PALISADE_CORRELATIONS`]
//! (Palisade's correlation pack mirroring the classic SCC activity findings).
//!
//! The server offers them to every instance next to the packs users upload; `palisade hunt`
//! still reads rule files from disk.

use include_dir::{Dir, DirEntry, include_dir};
use palisade_sigma::RuleSource;

/// Id of the SigmaHQ cloud pack.
pub const SIGMAHQ_CLOUD: &str = "sigmahq-cloud";
/// Id of Palisade's correlation pack.
pub const PALISADE_CORRELATIONS: &str = "palisade-correlations";

static SIGMAHQ_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../content/sigma/cloud");
static PALISADE_DIR: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../content/sigma/palisade");

/// One built-in pack.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinPack {
    /// Stable id (`sigmahq-cloud`, `palisade-correlations`).
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// What it holds and where it comes from.
    pub description: &'static str,
    dir: &'static Dir<'static>,
    prefix: &'static str,
}

impl BuiltinPack {
    /// The pack's rule files (`.yml`), in path order, named `content/sigma/…` in messages.
    pub fn sources(&self) -> Vec<RuleSource> {
        let mut sources = Vec::new();
        collect(self.dir, self.prefix, &mut sources);
        sources.sort_by(|left, right| left.name.cmp(&right.name));
        sources
    }
}

fn collect(dir: &Dir<'_>, prefix: &str, sources: &mut Vec<RuleSource>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(child) => collect(child, prefix, sources),
            DirEntry::File(file) => {
                let path = file.path();
                let is_rule = path
                    .extension()
                    .is_some_and(|extension| extension == "yml" || extension == "yaml");
                if let (true, Some(text)) = (is_rule, file.contents_utf8()) {
                    sources.push(RuleSource {
                        name: format!("{prefix}/{}", path.display()),
                        text: text.to_owned(),
                    });
                }
            }
        }
    }
}

/// The built-in packs, in a stable order.
pub const BUILTIN_PACKS: [BuiltinPack; 2] = [
    BuiltinPack {
        id: SIGMAHQ_CLOUD,
        name: "SigmaHQ cloud rules",
        description: "The SigmaHQ rules for cloud log sources (AWS CloudTrail, Azure, GCP, M365), \
                      unmodified, under the Detection Rule License 1.1.",
        dir: &SIGMAHQ_DIR,
        prefix: "content/sigma/cloud",
    },
    BuiltinPack {
        id: PALISADE_CORRELATIONS,
        name: "Palisade activity correlations",
        description: "Correlations mirroring the classic SCC activity findings: repeated failed \
                      logins, mass deletion, changes outside the change window, logging \
                      disabled, root account use.",
        dir: &PALISADE_DIR,
        prefix: "content/sigma/palisade",
    },
];

/// Finds a built-in pack by id.
pub fn builtin_pack(id: &str) -> Option<&'static BuiltinPack> {
    BUILTIN_PACKS.iter().find(|pack| pack.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use palisade_sigma::{PackParameters, load_pack};

    #[test]
    fn builtin_packs_embed_every_rule_file_and_load() {
        let cloud = builtin_pack(SIGMAHQ_CLOUD).expect("cloud pack").sources();
        assert_eq!(cloud.len(), 225, "the SigmaHQ cloud rules");
        assert!(
            cloud
                .iter()
                .all(|source| source.name.starts_with("content/sigma/cloud/"))
        );
        let (pack, errors) = load_pack(&cloud, &PackParameters::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(pack.detection_rules().len(), 225);

        let palisade = builtin_pack(PALISADE_CORRELATIONS)
            .expect("palisade pack")
            .sources();
        assert!(!palisade.is_empty());
        let (pack, errors) = load_pack(&palisade, &PackParameters::default());
        assert!(errors.is_empty(), "{errors:?}");
        assert!(pack.has_correlations());
    }
}
