//! Hugging Face model and dataset repositories under `/hf/<registry>`, the `HF_ENDPOINT` that
//! `huggingface_hub` (and `transformers`, `datasets`) take: repository creation, information at a
//! revision (`/api/models/<id>/revision/<rev>`, its files as `siblings`), trees, refs, branches
//! and tags, downloads (`/<id>/resolve/<rev>/<path>`, with the commit, ETag and size headers the
//! client caches by, and ranges), and uploads as the client makes them: `preupload` (which files go
//! through LFS), the Git LFS batch API with Arca as the object store, and `commit` (NDJSON
//! operations). Datasets are the same under `datasets/`.
//!
//! Storage mapping: see [`repo`]. LFS objects are linked to the repository when they arrive (so
//! they survive garbage collection until the commit that names them), and a commit naming an
//! object the repository does not hold is refused, storing nothing.
//!
//! Remote registries proxy an upstream hub (see [`remote`]); virtual ones read through their
//! members, the first that has the repository answering, and take commits into their publish
//! target. Errors are the Hub's: JSON `{"error": ...}` with `X-Error-Code` (`RepoNotFound`,
//! `RevisionNotFound`, `EntryNotFound`) and `X-Error-Message`.

mod remote;
mod repo;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use arca_protocol::{Command, PackageType, Registry, RegistryKind, Role};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, authenticate};
use crate::frontend::{ApiError, receive_blob, serve_file, unless_refused};
use crate::meta::{ProposeError, StateRead};
use crate::proxy;
use crate::usage::Download;
use repo::{Commit, CommitInfo, Operation, RepoId, RepoKind, TreeFile};

/// Files at least this large go through LFS (as on the Hub).
const LFS_THRESHOLD: u64 = 10 * 1024 * 1024;
/// The largest commit request (its regular files travel inside it, base64).
const COMMIT_LIMIT: usize = 64 * 1024 * 1024;
/// The Hub's error code of a missing repository.
const REPO_NOT_FOUND: &str = "RepoNotFound";
/// The Hub's error code of a missing revision.
const REVISION_NOT_FOUND: &str = "RevisionNotFound";
/// The Hub's error code of a missing file.
const ENTRY_NOT_FOUND: &str = "EntryNotFound";

/// Commits on one node are made one at a time, so two on the same branch never both build on the
/// same head.
static COMMITS: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(Default::default);

/// Hugging Face repositories at `/hf/<registry>/`.
pub struct HuggingFace;

impl crate::frontend::FrontEnd for HuggingFace {
    fn segment(&self) -> &'static str {
        "hf"
    }

    fn routes(&self) -> Router<AppState> {
        Router::new().route(
            "/hf/{registry}/{*path}",
            any(crate::frontend::answering(route)),
        )
    }

    fn is_download(&self, path: &str) -> bool {
        path.contains("/resolve/")
    }
}

/// One request: the node, the caller and the registry it addresses.
struct Context<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    caller: Caller,
    registry: String,
}

impl Context<'_> {
    fn authorize(&self, needed: Role) -> Result<Registry, ApiError> {
        self.state.typed_registry(
            &self.caller,
            &self.registry,
            needed,
            PackageType::Huggingface,
        )
    }

    /// `http://host/hf/<registry>`, the client's endpoint.
    fn endpoint(&self) -> String {
        let origin =
            crate::http_server::public_origin(self.state.config.public_url.as_ref(), self.headers);
        format!("{origin}/hf/{}", self.registry)
    }

    /// The registry commits to `registry` go to.
    fn write_target(&self) -> Result<Registry, ApiError> {
        self.state.write_target(&self.authorize(Role::Write)?)
    }
}

/// The caller's name (a user's, else its token's), as a commit's author and the owner of a
/// repository created without one.
fn caller_name(ctx: &Context<'_>) -> String {
    ctx.caller
        .principal()
        .map(crate::auth::Principal::name)
        .unwrap_or_else(|| "anonymous".to_string())
}

fn repo_not_found(repo: &RepoId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        REPO_NOT_FOUND,
        format!("Repository {} not found", repo.id),
    )
}

fn revision_not_found(revision: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        REVISION_NOT_FOUND,
        format!("Invalid rev id: {revision}"),
    )
}

/// The Hub's error answer: JSON, with the code and message in headers too.
fn hub_error(error: ApiError) -> Response {
    let mut response =
        (error.status, axum::Json(json!({ "error": error.message }))).into_response();
    let headers = response.headers_mut();
    if [REPO_NOT_FOUND, REVISION_NOT_FOUND, ENTRY_NOT_FOUND].contains(&error.code) {
        headers.insert("x-error-code", HeaderValue::from_static(error.code));
    }
    let printable: String = error
        .message
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&printable) {
        headers.insert("x-error-message", value);
    }
    if error.status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"arca\""),
        );
    }
    response
}

