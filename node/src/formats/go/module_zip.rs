//! A module zip read as the go command checks it before extracting (`golang.org/x/mod/zip`): every
//! entry under `<module>@<version>/`, each path element valid, no two paths equal but for letter
//! case, regular files only, size limits, and a `go.mod` that declares the module the upload says.

use std::collections::HashSet;
use std::io::{Read, Seek};

use super::names::{ModulePath, ModuleVersion, check_element};

/// The largest module zip, and the most its files may hold in all.
pub const MAX_ZIP: u64 = 500 << 20;
/// The largest `go.mod` (and `LICENSE`).
const MAX_GO_MOD: u64 = 16 << 20;

/// What the check found: the module's `go.mod`, if the zip has one.
#[derive(Debug)]
pub struct ModuleZip {
    /// `<module>@<version>/go.mod`.
    pub go_mod: Option<Vec<u8>>,
}

/// Reads the zip `archive` of `path` at `version` (see the module documentation).
pub fn check(
    archive: impl Read + Seek,
    path: &ModulePath,
    version: &ModuleVersion,
) -> Result<ModuleZip, String> {
    let mut zip = zip::ZipArchive::new(archive).map_err(|e| format!("not a zip archive: {e}"))?;
    let prefix = format!("{}@{}/", path.as_str(), version.as_str());
    let mut seen = HashSet::new();
    let mut total = 0u64;
    let mut go_mod = None;
    for index in 0..zip.len() {
        let mut entry = zip.by_index(index).map_err(|e| e.to_string())?;
        let name = entry.name().map_err(|e| e.to_string())?.to_string();
        let relative = name
            .strip_prefix(&prefix)
            .ok_or_else(|| format!("{name:?} is not under {prefix}"))?;
        let (relative, is_dir) = match relative.strip_suffix('/') {
            Some(dir) => (dir, true),
            None => (relative, false),
        };
        if relative.is_empty() {
            if is_dir {
                continue;
            }
            return Err(format!("{name:?}: empty file name"));
        }
        for element in relative.split('/') {
            check_element(element, true).map_err(|why| format!("{name:?}: {why}"))?;
        }
        if is_dir {
            continue;
        }
        if entry.is_symlink() || !entry.is_file() {
            return Err(format!("{name:?} is not a regular file"));
        }
        if !seen.insert(relative.to_lowercase()) {
            return Err(format!(
                "{name:?}: two files of the same path but for letter case"
            ));
        }
        total = total.saturating_add(entry.size());
        if total > MAX_ZIP {
            return Err(format!("its files hold more than {MAX_ZIP} bytes"));
        }
        if matches!(relative, "go.mod" | "LICENSE") && entry.size() > MAX_GO_MOD {
            return Err(format!("{name:?} is larger than {MAX_GO_MOD} bytes"));
        }
        if relative == "go.mod" {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_GO_MOD)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{name:?}: {e}"))?;
            go_mod = Some(bytes);
        }
    }
    match &go_mod {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| "go.mod is not UTF-8".to_string())?;
            let declared = arca_protocol::go_mod::module_path(text)
                .ok_or_else(|| "go.mod has no module directive".to_string())?;
            if declared != path.as_str() {
                return Err(format!(
                    "go.mod declares module {declared:?}, the upload is of {:?}",
                    path.as_str()
                ));
            }
            if version.is_incompatible() {
                return Err(format!(
                    "{} is +incompatible, which a module with a go.mod cannot be",
                    version.as_str()
                ));
            }
        }
        None if path.major_suffix().is_some() && !path.as_str().starts_with("gopkg.in/") => {
            return Err(format!(
                "a module whose path ends in a major version ({}) needs a go.mod",
                path.as_str()
            ));
        }
        None => {}
    }
    Ok(ModuleZip { go_mod })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn zip_of(files: &[(&str, &[u8])]) -> Cursor<Vec<u8>> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("in memory");
            writer.write_all(bytes).expect("in memory");
        }
        Cursor::new(writer.finish().expect("in memory").into_inner())
    }

    fn checked(files: &[(&str, &[u8])], path: &str, version: &str) -> Result<ModuleZip, String> {
        check(
            zip_of(files),
            &ModulePath::parse(path).expect("valid"),
            &ModuleVersion::parse(version).expect("valid"),
        )
    }

    #[test]
    fn module_zips_are_checked_as_the_go_command_does() {
        let go_mod: &[u8] = b"// greeting\nmodule example.com/hi // the module\n\ngo 1.21\n";
        let found = checked(
            &[
                ("example.com/hi@v1.0.0/go.mod", go_mod),
                ("example.com/hi@v1.0.0/hi.go", b"package hi"),
            ],
            "example.com/hi",
            "v1.0.0",
        )
        .expect("valid");
        assert_eq!(found.go_mod.as_deref(), Some(go_mod));
        let refused = |files: &[(&str, &[u8])], path: &str, version: &str, why: &str| {
            let error = checked(files, path, version).expect_err("refused");
            assert!(error.contains(why), "{error} lacks {why}");
        };
        refused(
            &[("example.com/hi@v1.0.0/../x.go", b"")],
            "example.com/hi",
            "v1.0.0",
            "invalid path element",
        );
        refused(
            &[("other@v1.0.0/x.go", b"")],
            "example.com/hi",
            "v1.0.0",
            "is not under",
        );
        refused(
            &[
                ("example.com/hi@v1.0.0/A.go", b""),
                ("example.com/hi@v1.0.0/a.go", b""),
            ],
            "example.com/hi",
            "v1.0.0",
            "letter case",
        );
        refused(
            &[(
                "example.com/hi@v1.0.0/go.mod",
                b"module example.com/other\n",
            )],
            "example.com/hi",
            "v1.0.0",
            "declares module",
        );
        refused(
            &[("example.com/hi/v2@v2.0.0/x.go", b"")],
            "example.com/hi/v2",
            "v2.0.0",
            "needs a go.mod",
        );
        refused(
            &[(
                "example.com/hi@v2.0.0+incompatible/go.mod",
                b"module example.com/hi\n",
            )],
            "example.com/hi",
            "v2.0.0+incompatible",
            "+incompatible",
        );
    }
}
