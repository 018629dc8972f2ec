//! The corrected tree of a stream snapshot.
//!
//! rustic_core 0.13 archives a stream (a file whose size is not known before it is read)
//! with the size its node was given, and never sets it after reading: a dump's node says
//! size 0, and stock `restic restore` then writes an empty file. Cairn knows the size once
//! the stream ends, so it writes the one-node tree again with that size, in a pack of its
//! own with an index file, and a snapshot that points at it (restic's repository design:
//! <https://restic.readthedocs.io/en/stable/100_references.html#repository-format>), then
//! removes the snapshot rustic_core saved. The first tree stays behind, unreferenced, for
//! the next prune.

use aes256ctr_poly1305aes::aead::Aead;
use aes256ctr_poly1305aes::{Aes256CtrPoly1305Aes, Key};
use bytes::Bytes;
use rand::RngCore;
use rustic_core::repofile::{MasterKey, SnapshotFile, Tree};
use rustic_core::{FileType, Id, WriteBackend};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::backend::StoreBackend;
use crate::engine::EngineError;

/// The pack header's type of an uncompressed tree blob.
const TREE_BLOB: u8 = 1;

/// restic's encryption: a random IV, AES-256-CTR, and the Poly1305-AES MAC after.
fn encrypt(key: &MasterKey, plain: &[u8]) -> Result<Vec<u8>, EngineError> {
    let mut material = Vec::with_capacity(64);
    material.extend_from_slice(&key.encrypt);
    material.extend_from_slice(&key.mac.k);
    material.extend_from_slice(&key.mac.r);
    if material.len() != 64 {
        return Err(EngineError::Repository("the repository's key is not a restic key".into()));
    }
    let cipher = Aes256CtrPoly1305Aes::new(Key::from_slice(&material));
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(&nonce.into(), plain)
        .map_err(|e| EngineError::Repository(format!("encrypting for the repository failed: {e}")))?;
    Ok([&nonce[..], &sealed].concat())
}

fn id_of(data: &[u8]) -> Id {
    let digest: [u8; 32] = Sha256::digest(data).into();
    Id::new(digest)
}

/// One pack holding one uncompressed tree blob: the blob, its encrypted header, and the
/// header's length. Answers the pack and the blob's stored length.
fn tree_pack(key: &MasterKey, tree: &[u8]) -> Result<(Vec<u8>, u32), EngineError> {
    let blob = encrypt(key, tree)?;
    let length = u32::try_from(blob.len()).map_err(|_| EngineError::Repository("a tree too large for one blob".into()))?;
    let mut header = vec![TREE_BLOB];
    header.extend_from_slice(&length.to_le_bytes());
    header.extend_from_slice(&Sha256::digest(tree));
    let header = encrypt(key, &header)?;
    let header_length = u32::try_from(header.len()).unwrap_or(u32::MAX);
    let mut pack = blob;
    pack.extend_from_slice(&header);
    pack.extend_from_slice(&header_length.to_le_bytes());
    Ok((pack, length))
}

/// Rewrites `snap` (saved by rustic_core with a root tree `tree` of one file node) so its
/// file says `size` bytes; answers the snapshot as saved, with its new id.
///
/// # Errors
/// The store failed; the snapshot rustic_core saved is then left as it is.
pub fn resize_stream(
    backend: &StoreBackend,
    key: &MasterKey,
    snap: &SnapshotFile,
    mut tree: Tree,
    size: u64,
) -> Result<SnapshotFile, EngineError> {
    for node in &mut tree.nodes {
        node.meta.size = size;
    }
    let mut plain = serde_json::to_vec(&tree).map_err(|e| EngineError::Repository(e.to_string()))?;
    plain.push(b'\n'); // as restic writes trees
    let tree_id = id_of(&plain);
    let (pack, length) = tree_pack(key, &plain)?;
    let pack_id = id_of(&pack);
    backend.put(FileType::Pack, &pack_id, Bytes::from(pack)).map_err(super::failed)?;
    let index = json!({"packs": [{"id": pack_id.to_hex().as_str(), "blobs": [
        {"id": tree_id.to_hex().as_str(), "type": "tree", "offset": 0, "length": length}
    ]}]});
    write_file(backend, key, FileType::Index, &serde_json::to_vec(&index).unwrap_or_default())?;
    let mut fixed = snap.clone();
    fixed.tree = tree_id.into();
    let body = serde_json::to_vec(&fixed).map_err(|e| EngineError::Repository(e.to_string()))?;
    fixed.id = write_file(backend, key, FileType::Snapshot, &body)?.into();
    let saved: Id = *snap.id;
    backend.remove(FileType::Snapshot, &saved, false).map_err(super::failed)?;
    Ok(fixed)
}

/// Writes an encrypted JSON file (plain JSON is valid in version 2 beside compressed);
/// its id is the SHA-256 of what is stored.
fn write_file(backend: &StoreBackend, key: &MasterKey, tpe: FileType, json: &[u8]) -> Result<Id, EngineError> {
    let sealed = encrypt(key, json)?;
    let id = id_of(&sealed);
    backend.put(tpe, &id, Bytes::from(sealed)).map_err(super::failed)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes256ctr_poly1305aes::aead::Aead;

    #[test]
    fn what_is_encrypted_decrypts_with_the_same_key_and_not_with_another() {
        let key = MasterKey::new();
        let sealed = encrypt(&key, b"tree").unwrap();
        let material = [&key.encrypt[..], &key.mac.k, &key.mac.r].concat();
        let cipher = Aes256CtrPoly1305Aes::new(Key::from_slice(&material));
        let nonce: [u8; 16] = sealed[..16].try_into().unwrap();
        assert_eq!(cipher.decrypt(&nonce.into(), &sealed[16..]).unwrap(), b"tree");
        let other = MasterKey::new();
        let material = [&other.encrypt[..], &other.mac.k, &other.mac.r].concat();
        let cipher = Aes256CtrPoly1305Aes::new(Key::from_slice(&material));
        assert!(cipher.decrypt(&nonce.into(), &sealed[16..]).is_err());
    }

    #[test]
    fn a_tree_pack_ends_with_its_header_and_the_header_length() {
        let key = MasterKey::new();
        let (pack, length) = tree_pack(&key, b"{}\n").unwrap();
        // blob: IV + 3 bytes + MAC; header: IV + (1 + 4 + 32) + MAC; then 4 bytes.
        assert_eq!(length, 16 + 3 + 16);
        assert_eq!(pack.len(), 35 + (16 + 37 + 16) + 4);
        assert_eq!(u32::from_le_bytes(pack[pack.len() - 4..].try_into().unwrap()), 69);
    }
}