/// Every request, its errors in the Hub's shape.
async fn route(
    state: AppState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, std::convert::Infallible> {
    Ok(answer(&state, method, &uri, &headers, body)
        .await
        .unwrap_or_else(hub_error))
}

async fn answer(
    state: &AppState,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no such endpoint {}", uri.path()));
    let (registry, path) =
        crate::frontend::registry_and_rest(uri.path(), "hf").ok_or_else(not_found)?;
    let segments: Vec<String> = path
        .split('/')
        .map(crate::frontend::percent_decode)
        .collect::<Option<_>>()
        .ok_or_else(not_found)?;
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let ctx = Context {
        state,
        headers,
        caller: authenticate(state, headers)?,
        registry: registry.to_string(),
    };
    let ctx = &ctx;
    let repo_of = |kind: &str, owner: &str, name: &str| {
        RepoKind::from_plural(kind)
            .ok_or_else(not_found)
            .and_then(|kind| RepoId::new(kind, owner, name))
    };
    let read = matches!(method, Method::GET | Method::HEAD);
    match (segments.as_slice(), &method) {
        (["api", "whoami-v2"], _) if read => whoami(ctx),
        (["api", "repos", "create"], &Method::POST) => create_repo(ctx, body).await,
        // The client has the front matter of a README checked before committing it; Arca
        // takes any.
        (["api", "validate-yaml"], &Method::POST) => {
            crate::frontend::discard_body(headers, body).await;
            Ok(axum::Json(json!({ "errors": [], "warnings": [] })).into_response())
        }
        (["api", kind, owner, name], _) if read => {
            info(ctx, &repo_of(kind, owner, name)?, None).await
        }
        (["api", kind, owner, name, "revision", revision @ ..], _) if read => {
            let revision = revision.join("/");
            info(ctx, &repo_of(kind, owner, name)?, Some(&revision)).await
        }
        (["api", kind, owner, name, "tree", revision, rest @ ..], _) if read => {
            let recursive = uri.query().is_some_and(|q| {
                q.split('&')
                    .any(|pair| pair == "recursive=true" || pair == "recursive=True")
            });
            tree(
                ctx,
                &repo_of(kind, owner, name)?,
                revision,
                &rest.join("/"),
                recursive,
            )
            .await
        }
        (["api", kind, owner, name, "refs"], _) if read => {
            refs(ctx, &repo_of(kind, owner, name)?).await
        }
        (["api", kind, owner, name, "preupload", _revision], &Method::POST) => {
            preupload(ctx, &repo_of(kind, owner, name)?, body).await
        }
        (["api", kind, owner, name, "commit", revision @ ..], &Method::POST) => {
            let revision = revision.join("/");
            let pull_request = uri
                .query()
                .is_some_and(|q| q.split('&').any(|pair| pair.starts_with("create_pr=1")));
            commit(
                ctx,
                &repo_of(kind, owner, name)?,
                &revision,
                pull_request,
                body,
            )
            .await
        }
        (["api", kind, owner, name, "tag", revision @ ..], &Method::POST) => {
            create_tag(ctx, &repo_of(kind, owner, name)?, &revision.join("/"), body).await
        }
        (["api", kind, owner, name, "tag", tag @ ..], &Method::DELETE) => {
            delete_ref(
                ctx,
                &repo_of(kind, owner, name)?,
                &repo::tag_tag(&tag.join("/")),
            )
            .await
        }
        (["api", kind, owner, name, "branch", branch @ ..], &Method::POST) => {
            create_branch(ctx, &repo_of(kind, owner, name)?, &branch.join("/"), body).await
        }
        (["api", kind, owner, name, "branch", branch @ ..], &Method::DELETE) => {
            let branch = branch.join("/");
            if branch == repo::DEFAULT_BRANCH {
                return Err(ApiError::invalid("the default branch cannot be deleted"));
            }
            delete_ref(
                ctx,
                &repo_of(kind, owner, name)?,
                &repo::branch_tag(&branch),
            )
            .await
        }
        (["datasets", owner, name, "info", "lfs", "objects", "batch"], &Method::POST) => {
            let name = name.strip_suffix(".git").ok_or_else(not_found)?;
            lfs_batch(ctx, &repo_of("datasets", owner, name)?, body).await
        }
        ([owner, name, "info", "lfs", "objects", "batch"], &Method::POST) => {
            let name = name.strip_suffix(".git").ok_or_else(not_found)?;
            lfs_batch(ctx, &repo_of("models", owner, name)?, body).await
        }
        (["lfs", kind, owner, name, oid], &Method::PUT) => {
            lfs_upload(ctx, &repo_of(kind, owner, name)?, oid, uri.query(), body).await
        }
        (["lfs", kind, owner, name, oid, "verify"], &Method::POST) => {
            // The body repeats the oid and size; read it all, so the connection stays usable.
            crate::frontend::discard_body(headers, body).await;
            lfs_verify(ctx, &repo_of(kind, owner, name)?, oid)
        }
        (["datasets", owner, name, "resolve", revision, path @ ..], _) if read => {
            resolve(
                ctx,
                &repo_of("datasets", owner, name)?,
                revision,
                &path.join("/"),
            )
            .await
        }
        ([owner, name, "resolve", revision, path @ ..], _) if read => {
            resolve(
                ctx,
                &repo_of("models", owner, name)?,
                revision,
                &path.join("/"),
            )
            .await
        }
        _ => Err(not_found()),
    }
}

/// `GET api/whoami-v2`: the caller, as the Hub describes a user.
fn whoami(ctx: &Context<'_>) -> Result<Response, ApiError> {
    ctx.caller.require_login().map_err(ApiError::from)?;
    let name = caller_name(ctx);
    Ok(axum::Json(json!({
        "type": "user",
        "name": name,
        "fullname": name,
        "orgs": [],
        "auth": { "type": "access_token", "accessToken": { "displayName": name, "role": "write" } },
    }))
    .into_response())
}

/// A read of `repo` through `registry`: the first member holding it, and a view of the state.
struct Found {
    member: Registry,
    commit: Commit,
}

/// The commit `revision` names in the first member of `registry` that has the repository (a remote
/// member asks its upstream); 404 with the Hub's codes otherwise.
async fn find_commit(
    ctx: &Context<'_>,
    registry: &Registry,
    repo: &RepoId,
    revision: &str,
) -> Result<Found, ApiError> {
    let mut repo_seen = false;
    let mut failure = None;
    for member in proxy::resolution_order(ctx.state, registry) {
        if member.kind == RegistryKind::Remote {
            match remote::commit(ctx, &member, repo, revision).await {
                Ok(Some(commit)) => return Ok(Found { member, commit }),
                Ok(None) => {}
                Err(error) => failure = Some(error),
            }
            continue;
        }
        let view = ctx.state.meta.view()?;
        if view.package(&member.name, &repo.package())?.is_none() {
            continue;
        }
        repo_seen = true;
        if let Some(id) = repo::resolve_revision(&view, &member.name, repo, revision)?
            && let Some(commit) = repo::read_commit(&view, &member.name, repo, &id)?
        {
            return Ok(Found { member, commit });
        }
    }
    if let Some(error) = failure {
        return Err(error);
    }
    Err(if repo_seen {
        revision_not_found(revision)
    } else {
        repo_not_found(repo)
    })
}

/// When a commit was made, RFC 3339.
fn commit_time(commit: &Commit) -> String {
    humantime::format_rfc3339_millis(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(commit.info.at),
    )
    .to_string()
}

/// `GET api/<kind>/<id>[/revision/<rev>]`: the repository at a revision, its files as siblings.
async fn info(
    ctx: &Context<'_>,
    repo: &RepoId,
    revision: Option<&str>,
) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let found = find_commit(
        ctx,
        &registry,
        repo,
        revision.unwrap_or(repo::DEFAULT_BRANCH),
    )
    .await?;
    let commit = &found.commit;
    let siblings: Vec<Value> = commit
        .files
        .iter()
        .map(|(path, file)| {
            let (oid, size) = (&file.tree.oid, file.size);
            let mut sibling = json!({ "rfilename": path, "size": size, "blobId": oid });
            if file.tree.lfs {
                sibling["lfs"] = json!({ "sha256": oid, "size": size, "pointerSize": 134 });
            }
            sibling
        })
        .collect();
    let (owner, _) = repo.id.split_once('/').unwrap_or((&repo.id, ""));
    // Files served of the repository, as the usage figures count them (the Hub counts the last
    // 30 days; these are all time).
    let downloads = crate::meta::usage::package_downloads(
        &ctx.state.meta.view()?,
        &found.member.name,
        &repo.package(),
    );
    Ok(axum::Json(json!({
        "_id": repo.package(),
        "id": repo.id,
        "modelId": repo.id,
        "author": owner,
        "sha": commit.id,
        "lastModified": commit_time(commit),
        "createdAt": commit_time(commit),
        "private": !registry.allow_anonymous_read,
        "gated": false,
        "disabled": false,
        "downloads": downloads,
        "likes": 0,
        "tags": [],
        "siblings": siblings,
        "usedStorage": commit.files.values().map(|file| file.size).sum::<u64>(),
    }))
    .into_response())
}

