//! Retention in a repository: forgetting snapshots, and pruning the data no snapshot
//! references any more.
//!
//! rustic_core takes no locks, so Cairn serialises prunes of one repository with a
//! DynamoDB claim (see the runner's retention). A backup running meanwhile loses nothing:
//! rustic_core prunes in two phases, marking unused packs (and packs it finds in no index,
//! such as a running backup's) for deletion and deleting them only in a prune at least 23
//! hours later, which first takes back every pack a snapshot uses by then.

use rustic_core::repofile::SnapshotId;
use rustic_core::PruneOptions;

use super::{failed, OpenRepository};
use crate::engine::EngineError;

/// Forgets the snapshots `ids` (those already gone are skipped); answers how many were
/// removed.
///
/// # Errors
/// The repository could not be listed or written.
pub fn forget(repo: &OpenRepository, ids: &[String]) -> Result<usize, EngineError> {
    let present: Vec<SnapshotId> = repo
        .get_all_snapshots()
        .map_err(failed)?
        .into_iter()
        .filter(|s| ids.contains(&super::hex(&s.id)))
        .map(|s| s.id)
        .collect();
    if !present.is_empty() {
        repo.delete_snapshots(&present).map_err(failed)?;
    }
    Ok(present.len())
}

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Packs no snapshot uses, marked for deletion now.
    pub packs_marked: u64,
    /// Packs marked by an earlier prune and deleted now.
    pub packs_deleted: u64,
    /// Packs marked earlier that a snapshot uses again, taken back.
    pub packs_recovered: u64,
}

/// Prunes data no snapshot references, in rustic_core's two phases (see the module).
///
/// # Errors
/// The repository could not be read or written; the repository stays consistent.
pub fn prune(repo: &OpenRepository) -> Result<Pruned, EngineError> {
    let options = PruneOptions::default();
    let plan = repo.prune_plan(&options).map_err(failed)?;
    let pruned = Pruned {
        packs_marked: plan.stats.packs.unused,
        packs_deleted: plan.stats.packs_to_delete.remove,
        packs_recovered: plan.stats.packs_to_delete.recover,
    };
    repo.prune(&options, plan).map_err(failed)?;
    Ok(pruned)
}
