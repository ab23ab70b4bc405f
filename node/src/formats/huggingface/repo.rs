//! Hugging Face repositories in Arca's storage. A repository (`models/<owner>/<name>` or
//! `datasets/<owner>/<name>`) is a package; each commit a version named by its commit id (40 hex
//! digits) holding every file of the tree at that commit (a file's bytes are a blob of the chunk
//! store, so a file that several commits share — unchanged weights — is stored once); branches and
//! tags are tags (`refs/heads/<branch>`, `refs/tags/<tag>`) pointing at commits. A commit's
//! parent, message and author, and which of its files are LFS files (with the id the Hub gives
//! each file: the git blob id of a regular file, the sha256 of an LFS one), are version attributes.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Command, Overwrite, Registry, Sha256};
use serde::{Deserialize, Serialize};
use sha1::Digest as _;

use crate::frontend::ApiError;
use crate::meta::StateRead;

/// The version attribute holding a commit's [`CommitInfo`], as JSON.
const COMMIT: &str = "hf.commit";
/// The version attribute holding the commit's tree: path to [`TreeFile`], as JSON.
const TREE: &str = "hf.tree";
/// The branch a repository starts with.
pub const DEFAULT_BRANCH: &str = "main";

/// Models or datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

impl RepoKind {
    /// The segment of the API's paths (`/api/models/...`) and of package names.
    pub fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }

    pub fn from_plural(segment: &str) -> Option<RepoKind> {
        match segment {
            "models" => Some(RepoKind::Model),
            "datasets" => Some(RepoKind::Dataset),
            _ => None,
        }
    }

    /// The `type` of `create_repo` (`None` is a model).
    pub fn from_type(kind: Option<&str>) -> Option<RepoKind> {
        match kind {
            None | Some("model") => Some(RepoKind::Model),
            Some("dataset") => Some(RepoKind::Dataset),
            _ => None,
        }
    }
}

/// A repository: its kind and `<owner>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoId {
    pub kind: RepoKind,
    pub id: String,
}

/// A repository name part: letters, digits, `-`, `_` and `.`, at most 96 characters, not starting
/// or ending with `-` or `.`, no `..` or `--`.
fn is_name_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 96
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !part.starts_with(['-', '.'])
        && !part.ends_with(['-', '.'])
        && !part.contains("..")
        && !part.contains("--")
}

impl RepoId {
    /// `owner/name` of `kind`, checked.
    pub fn new(kind: RepoKind, owner: &str, name: &str) -> Result<RepoId, ApiError> {
        if !is_name_part(owner) || !is_name_part(name) {
            return Err(ApiError::invalid(format!(
                "invalid repository id {owner}/{name}: letters, digits, '-', '_' and '.'"
            )));
        }
        Ok(RepoId {
            kind,
            id: format!("{owner}/{name}"),
        })
    }

    /// The package the repository is stored as.
    pub fn package(&self) -> String {
        format!("{}/{}", self.kind.plural(), self.id)
    }
}

/// What a commit records besides its files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommitInfo {
    #[serde(default)]
    pub parent: Option<String>,
    pub summary: String,
    #[serde(default)]
    pub description: String,
    pub author: String,
    /// Commit time, unix milliseconds.
    pub at: u64,
}

/// One file of a commit's tree, as the Hub describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeFile {
    /// Stored through Git LFS (large or binary files): its id is its sha256.
    pub lfs: bool,
    /// The git blob id (sha1 of `blob <size>\0<bytes>`) of a regular file; the sha256 of an LFS one.
    pub oid: String,
}

/// A commit: its id, what it records and its files.
#[derive(Debug, Clone)]
pub struct Commit {
    pub id: String,
    pub info: CommitInfo,
    pub files: BTreeMap<String, CommitFile>,
}

/// One file of a commit.
#[derive(Debug, Clone)]
pub struct CommitFile {
    pub tree: TreeFile,
    pub size: u64,
    /// Its bytes; `None` for a file a remote registry has not fetched yet.
    pub blob: Option<BlobRef>,
}

/// The git blob id of `bytes`.
pub fn git_blob_id(bytes: &[u8]) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("blob {}\0", bytes.len()).as_bytes());
    hasher.update(bytes);
    hex::encode(hasher.finalize())
}

