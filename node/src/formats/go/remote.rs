//! Remote Go registries: a caching proxy of an upstream module proxy. A module's version list and
//! `@latest` are cached documents (served stale when the upstream fails); a version's `.info`,
//! `.mod` and `.zip` are fetched once each and kept as files of the remote registry's version. The
//! go command checks what it downloads against `go.sum` and the checksum database itself.

use std::collections::BTreeMap;

use arca_protocol::{BlobRef, Registry};

use super::Context;
use super::names::{ModulePath, ModuleVersion};
use crate::frontend::TextError;
use crate::frontend::read_small_blob;
use crate::proxy::ProxyError;

/// A cached upstream document's bytes, or `None` when the upstream does not have it.
async fn document(
    ctx: &Context<'_>,
    member: &Registry,
    key: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, TextError> {
    match ctx
        .state
        .proxy
        .document(ctx.state, member, key, path, None)
        .await
    {
        Ok(document) => Ok(Some(
            read_small_blob(ctx.state, &document.cached.blob).await?,
        )),
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The versions the upstream lists for `module` (lines that are not versions skipped); `None`
/// when it does not know the module.
pub async fn list(
    ctx: &Context<'_>,
    member: &Registry,
    module: &ModulePath,
) -> Result<Option<BTreeMap<String, ModuleVersion>>, TextError> {
    let path = format!("{}/@v/list", module.escaped());
    let Some(bytes) = document(ctx, member, &format!("go.list/{}", module.as_str()), &path).await?
    else {
        return Ok(None);
    };
    Ok(Some(
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter_map(|line| {
                let version = ModuleVersion::parse(line.trim()).ok()?;
                Some((version.as_str().to_string(), version))
            })
            .collect(),
    ))
}

/// The upstream's `@latest` answer for `module`, checked to be an `.info` document.
pub async fn latest(
    ctx: &Context<'_>,
    member: &Registry,
    module: &ModulePath,
) -> Result<Option<Vec<u8>>, TextError> {
    let path = format!("{}/@latest", module.escaped());
    let key = format!("go.latest/{}", module.as_str());
    let Some(bytes) = document(ctx, member, &key, &path).await? else {
        return Ok(None);
    };
    let info: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        TextError::bad_gateway(format!(
            "the upstream's @latest of {}: {e}",
            module.as_str()
        ))
    })?;
    if info
        .get("Version")
        .and_then(serde_json::Value::as_str)
        .is_none()
    {
        return Err(TextError::bad_gateway(format!(
            "the upstream's @latest of {} names no Version",
            module.as_str()
        )));
    }
    Ok(Some(bytes))
}

/// The file `file` (`<version>.info|.mod|.zip`) of `module` `version` in the remote registry
/// `member`: kept already, or fetched from the upstream. `None` when the upstream does not have it.
pub async fn file(
    ctx: &Context<'_>,
    member: &Registry,
    module: &ModulePath,
    version: &ModuleVersion,
    file: &str,
) -> Result<Option<BlobRef>, TextError> {
    let extension = file.rsplit('.').next().unwrap_or_default();
    let url = format!("{}/@v/{}.{extension}", module.escaped(), version.escaped());
    let found = crate::proxy::find_or_fetch_file(
        ctx.state,
        std::slice::from_ref(member),
        (module.as_str(), version.as_str(), file),
        |_| Some((url.clone(), crate::proxy::Expected::default())),
    )
    .await;
    match found {
        Ok(found) => Ok(found.map(|(_, blob)| blob)),
        Err(ProxyError::NotFound(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}
