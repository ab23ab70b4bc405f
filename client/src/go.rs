//! Publishing to Go module registries, `/go/{registry}/`: a module directory is zipped the way the
//! go command zips a module (`golang.org/x/mod/zip`'s `CreateFromDir`) and uploaded as
//! `PUT <module>/@v/<version>.zip`. The module path is what the directory's `go.mod` declares.
//!
//! What the zip leaves out, as the go command does: version-control directories (`.git`, `.hg`,
//! `.svn`, `.bzr`), directories holding a `go.mod` of their own (other modules), files inside the
//! packages of `vendor` directories (`vendor/modules.txt` stays), and anything that is not a
//! regular file (symbolic links included).

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use arca_protocol::go_mod;
use reqwest::Method;

use crate::client::Client;
use crate::error::ClientError;
use crate::published::Published;

fn invalid(message: impl Into<String>) -> ClientError {
    ClientError::Invalid(message.into())
}

/// The files of the module rooted at `dir`, as `/`-separated paths relative to it, sorted.
fn module_files(dir: &Path) -> Result<Vec<String>, ClientError> {
    let mut files = Vec::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        for entry in std::fs::read_dir(dir.join(&relative))? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let name = entry.file_name().into_string().map_err(|name| {
                invalid(format!(
                    "{}: a file name that is not UTF-8",
                    name.to_string_lossy()
                ))
            })?;
            let path = relative.join(&name);
            if kind.is_dir() {
                let is_vcs = matches!(name.as_str(), ".git" | ".hg" | ".svn" | ".bzr");
                let is_other_module = dir.join(&path).join("go.mod").is_file();
                if !is_vcs && !is_other_module {
                    pending.push(path);
                }
            } else if kind.is_file() {
                let slashed = path
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !is_vendored_package_file(&slashed) {
                    files.push(slashed);
                }
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether `path` lies in a package under a `vendor` directory (and not directly in it).
fn is_vendored_package_file(path: &str) -> bool {
    let inside = if let Some(rest) = path.strip_prefix("vendor/") {
        rest
    } else if let Some((_, rest)) = path.split_once("/vendor/") {
        rest
    } else {
        return false;
    };
    inside.contains('/')
}

/// The module path `dir`'s `go.mod` declares and the module zip of it at `version`.
pub fn module_zip(dir: &Path, version: &str) -> Result<(String, Vec<u8>), ClientError> {
    let go_mod = std::fs::read_to_string(dir.join("go.mod"))
        .map_err(|err| invalid(format!("{}: {err}", dir.join("go.mod").display())))?;
    let module = go_mod::module_path(&go_mod).ok_or_else(|| {
        invalid(format!(
            "{} has no module directive",
            dir.join("go.mod").display()
        ))
    })?;
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    for file in module_files(dir)? {
        let bytes = std::fs::read(dir.join(&file))?;
        zip.start_file(format!("{module}@{version}/{file}"), options)
            .map_err(|err| invalid(format!("zipping {file}: {err}")))?;
        zip.write_all(&bytes)?;
    }
    let zip = zip
        .finish()
        .map_err(|err| invalid(format!("zipping the module: {err}")))?;
    Ok((module, zip.into_inner()))
}

impl Client {
    /// Zips the module in `dir` at `version` and uploads it to the Go registry `registry`.
    pub async fn push_go(
        &self,
        registry: &str,
        version: &str,
        dir: &Path,
    ) -> Result<Published, ClientError> {
        let (module, zip) = {
            let (dir, version) = (dir.to_path_buf(), version.to_string());
            tokio::task::spawn_blocking(move || module_zip(&dir, &version))
                .await
                .map_err(|err| invalid(format!("zipping the module: {err}")))??
        };
        let encoded_module = go_mod::case_encode(&module);
        let file = format!("{}.zip", go_mod::case_encode(version));
        let mut segments = vec!["go", registry];
        segments.extend(encoded_module.split('/'));
        segments.extend(["@v", file.as_str()]);
        let url = self.url(&segments)?;
        self.send(self.request(Method::PUT, url).body(zip)).await?;
        Ok(Published {
            ecosystem: "go",
            registry: registry.to_string(),
            package: module,
            version: version.to_string(),
            files: vec![format!("{version}.zip"), format!("{version}.mod")],
            tags: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_module_zip_leaves_out_what_the_go_command_does() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        };
        write("go.mod", "module example.com/Hi\n\ngo 1.21\n");
        write("hi.go", "package hi\n");
        write("internal/x/x.go", "package x\n");
        write(".git/HEAD", "ref\n");
        write("nested/go.mod", "module example.com/Hi/nested\n");
        write("nested/n.go", "package nested\n");
        write("vendor/modules.txt", "# none\n");
        write("vendor/example.com/dep/dep.go", "package dep\n");
        let (module, zip) = module_zip(dir.path(), "v1.0.0").expect("zipped");
        assert_eq!(module, "example.com/Hi");
        let archive = zip::ZipArchive::new(Cursor::new(zip)).expect("a zip");
        let mut names: Vec<String> = archive
            .file_names()
            .map(|name| name.expect("a UTF-8 name").into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "example.com/Hi@v1.0.0/go.mod",
                "example.com/Hi@v1.0.0/hi.go",
                "example.com/Hi@v1.0.0/internal/x/x.go",
                "example.com/Hi@v1.0.0/vendor/modules.txt",
            ]
        );
    }
}