/// A file path in a repository: relative, `/`-separated, no empty, `.` or `..` parts.
pub fn check_path(path: &str) -> Result<(), ApiError> {
    let valid = !path.is_empty()
        && path.len() <= 1024
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("invalid file path {path:?}")))
    }
}

/// The tag a branch is stored as.
pub fn branch_tag(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

/// The tag a tag is stored as.
pub fn tag_tag(tag: &str) -> String {
    format!("refs/tags/{tag}")
}

/// A branch or tag name: no `..`, no control characters, spaces or `~^:?*[\`, not starting or
/// ending with `/` or `.`.
pub fn check_ref_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 255
        && !name.contains("..")
        && !name.starts_with(['/', '.', '-'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("//")
        && name.chars().all(|c| {
            c.is_ascii_graphic() && !matches!(c, '~' | '^' | ':' | '?' | '*' | '[' | '\\')
        });
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "invalid branch or tag name {name:?}"
        )))
    }
}

/// The commit `revision` names in `registry`'s `repo`: a branch, a tag (either also as
/// `refs/heads/...`/`refs/tags/...`) or a commit id; `None` when it names none.
pub fn resolve_revision(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    repo: &RepoId,
    revision: &str,
) -> Result<Option<String>, ApiError> {
    let package = repo.package();
    let candidates = if revision.starts_with("refs/") {
        vec![revision.to_string()]
    } else {
        vec![branch_tag(revision), tag_tag(revision)]
    };
    for tag in candidates {
        if let Some(commit) = view.tag(registry, &package, &tag)? {
            return Ok(Some(commit));
        }
    }
    let is_commit_id = revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit());
    if is_commit_id && view.version(registry, &package, revision)?.is_some() {
        return Ok(Some(revision.to_string()));
    }
    Ok(None)
}

/// The commit `id` of `registry`'s `repo`, with its files.
pub fn read_commit(
    view: &(impl StateRead + ?Sized),
    registry: &str,
    repo: &RepoId,
    id: &str,
) -> Result<Option<Commit>, ApiError> {
    let Some(version) = view.version(registry, &repo.package(), id)? else {
        return Ok(None);
    };
    let info: CommitInfo = version
        .attributes
        .get(COMMIT)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let tree: BTreeMap<String, TreeFile> = version
        .attributes
        .get(TREE)
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let mut files = BTreeMap::new();
    for (path, entry) in &version.files {
        let Some(blob) = view.blob(&entry.sha256)? else {
            continue;
        };
        let described = tree.get(path).cloned().unwrap_or_else(|| TreeFile {
            lfs: true,
            oid: entry.sha256.to_hex(),
        });
        files.insert(
            path.clone(),
            CommitFile {
                tree: described,
                size: blob.size,
                blob: Some(blob),
            },
        );
    }
    Ok(Some(Commit {
        id: id.to_string(),
        info,
        files,
    }))
}

/// A change a commit makes to its parent's tree.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Adds or replaces a file.
    Put {
        path: String,
        file: TreeFile,
        blob: BlobRef,
    },
    /// Deletes a file (a missing one is an error).
    Delete(String),
    /// Deletes every file under a folder.
    DeleteFolder(String),
    /// Copies a file of the parent tree.
    Copy { from: String, to: String },
}

/// The id of a commit of `tree` on `parent` with `info`: a sha1 over all of them, in the form
/// of a git commit id.
fn commit_id(
    parent: Option<&str>,
    tree: &BTreeMap<String, (TreeFile, BlobRef)>,
    info: &CommitInfo,
) -> String {
    let mut hasher = sha1::Sha1::new();
    hasher.update(format!("parent {}\n", parent.unwrap_or("-")).as_bytes());
    for (path, (file, blob)) in tree {
        hasher.update(
            format!(
                "{path}\0{}\0{}\0{}\n",
                file.oid,
                blob.sha256.to_hex(),
                blob.size
            )
            .as_bytes(),
        );
    }
    hasher.update(
        format!(
            "{}\n{}\n{}\n{}",
            info.author, info.at, info.summary, info.description
        )
        .as_bytes(),
    );
    hex::encode(hasher.finalize())
}