/// `GET api/<kind>/<id>/tree/<rev>[/<path>][?recursive=true]`: the files and folders under a path.
async fn tree(
    ctx: &Context<'_>,
    repo: &RepoId,
    revision: &str,
    under: &str,
    recursive: bool,
) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let found = find_commit(ctx, &registry, repo, revision).await?;
    let prefix = if under.is_empty() {
        String::new()
    } else {
        format!("{}/", under.trim_end_matches('/'))
    };
    let mut folders = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for (path, file) in &found.commit.files {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((folder, _)) if !recursive => {
                folders.insert(format!("{prefix}{folder}"));
            }
            _ => {
                if recursive {
                    let mut parts: Vec<&str> = rest.split('/').collect();
                    parts.pop();
                    for depth in 1..=parts.len() {
                        folders.insert(format!("{prefix}{}", parts[..depth].join("/")));
                    }
                }
                let (oid, size) = (&file.tree.oid, file.size);
                let mut entry = json!({ "type": "file", "oid": oid, "size": size, "path": path });
                if file.tree.lfs {
                    entry["lfs"] = json!({ "oid": oid, "size": size, "pointerSize": 134 });
                }
                entries.push(entry);
            }
        }
    }
    if entries.is_empty() && folders.is_empty() && !under.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ENTRY_NOT_FOUND,
            format!("{under} does not exist at {revision}"),
        ));
    }
    let mut listing: Vec<Value> = folders
        .into_iter()
        .map(|path| json!({ "type": "directory", "oid": repo::git_blob_id(path.as_bytes()), "size": 0, "path": path }))
        .collect();
    listing.extend(entries);
    Ok(axum::Json(listing).into_response())
}

