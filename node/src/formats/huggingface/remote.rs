//! Remote Hugging Face registries: a caching proxy of an upstream hub (the upstream URL is its
//! endpoint, such as `https://huggingface.co`, or another Arca's `/hf/<registry>`). A repository's
//! information at a revision is a cached document (so a branch moves upstream within the TTL); a
//! file is fetched once from the upstream's `resolve` URL at the commit the information named,
//! checked against its sha256 when it is an LFS file, and kept as a file of that commit.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Registry};
use axum::http::StatusCode;
use serde_json::Value;

use super::repo::{Commit, CommitFile, CommitInfo, RepoId, RepoKind, TreeFile};
use super::{Context, ENTRY_NOT_FOUND};
use crate::frontend::{ApiError, read_small_blob};
use crate::meta::StateRead;
use crate::proxy::{self, Expected, ProxyError};

fn upstream_error(why: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "UPSTREAM",
        format!("the upstream hub: {why}"),
    )
}

/// The upstream's commit `revision` names in `repo`, from its repository information; `None` when
/// the upstream has no such repository or revision.
pub(super) async fn commit(
    ctx: &Context<'_>,
    member: &Registry,
    repo: &RepoId,
    revision: &str,
) -> Result<Option<Commit>, ApiError> {
    let encoded = crate::frontend::percent_encode(revision);
    let path = format!("api/{}/{}/revision/{encoded}", repo.kind.plural(), repo.id);
    let key = format!("hf.info/{}/{}", repo.package(), revision);
    let document = match ctx
        .state
        .proxy
        .document(ctx.state, member, &key, &path, Some("application/json"))
        .await
    {
        Ok(document) => document,
        Err(ProxyError::NotFound(_)) => return Ok(None),
        Err(error) => return Err(error.into()),
    };
    let bytes = read_small_blob(ctx.state, &document.cached.blob).await?;
    let info: Value = serde_json::from_slice(&bytes).map_err(upstream_error)?;
    let id = info
        .get("sha")
        .and_then(Value::as_str)
        .filter(|sha| sha.len() == 40 && sha.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| upstream_error(format!("{path} names no commit")))?;
    let mut files = BTreeMap::new();
    for sibling in info
        .get("siblings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(path) = sibling.get("rfilename").and_then(Value::as_str) else {
            continue;
        };
        let lfs = sibling.get("lfs");
        let lfs_oid = lfs.and_then(|l| l.get("sha256")).and_then(Value::as_str);
        let oid = lfs_oid
            .or_else(|| sibling.get("blobId").and_then(Value::as_str))
            .unwrap_or_default()
            .to_string();
        let size = sibling
            .get("size")
            .or_else(|| lfs.and_then(|l| l.get("size")))
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // A file already fetched at this commit is served from here.
        let blob = ctx.state.meta.read(|view| {
            let stored = view
                .version(&member.name, &repo.package(), id)?
                .and_then(|version| version.files.get(path).cloned());
            match stored {
                Some(file) => view.blob(&file.sha256),
                None => Ok(None),
            }
        })?;
        files.insert(
            path.to_string(),
            CommitFile {
                tree: TreeFile {
                    lfs: lfs_oid.is_some(),
                    oid,
                },
                size,
                blob,
            },
        );
    }
    let at = info
        .get("lastModified")
        .and_then(Value::as_str)
        .and_then(|at| humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).ok())
        .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |since| since.as_millis() as u64);
    Ok(Some(Commit {
        id: id.to_string(),
        info: CommitInfo {
            at,
            ..CommitInfo::default()
        },
        files,
    }))
}

/// Fetches `path` of `commit` from the upstream (once: it is kept as a file of the commit),
/// checking an LFS file against its sha256.
pub(super) async fn file(
    ctx: &Context<'_>,
    member: &Registry,
    repo: &RepoId,
    commit: &Commit,
    path: &str,
    file: &CommitFile,
) -> Result<BlobRef, ApiError> {
    let prefix = match repo.kind {
        RepoKind::Model => "",
        RepoKind::Dataset => "datasets/",
    };
    let url = format!("{prefix}{}/resolve/{}/{path}", repo.id, commit.id);
    let sha256 = if file.tree.lfs {
        file.tree.oid.parse().ok()
    } else {
        None
    };
    let found = proxy::find_or_fetch_file(
        ctx.state,
        std::slice::from_ref(member),
        (&repo.package(), &commit.id, path),
        |_| {
            Some((
                url.clone(),
                Expected {
                    sha256,
                    ..Expected::default()
                },
            ))
        },
    )
    .await;
    match found {
        Ok(Some((_, blob))) => Ok(blob),
        Ok(None) | Err(ProxyError::NotFound(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ENTRY_NOT_FOUND,
            format!("{path} does not exist upstream at {}", commit.id),
        )),
        Err(error) => Err(error.into()),
    }
}

/// The upstream's branches and tags of `repo` (its `refs` document, cached); `None` when it has
/// no such repository.
pub(super) async fn refs(
    ctx: &Context<'_>,
    member: &Registry,
    repo: &RepoId,
) -> Result<Option<Value>, ApiError> {
    let path = format!("api/{}/{}/refs", repo.kind.plural(), repo.id);
    let key = format!("hf.refs/{}", repo.package());
    match ctx
        .state
        .proxy
        .document(ctx.state, member, &key, &path, Some("application/json"))
        .await
    {
        Ok(document) => {
            let bytes = read_small_blob(ctx.state, &document.cached.blob).await?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(upstream_error)
        }
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