/// The commands committing `operations` on `parent` (`None`: the first commit) of `repo` in
/// `registry` as branch `branch`'s new head, and the new commit's id.
pub fn commit_commands(
    registry: &Registry,
    repo: &RepoId,
    branch: &str,
    parent: Option<&Commit>,
    operations: Vec<Operation>,
    mut info: CommitInfo,
) -> Result<(Vec<Command>, String), ApiError> {
    let mut tree: BTreeMap<String, (TreeFile, BlobRef)> = parent
        .map(|p| {
            p.files
                .iter()
                .filter_map(|(path, file)| {
                    Some((path.clone(), (file.tree.clone(), file.blob.clone()?)))
                })
                .collect()
        })
        .unwrap_or_default();
    for operation in operations {
        match operation {
            Operation::Put { path, file, blob } => {
                check_path(&path)?;
                tree.insert(path, (file, blob));
            }
            Operation::Delete(path) => {
                if tree.remove(&path).is_none() {
                    return Err(ApiError::not_found(format!("no file {path} to delete")));
                }
            }
            Operation::DeleteFolder(folder) => {
                let prefix = format!("{}/", folder.trim_end_matches('/'));
                tree.retain(|path, _| !path.starts_with(&prefix));
            }
            Operation::Copy { from, to } => {
                check_path(&to)?;
                let source = tree
                    .get(&from)
                    .cloned()
                    .ok_or_else(|| ApiError::not_found(format!("no file {from} to copy")))?;
                tree.insert(to, source);
            }
        }
    }
    if tree.is_empty() {
        return Err(ApiError::invalid(
            "a commit must leave at least one file in the repository",
        ));
    }
    info.parent = parent.map(|p| p.id.clone());
    let id = commit_id(info.parent.as_deref(), &tree, &info);
    let package = repo.package();
    let described: BTreeMap<&String, &TreeFile> =
        tree.iter().map(|(path, (file, _))| (path, file)).collect();
    let attributes = BTreeMap::from([
        (
            COMMIT.to_string(),
            serde_json::to_string(&info).map_err(ApiError::internal)?,
        ),
        (
            TREE.to_string(),
            serde_json::to_string(&described).map_err(ApiError::internal)?,
        ),
    ]);
    let mut commands: Vec<Command> = tree
        .iter()
        .enumerate()
        .map(|(n, (path, (_, blob)))| Command::PutFile {
            registry: registry.name.clone(),
            package: package.clone(),
            version: id.clone(),
            filename: path.clone(),
            blob: blob.clone(),
            attributes: if n == 0 {
                attributes.clone()
            } else {
                BTreeMap::new()
            },
            tags: Vec::new(),
            overwrite: if n == 0 {
                Overwrite::RefuseVersion
            } else {
                Overwrite::Allow
            },
            at: info.at,
        })
        .collect();
    commands.push(Command::SetTag {
        registry: registry.name.clone(),
        package,
        tag: branch_tag(branch),
        version: id.clone(),
    });
    Ok((commands, id))
}

/// The sha256 an LFS object id names; `None` when it is not 64 hex digits.
pub fn lfs_oid(oid: &str) -> Option<Sha256> {
    (oid.len() == 64).then(|| oid.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_paths_and_refs_are_checked() {
        assert!(RepoId::new(RepoKind::Model, "acme", "bert-base.v2").is_ok());
        assert!(RepoId::new(RepoKind::Model, "acme", "../x").is_err());
        assert!(RepoId::new(RepoKind::Dataset, "-a", "b").is_err());
        assert_eq!(
            RepoId::new(RepoKind::Dataset, "acme", "squad")
                .map(|r| r.package())
                .ok()
                .as_deref(),
            Some("datasets/acme/squad")
        );
        assert!(check_path("weights/model.safetensors").is_ok());
        for bad in ["", "/etc/passwd", "a/../b", "a//b", "a\\b", "./a"] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        assert!(check_ref_name("v1.0").is_ok() && check_ref_name("feature/x").is_ok());
        assert!(check_ref_name("a..b").is_err() && check_ref_name("a b").is_err());
        // `git hash-object` of "hello\n".
        assert_eq!(
            git_blob_id(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
