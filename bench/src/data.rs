//! Blocking work that is the same for every benchmark: generating incompressible data (as a file or in
//! memory), the plain-copy baseline, and hashing a file to verify it.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

/// Size of the blocks the source is generated in and the copy baseline moves.
pub const BLOCK: usize = 8 << 20;

/// An endless source of pseudo-random bytes: the blake3 extendable output of `seed` under the key
/// derived from `context`. The bytes neither compress nor repeat, so content-defined chunking finds no
/// duplicate chunks within them, and different seeds (or contexts) give unrelated bytes.
pub fn pseudo_random(context: &str, seed: &[u8]) -> blake3::OutputReader {
    blake3::Hasher::new_derive_key(context)
        .update(seed)
        .finalize_xof()
}

/// Returns `size` bytes of [`pseudo_random`] data for `context` and `seed`, and their lowercase hex
/// sha256.
pub fn random_bytes(context: &str, seed: &[u8], size: usize) -> (Vec<u8>, String) {
    let mut bytes = vec![0u8; size];
    pseudo_random(context, seed).fill(&mut bytes);
    let sha256 = hex::encode(Sha256::digest(&bytes));
    (bytes, sha256)
}

/// Writes `size` pseudo-random bytes to `path` in [`BLOCK`]-sized blocks, fsyncs the file, and returns
/// the lowercase hex sha256 of what was written.
///
/// The bytes are [`pseudo_random`], keyed by a fixed context and the size.
pub fn generate(path: &Path, size: u64) -> anyhow::Result<String> {
    generate_seeded(path, size, &size.to_le_bytes())
}

/// [`generate`], with the bytes keyed by `seed` instead of the size: different seeds give
/// unrelated files, which no chunk store can deduplicate against each other.
pub fn generate_seeded(path: &Path, size: u64, seed: &[u8]) -> anyhow::Result<String> {
    let mut file =
        File::create_new(path).with_context(|| format!("creating {}", path.display()))?;
    let mut xof = pseudo_random("arca-bench 2025 generic source file", seed);
    let mut sha = Sha256::new();
    let mut block = vec![0u8; BLOCK];
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left).map_or(BLOCK, |left| left.min(BLOCK));
        let part = &mut block[..n];
        xof.fill(part);
        sha.update(&*part);
        file.write_all(part)
            .with_context(|| format!("writing {}", path.display()))?;
        left -= n as u64;
    }
    file.sync_all()
        .with_context(|| format!("syncing {}", path.display()))?;
    Ok(hex::encode(sha.finalize()))
}

/// Copies `from` to a new file `to` through a [`BLOCK`]-sized buffer, fsyncs it, and returns the number
/// of bytes copied.
///
/// Deliberately plain reads and writes rather than `copy_file_range`, which may reflink or copy inside
/// the kernel: this is what any process that receives bytes and stores them must at least do.
pub fn copy(from: &Path, to: &Path) -> anyhow::Result<u64> {
    let mut input = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut output = File::create_new(to).with_context(|| format!("creating {}", to.display()))?;
    let mut block = vec![0u8; BLOCK];
    let mut copied = 0u64;
    loop {
        let n = input
            .read(&mut block)
            .with_context(|| format!("reading {}", from.display()))?;
        if n == 0 {
            break;
        }
        output
            .write_all(&block[..n])
            .with_context(|| format!("writing {}", to.display()))?;
        copied += n as u64;
    }
    output
        .sync_all()
        .with_context(|| format!("syncing {}", to.display()))?;
    Ok(copied)
}

/// Reads `path` and returns its size and lowercase hex sha256.
pub fn sha256_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut input = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut sha = Sha256::new();
    let mut block = vec![0u8; BLOCK];
    let mut size = 0u64;
    loop {
        let n = input
            .read(&mut block)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        sha.update(&block[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(sha.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_hashes_and_copies_faithfully() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let source = dir.path().join("source");
        let size = BLOCK as u64 + 12_345;
        let sha = generate(&source, size)?;
        assert_eq!(sha256_file(&source)?, (size, sha.clone()));

        let copied = dir.path().join("copy");
        assert_eq!(copy(&source, &copied)?, size);
        assert_eq!(sha256_file(&copied)?, (size, sha));

        // Incompressible and non-repeating: the two halves of the first block differ.
        let bytes = std::fs::read(&source)?;
        assert_ne!(bytes[..BLOCK / 2], bytes[BLOCK / 2..BLOCK]);
        Ok(())
    }

    #[test]
    fn random_bytes_follow_their_seed() {
        let (a, sha_a) = random_bytes("test", b"a", 1000);
        assert_eq!(a.len(), 1000);
        assert_eq!(sha_a, hex::encode(Sha256::digest(&a)));
        assert_eq!(random_bytes("test", b"a", 1000), (a.clone(), sha_a));
        // A longer output starts with the shorter one; another seed gives other bytes.
        assert_eq!(random_bytes("test", b"a", 2000).0[..1000], a[..]);
        assert_ne!(random_bytes("test", b"b", 1000).0, a);
    }
}