/// `GET api/<kind>/<id>/refs`: branches and tags with their commits, from the first member
/// holding the repository.
async fn refs(ctx: &Context<'_>, repo: &RepoId) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    for member in proxy::resolution_order(ctx.state, &registry) {
        if member.kind == RegistryKind::Remote {
            match remote::refs(ctx, &member, repo).await? {
                Some(refs) => return Ok(axum::Json(refs).into_response()),
                None => continue,
            }
        }
        let view = ctx.state.meta.view()?;
        if view.package(&member.name, &repo.package())?.is_none() {
            continue;
        }
        let (mut branches, mut tags) = (Vec::new(), Vec::new());
        for (tag, commit) in view.tags(&member.name, &repo.package())? {
            let name = |prefix: &str| tag.strip_prefix(prefix).map(str::to_string);
            if let Some(branch) = name("refs/heads/") {
                branches.push(json!({ "name": branch, "ref": tag, "targetCommit": commit }));
            } else if let Some(name) = name("refs/tags/") {
                tags.push(json!({ "name": name, "ref": tag, "targetCommit": commit }));
            }
        }
        return Ok(
            axum::Json(json!({ "branches": branches, "tags": tags, "converts": [] }))
                .into_response(),
        );
    }
    Err(repo_not_found(repo))
}

/// The JSON body of a request (at most 1 MiB).
async fn json_body(body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the request: {e}")))?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(format!("malformed JSON: {e}")))
}

/// `POST api/repos/create`: a repository with a first commit holding `.gitattributes` (as the
/// Hub makes one); 409 when it exists.
async fn create_repo(ctx: &Context<'_>, body: Body) -> Result<Response, ApiError> {
    let target = ctx.write_target();
    let (target, body) = unless_refused(target, ctx.headers, body).await?;
    let request = json_body(body).await?;
    let text = |key: &str| request.get(key).and_then(Value::as_str);
    let kind = RepoKind::from_type(text("type")).ok_or_else(|| {
        ApiError::invalid("type must be model or dataset (spaces are not served)")
    })?;
    let name = text("name").ok_or_else(|| ApiError::invalid("the request names no repository"))?;
    let (owner, name) = match (text("organization"), name.split_once('/')) {
        (Some(organization), None) => (organization.to_string(), name.to_string()),
        (None, Some((owner, name))) => (owner.to_string(), name.to_string()),
        (None, None) => (caller_name(ctx), name.to_string()),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give the owner as organization or in the name, not both",
            ));
        }
    };
    let repo = RepoId::new(kind, &owner, &name)?;
    let url = format!(
        "{}/{}{}",
        ctx.endpoint(),
        if kind == RepoKind::Dataset {
            "datasets/"
        } else {
            ""
        },
        repo.id
    );
    let exists = ctx
        .state
        .meta
        .read(|view| view.package(&target.name, &repo.package()))?
        .is_some();
    if exists {
        // `create_repo(exist_ok=True)` reads the URL of the 409 too.
        let kind = match kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        return Ok((
            StatusCode::CONFLICT,
            axum::Json(
                json!({ "error": format!("You already created this {kind} repo"), "url": url }),
            ),
        )
            .into_response());
    }
    let attributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n*.parquet filter=lfs diff=lfs merge=lfs -text\n";
    let blob = receive_blob(
        ctx.state,
        &HeaderMap::new(),
        Body::from(&attributes[..]),
        None,
    )
    .await?;
    let operations = vec![Operation::Put {
        path: ".gitattributes".into(),
        file: TreeFile {
            lfs: false,
            oid: repo::git_blob_id(attributes),
        },
        blob,
    }];
    let info = CommitInfo {
        summary: "initial commit".into(),
        author: caller_name(ctx),
        at: ctx.state.now_ms(),
        ..CommitInfo::default()
    };
    let _one_at_a_time = COMMITS.lock().await;
    let (commands, _) =
        repo::commit_commands(&target, &repo, repo::DEFAULT_BRANCH, None, operations, info)?;
    propose_commit(ctx, commands).await?;
    Ok(axum::Json(json!({ "url": url, "name": repo.id, "id": repo.package() })).into_response())
}

