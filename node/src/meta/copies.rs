//! Pushes acknowledged only once enough nodes hold their bytes: a registry's `min_copies`
//! ([`arca_protocol::RegistrySettings`]). Before a write that carries new blobs commits, this node
//! asks other full members to hold each blob durably now ([`PeerRequest::HoldBlob`]: the peer
//! fetches the chunks from here and writes them to its disk), members of other sites first, one per
//! site, so the copies survive losing a node or a site; when this node's chunks are in a bucket its
//! site shares, only members of other sites count (the bucket is one copy). The write commits only when enough of them
//! said yes; otherwise it is refused with [`CommandError::Retry`] (503) and nothing is recorded.

use std::time::Duration;

use arca_protocol::cluster::{PeerRequest, PeerResponse};
use arca_protocol::{BlobRef, Command, CommandError, NodeRole};
use futures::StreamExt;

use super::{Meta, ProposeError, StateRead};

/// The transfer rate a copy is given time for (beyond the write timeout): 8 MiB/s.
const COPY_BYTES_PER_SECOND: u64 = 8 << 20;

impl Meta {
    /// Makes every blob of `command` that is stored here (with chunks) held by as many nodes as its
    /// registry's `min_copies` asks, this one included.
    pub(super) async fn place_copies(&self, command: &Command) -> Result<(), ProposeError> {
        let mut wanted: Vec<(u32, &BlobRef)> = Vec::new();
        for (registry, blob) in command.blobs_by_registry() {
            if blob.chunks.is_empty() {
                continue;
            }
            let copies = self
                .read(|view| view.registry_settings(registry))?
                .min_copies
                .unwrap_or(1);
            if copies > 1 && !wanted.iter().any(|(_, known)| known.sha256 == blob.sha256) {
                wanted.push((copies, blob));
            }
        }
        for (copies, blob) in wanted {
            self.hold_elsewhere(blob, copies - 1).await?;
        }
        Ok(())
    }

    /// Asks other full members to hold `blob` until `count` of them did.
    async fn hold_elsewhere(&self, blob: &BlobRef, count: u32) -> Result<(), ProposeError> {
        let candidates = self.copy_candidates();
        let limit = self.write_timeout + Duration::from_secs(blob.size / COPY_BYTES_PER_SECOND);
        let asked = candidates.len();
        let mut answers = futures::stream::iter(candidates)
            .map(|addr| async move {
                let request = PeerRequest::HoldBlob(Box::new(blob.clone()));
                let answer = self.network.call(&addr, request, Some(limit)).await;
                (addr, answer)
            })
            .buffer_unordered(count as usize);
        let mut held = 0;
        let mut failures = Vec::new();
        while let Some((addr, answer)) = answers.next().await {
            match answer {
                Ok(PeerResponse::Held) => {
                    held += 1;
                    if held == count {
                        return Ok(());
                    }
                }
                Ok(other) => failures.push(format!("{addr}: answered {other:?}")),
                Err(error) => failures.push(format!("{addr}: {error}")),
            }
        }
        tracing::warn!(blob = %blob.sha256, held, count, ?failures, "too few nodes took a copy");
        Err(ProposeError::Refused(CommandError::Retry(format!(
            "the registry wants {} copies of every push, and only {} of {} other nodes could hold \
             this one ({})",
            count + 1,
            held,
            asked,
            if failures.is_empty() {
                "the cluster has too few full nodes".to_string()
            } else {
                failures.join("; ")
            }
        ))))
    }

    /// The other full members' QUIC addresses, in the order to ask them: the nearest of each other
    /// site first, then the others of other sites, then those of this node's site, unless this
    /// node's chunks are in a bucket its site shares (its site's nodes then hold the same copy).
    fn copy_candidates(&self) -> Vec<String> {
        let site_shares_one_copy = self
            .chunks
            .get()
            .is_some_and(|chunks| chunks.shared_fence().is_some());
        let own = self.node_id();
        let members = self.members();
        let own_site = members
            .iter()
            .find(|(id, _)| *id == own)
            .map(|(_, node)| node.site.clone());
        let mut others: Vec<(bool, std::time::Duration, String, String)> = members
            .into_iter()
            .filter(|(id, node)| *id != own && node.role == NodeRole::Full)
            .filter(|(_, node)| !(site_shares_one_copy && Some(&node.site) == own_site.as_ref()))
            .map(|(_, node)| {
                let rtt = self.network.round_trip(&node.quic).unwrap_or(Duration::MAX);
                (
                    Some(&node.site) == own_site.as_ref(),
                    rtt,
                    node.site,
                    node.quic,
                )
            })
            .collect();
        others.sort();
        let mut sites_seen = std::collections::HashSet::new();
        let (first, rest): (Vec<_>, Vec<_>) = others
            .into_iter()
            .partition(|(same_site, _, site, _)| !same_site && sites_seen.insert(site.clone()));
        first
            .into_iter()
            .chain(rest)
            .map(|(_, _, _, addr)| addr)
            .collect()
    }
}