async fn propose_commit(ctx: &Context<'_>, commands: Vec<Command>) -> Result<(), ApiError> {
    match ctx.state.meta.propose(Command::Batch { commands }).await {
        Ok(()) => Ok(()),
        Err(ProposeError::Refused(arca_protocol::CommandError::AlreadyExists(what))) => {
            Err(ApiError::conflict(format!("{what} already exists")))
        }
        Err(error) => Err(error.into()),
    }
}

/// `POST api/<kind>/<id>/preupload/<rev>`: which files go through LFS (large ones, and those whose
/// first bytes are not text), which are sent inside the commit.
async fn preupload(ctx: &Context<'_>, repo: &RepoId, body: Body) -> Result<Response, ApiError> {
    let (target, body) = unless_refused(ctx.write_target(), ctx.headers, body).await?;
    existing_repo(ctx, &target, repo)?;
    let request = json_body(body).await?;
    let files: Vec<Value> = request
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|file| {
            let path = file.get("path").and_then(Value::as_str).unwrap_or_default();
            let size = file.get("size").and_then(Value::as_u64).unwrap_or(0);
            let sample = file
                .get("sample")
                .and_then(Value::as_str)
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .unwrap_or_default();
            let binary = sample.contains(&0) || std::str::from_utf8(&sample).is_err();
            let mode = if size >= LFS_THRESHOLD || binary {
                "lfs"
            } else {
                "regular"
            };
            json!({ "path": path, "uploadMode": mode, "shouldIgnore": false })
        })
        .collect();
    Ok(axum::Json(json!({ "files": files })).into_response())
}

/// 404 with the Hub's code unless `target` holds `repo`.
fn existing_repo(ctx: &Context<'_>, target: &Registry, repo: &RepoId) -> Result<(), ApiError> {
    let exists = ctx
        .state
        .meta
        .read(|view| view.package(&target.name, &repo.package()))?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(repo_not_found(repo))
    }
}

/// `POST <id>.git/info/lfs/objects/batch`: for an upload, where to put each object the repository
/// does not hold yet (objects it holds get no actions); downloads are answered through `resolve`.
async fn lfs_batch(ctx: &Context<'_>, repo: &RepoId, body: Body) -> Result<Response, ApiError> {
    let (target, body) = unless_refused(ctx.write_target(), ctx.headers, body).await?;
    existing_repo(ctx, &target, repo)?;
    let request = json_body(body).await?;
    if request.get("operation").and_then(Value::as_str) != Some("upload") {
        return Err(ApiError::invalid(
            "only the upload operation is served; download through resolve",
        ));
    }
    let base = format!("{}/lfs/{}/{}", ctx.endpoint(), repo.kind.plural(), repo.id);
    let view = ctx.state.meta.view()?;
    let mut objects = Vec::new();
    for object in request
        .get("objects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let oid = object
            .get("oid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let size = object.get("size").and_then(Value::as_u64).unwrap_or(0);
        let Some(sha256) = repo::lfs_oid(oid) else {
            objects.push(json!({ "oid": oid, "size": size, "error": { "code": 422, "message": "the oid is not a sha256" } }));
            continue;
        };
        let held = view
            .blob(&sha256)?
            .is_some_and(|blob| blob.size == size && linked(&view, &target, repo, oid));
        if held {
            objects.push(json!({ "oid": oid, "size": size }));
        } else {
            // The client sends the object with no credentials: the URL carries them, signed.
            let expires = ctx.state.now_ms() / 1000 + UPLOAD_URL_SECONDS;
            let subject = ctx
                .caller
                .principal()
                .map(crate::auth::Principal::subject)
                .unwrap_or_default();
            let signature = upload_signature(ctx.state, &target, repo, oid, expires, &subject);
            let query = format!(
                "expires={expires}&subject={}&signature={signature}",
                crate::frontend::percent_encode(&subject)
            );
            objects.push(json!({
                "oid": oid,
                "size": size,
                "authenticated": true,
                "actions": {
                    "upload": { "href": format!("{base}/{oid}?{query}"), "expires_in": UPLOAD_URL_SECONDS },
                    "verify": { "href": format!("{base}/{oid}/verify"), "header": {} },
                },
            }));
        }
    }
    Ok((
        [(header::CONTENT_TYPE, "application/vnd.git-lfs+json")],
        json!({ "transfer": "basic", "objects": objects, "hash_algo": "sha256" }).to_string(),
    )
        .into_response())
}

/// The digest an LFS object is linked to a repository by.
fn lfs_digest(oid: &str) -> String {
    format!("sha256:{oid}")
}

/// Whether `repo` in `target` holds the LFS object `oid` (linked by an upload, or in a commit).
fn linked(view: &(impl StateRead + ?Sized), target: &Registry, repo: &RepoId, oid: &str) -> bool {
    view.package_has_blob(&target.name, &repo.package(), &lfs_digest(oid))
        .unwrap_or(false)
}

/// How long an LFS upload URL stays valid.
const UPLOAD_URL_SECONDS: u64 = 3600;

/// The signature of an LFS upload URL: a keyed blake3 hash (under a key derived from the cluster's)
/// of where the object goes, until when, and for whom.
fn upload_signature(
    state: &AppState,
    target: &Registry,
    repo: &RepoId,
    oid: &str,
    expires: u64,
    subject: &str,
) -> String {
    let key = blake3::derive_key(
        "arca 2026 hugging face lfs upload urls",
        state.keys.token_key(),
    );
    let signed = format!(
        "{}\0{}\0{oid}\0{expires}\0{subject}",
        target.name,
        repo.package()
    );
    blake3::keyed_hash(&key, signed.as_bytes())
        .to_hex()
        .to_string()
}

/// The caller an LFS upload URL was signed for, when its signature holds and it has not expired.
fn upload_caller(
    ctx: &Context<'_>,
    repo: &RepoId,
    oid: &str,
    query: Option<&str>,
) -> Result<Caller, ApiError> {
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "the upload URL is not valid (expired, or not signed here)",
        )
    };
    let pairs: BTreeMap<&str, String> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            Some((key, crate::frontend::percent_decode(value)?))
        })
        .collect();
    let expires: u64 = pairs
        .get("expires")
        .and_then(|v| v.parse().ok())
        .ok_or_else(refused)?;
    let subject = pairs.get("subject").ok_or_else(refused)?;
    let signature = pairs.get("signature").ok_or_else(refused)?;
    let registry = ctx
        .state
        .meta
        .read(|view| view.registry(&ctx.registry))?
        .ok_or_else(refused)?;
    let target = ctx.state.write_target(&registry)?;
    let expected = upload_signature(ctx.state, &target, repo, oid, expires, subject);
    let valid = constant_time_eq(expected.as_bytes(), signature.as_bytes())
        && expires >= ctx.state.now_ms() / 1000;
    if !valid {
        return Err(refused());
    }
    Ok(crate::auth::caller_for_subject(ctx.state, subject)?)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `PUT lfs/<kind>/<id>/<oid>?expires=&subject=&signature=`: stores an LFS object, checked against
/// its sha256, and links it to the repository; the URL's signature stands for the credentials of
/// the caller the batch answered.
async fn lfs_upload(
    ctx: &Context<'_>,
    repo: &RepoId,
    oid: &str,
    query: Option<&str>,
    body: Body,
) -> Result<Response, ApiError> {
    let checked = upload_caller(ctx, repo, oid, query).and_then(|caller| {
        let signed_for = Context {
            state: ctx.state,
            headers: ctx.headers,
            caller,
            registry: ctx.registry.clone(),
        };
        let target = signed_for.write_target()?;
        existing_repo(ctx, &target, repo)?;
        repo::lfs_oid(oid)
            .map(|sha256| (target, sha256))
            .ok_or_else(|| ApiError::invalid(format!("{oid} is not a sha256")))
    });
    let ((target, sha256), body) = unless_refused(checked, ctx.headers, body).await?;
    let blob = receive_blob(ctx.state, ctx.headers, body, Some(sha256)).await?;
    ctx.state
        .meta
        .propose(Command::LinkBlob {
            registry: target.name.clone(),
            package: repo.package(),
            digest: lfs_digest(oid),
            blob,
            at: ctx.state.now_ms(),
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `POST lfs/<kind>/<id>/<oid>/verify`: 200 when the repository holds the object.
fn lfs_verify(ctx: &Context<'_>, repo: &RepoId, oid: &str) -> Result<Response, ApiError> {
    let target = ctx.write_target()?;
    let view = ctx.state.meta.view()?;
    if linked(&view, &target, repo, oid) {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(ApiError::not_found(format!(
            "LFS object {oid} was not uploaded"
        )))
    }
}

/// One line of a commit request.
fn commit_operation(
    key: &str,
    value: &Value,
    files: &mut Vec<(String, Vec<u8>)>,
    lfs: &mut Vec<(String, String, u64)>,
    others: &mut Vec<Operation>,
) -> Result<(), ApiError> {
    let text = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ApiError::invalid(format!("a {key} operation has no {name}")))
    };
    match key {
        "file" => {
            let path = text("path")?;
            repo::check_path(&path)?;
            let content = text("content")?;
            let encoding = value
                .get("encoding")
                .and_then(Value::as_str)
                .unwrap_or("base64");
            if encoding != "base64" {
                return Err(ApiError::invalid(format!(
                    "{path}: encoding {encoding} is not base64"
                )));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(content)
                .map_err(|e| {
                    ApiError::invalid(format!("{path}: the content is not base64: {e}"))
                })?;
            files.push((path, bytes));
        }
        "lfsFile" => {
            let path = text("path")?;
            repo::check_path(&path)?;
            let algo = value
                .get("algo")
                .and_then(Value::as_str)
                .unwrap_or("sha256");
            if algo != "sha256" {
                return Err(ApiError::invalid(format!(
                    "{path}: LFS algo {algo} is not sha256"
                )));
            }
            let size = value.get("size").and_then(Value::as_u64).unwrap_or(0);
            lfs.push((path, text("oid")?, size));
        }
        "deletedFile" => others.push(Operation::Delete(text("path")?)),
        "deletedFolder" => others.push(Operation::DeleteFolder(text("path")?)),
        "copyFile" => others.push(Operation::Copy {
            from: text("srcPath")?,
            to: text("path")?,
        }),
        other => {
            return Err(ApiError::invalid(format!(
                "unknown commit operation {other}"
            )));
        }
    }
    Ok(())
}

/// `POST api/<kind>/<id>/commit/<branch>`: NDJSON, a `header` line (summary, description,
/// `parentCommit`) then file, LFS file, deletion and copy lines; commits them as the branch's new
/// head. Every LFS file must name an object the repository holds.
async fn commit(
    ctx: &Context<'_>,
    repo: &RepoId,
    branch: &str,
    pull_request: bool,
    body: Body,
) -> Result<Response, ApiError> {
    let target = ctx.write_target().and_then(|target| {
        if pull_request {
            Err(ApiError::invalid(
                "pull requests are not served: commit to a branch",
            ))
        } else {
            Ok(target)
        }
    });
    let (target, body) = unless_refused(target, ctx.headers, body).await?;
    let bytes = axum::body::to_bytes(body, COMMIT_LIMIT)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the commit: {e}")))?;
    let mut header_line = None;
    let (mut files, mut lfs, mut others) = (Vec::new(), Vec::new(), Vec::new());
    for line in bytes
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
    {
        let line: Value = serde_json::from_slice(line)
            .map_err(|e| ApiError::invalid(format!("a commit line is not JSON: {e}")))?;
        let key = line.get("key").and_then(Value::as_str).unwrap_or_default();
        let value = line.get("value").cloned().unwrap_or(Value::Null);
        if key == "header" {
            header_line = Some(value);
        } else {
            commit_operation(key, &value, &mut files, &mut lfs, &mut others)?;
        }
    }
    let header_line =
        header_line.ok_or_else(|| ApiError::invalid("the commit has no header line"))?;
    let say = |name: &str| {
        header_line
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut operations = Vec::new();
    for (path, bytes) in files {
        let oid = repo::git_blob_id(&bytes);
        let blob = receive_blob(ctx.state, &HeaderMap::new(), Body::from(bytes), None).await?;
        operations.push(Operation::Put {
            path,
            file: TreeFile { lfs: false, oid },
            blob,
        });
    }
    {
        let view = ctx.state.meta.view()?;
        for (path, oid, size) in lfs {
            let blob = repo::lfs_oid(&oid)
                .and_then(|sha256| view.blob(&sha256).ok().flatten())
                .filter(|blob| blob.size == size && linked(&view, &target, repo, &oid))
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{path}: LFS object {oid} ({size} bytes) was not uploaded to {}",
                        repo.id
                    ))
                })?;
            operations.push(Operation::Put {
                path,
                file: TreeFile { lfs: true, oid },
                blob,
            });
        }
    }
    operations.extend(others);
    let _one_at_a_time = COMMITS.lock().await;
    let view = ctx.state.meta.view()?;
    if view.package(&target.name, &repo.package())?.is_none() {
        return Err(repo_not_found(repo));
    }
    let head_id = view
        .tag(&target.name, &repo.package(), &repo::branch_tag(branch))?
        .ok_or_else(|| revision_not_found(branch))?;
    let parent_commit = say("parentCommit");
    if !parent_commit.is_empty() && parent_commit != head_id {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "PRECONDITION",
            format!("A commit has happened since {parent_commit}: {branch} is at {head_id}"),
        ));
    }
    let head = repo::read_commit(&view, &target.name, repo, &head_id)?
        .ok_or_else(|| revision_not_found(branch))?;
    drop(view);
    let info = CommitInfo {
        summary: say("summary"),
        description: say("description"),
        author: caller_name(ctx),
        at: ctx.state.now_ms(),
        ..CommitInfo::default()
    };
    let (commands, id) =
        repo::commit_commands(&target, repo, branch, Some(&head), operations, info)?;
    propose_commit(ctx, commands).await?;
    let url = format!(
        "{}/{}{}/commit/{id}",
        ctx.endpoint(),
        if repo.kind == RepoKind::Dataset {
            "datasets/"
        } else {
            ""
        },
        repo.id
    );
    Ok(
        axum::Json(json!({ "commitUrl": url, "commitOid": id, "pullRequestUrl": null }))
            .into_response(),
    )
}

/// `POST api/<kind>/<id>/tag/<rev>` (`{"tag": ..., "message": ...}`): a tag at a revision; 409
/// when it exists.
async fn create_tag(
    ctx: &Context<'_>,
    repo: &RepoId,
    revision: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let (target, body) = unless_refused(ctx.write_target(), ctx.headers, body).await?;
    let request = json_body(body).await?;
    let tag = request
        .get("tag")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid("no tag given"))?;
    repo::check_ref_name(tag)?;
    set_ref(ctx, &target, repo, revision, &repo::tag_tag(tag)).await
}

/// `POST api/<kind>/<id>/branch/<branch>` (`{"startingPoint": ...}`, else the default branch's
/// head); 409 when it exists.
async fn create_branch(
    ctx: &Context<'_>,
    repo: &RepoId,
    branch: &str,
    body: Body,
) -> Result<Response, ApiError> {
    let (target, body) = unless_refused(ctx.write_target(), ctx.headers, body).await?;
    repo::check_ref_name(branch)?;
    let request = json_body(body).await?;
    let start = request
        .get("startingPoint")
        .and_then(Value::as_str)
        .unwrap_or(repo::DEFAULT_BRANCH)
        .to_string();
    set_ref(ctx, &target, repo, &start, &repo::branch_tag(branch)).await
}

/// Points the new ref `tag` of `repo` in `target` at the commit `revision` names.
async fn set_ref(
    ctx: &Context<'_>,
    target: &Registry,
    repo: &RepoId,
    revision: &str,
    tag: &str,
) -> Result<Response, ApiError> {
    let view = ctx.state.meta.view()?;
    if view.package(&target.name, &repo.package())?.is_none() {
        return Err(repo_not_found(repo));
    }
    let commit = repo::resolve_revision(&view, &target.name, repo, revision)?
        .ok_or_else(|| revision_not_found(revision))?;
    if view.tag(&target.name, &repo.package(), tag)?.is_some() {
        return Err(ApiError::conflict(format!("{tag} already exists")));
    }
    drop(view);
    ctx.state
        .meta
        .propose(Command::SetTag {
            registry: target.name.clone(),
            package: repo.package(),
            tag: tag.to_string(),
            version: commit,
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// Deletes the ref `tag` (a branch or a tag) of `repo`.
async fn delete_ref(ctx: &Context<'_>, repo: &RepoId, tag: &str) -> Result<Response, ApiError> {
    let target = ctx.write_target()?;
    let exists = ctx
        .state
        .meta
        .read(|view| view.tag(&target.name, &repo.package(), tag))?
        .is_some();
    if !exists {
        return Err(revision_not_found(tag));
    }
    ctx.state
        .meta
        .propose(Command::DeleteTag {
            registry: target.name.clone(),
            package: repo.package(),
            tag: tag.to_string(),
        })
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET|HEAD <id>/resolve/<rev>/<path>`: the file at a revision, with the headers the client caches
/// by (`X-Repo-Commit`, `ETag` and `X-Linked-Etag` (the file's Hub id), `X-Linked-Size`); ranges
/// served. 403 when the firewall blocks the commit.
async fn resolve(
    ctx: &Context<'_>,
    repo: &RepoId,
    revision: &str,
    path: &str,
) -> Result<Response, ApiError> {
    let registry = ctx.authorize(Role::Read)?;
    let found = find_commit(ctx, &registry, repo, revision).await?;
    let Some(file) = found.commit.files.get(path).cloned() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ENTRY_NOT_FOUND,
            format!("{path} does not exist at {revision}"),
        ));
    };
    let now = ctx.state.now_ms();
    let package = repo.package();
    crate::policy::firewall::check_member(
        &ctx.state.meta.view()?,
        &found.member,
        &package,
        &found.commit.id,
        now,
    )?;
    let blob = match &file.blob {
        Some(blob) => blob.clone(),
        None => remote::file(ctx, &found.member, repo, &found.commit, path, &file).await?,
    };
    let download = Download::of(&found.member.name, &package, &found.commit.id, &ctx.caller);
    let mut response = serve_file(ctx.state, ctx.headers, &blob, Some(download));
    let headers = response.headers_mut();
    let etag = format!("\"{}\"", file.tree.oid);
    for (name, value) in [
        ("x-repo-commit", found.commit.id.clone()),
        ("etag", etag.clone()),
        ("x-linked-etag", etag),
        ("x-linked-size", blob.size.to_string()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_read_from_commit_lines() {
        let (mut files, mut lfs, mut others) = (Vec::new(), Vec::new(), Vec::new());
        commit_operation(
            "file",
            &json!({"path": "README.md", "content": "aGk=", "encoding": "base64"}),
            &mut files,
            &mut lfs,
            &mut others,
        )
        .unwrap();
        commit_operation(
            "lfsFile",
            &json!({"path": "w.bin", "algo": "sha256", "oid": "ab", "size": 3}),
            &mut files,
            &mut lfs,
            &mut others,
        )
        .unwrap();
        commit_operation(
            "deletedFolder",
            &json!({"path": "old"}),
            &mut files,
            &mut lfs,
            &mut others,
        )
        .unwrap();
        assert_eq!(files, vec![("README.md".to_string(), b"hi".to_vec())]);
        assert_eq!(lfs, vec![("w.bin".to_string(), "ab".to_string(), 3)]);
        assert_eq!(others.len(), 1);
        assert!(
            commit_operation(
                "file",
                &json!({"path": "../x", "content": ""}),
                &mut files,
                &mut lfs,
                &mut others
            )
            .is_err()
        );
        assert!(commit_operation("rename", &json!({}), &mut files, &mut lfs, &mut others).is_err());
    }
}
