//! Python clients for PyPI tests that involve more than one registry or node: building distributions
//! offline with `build` (setuptools, no isolation), uploading them with twine to any repository URL,
//! and running pip — each with a temporary home and no configuration that could point it anywhere
//! but where the test says. (The same shape as the helpers of `tests/pypi.rs`, which stay private to
//! that file.)

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, ensure};

use crate::TestNode;
use crate::clients::{ClientOutput, in_ci, require_client, run_command};

/// twine, pip and a Python that can build distributions.
pub struct Python {
    twine: PathBuf,
    /// The Python with `build`, `setuptools` and `wheel` (the one next to twine when there is one).
    builder: PathBuf,
    /// The Python whose pip is under test.
    pip_python: PathBuf,
    home: tempfile::TempDir,
}

fn imports(python: &Path, modules: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {modules}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

impl Python {
    /// The clients, or `None` (said loudly; a failure under `CI=true`) when one is missing.
    pub fn find(test: &str) -> Option<Python> {
        let twine = require_client("twine", test)?;
        let pip_python = require_client("python3", test)?;
        let beside_twine = std::fs::canonicalize(&twine)
            .ok()
            .and_then(|t| t.parent().map(|dir| dir.join("python3")));
        let builder = beside_twine
            .into_iter()
            .chain([pip_python.clone()])
            .find(|python| imports(python, "build, setuptools, wheel"));
        let Some(builder) = builder else {
            assert!(
                !in_ci(),
                "{test}: no python3 can import build, setuptools and wheel and CI=true; \
                 `bash scripts/install-clients.sh` installs them"
            );
            eprintln!("\n!!! SKIPPED {test}: no python3 with build, setuptools and wheel !!!\n");
            return None;
        };
        assert!(imports(&pip_python, "pip"), "{test}: python3 has no pip");
        Some(Python {
            twine,
            builder,
            pip_python,
            home: tempfile::tempdir().expect("temporary home"),
        })
    }

    /// A command with the isolated environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path().join(".config"))
            .env("XDG_CACHE_HOME", self.home.path().join(".cache"))
            .env("PIP_CONFIG_FILE", "/dev/null")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring");
        for name in [
            "PIP_FIND_LINKS",
            "PIP_INDEX_URL",
            "PIP_EXTRA_INDEX_URL",
            "PIP_TRUSTED_HOST",
            "TWINE_USERNAME",
            "TWINE_PASSWORD",
            "TWINE_REPOSITORY",
            "TWINE_REPOSITORY_URL",
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            command.env_remove(name);
        }
        command
    }

    /// `twine upload` of `files` to PyPI registry `registry` of `node`, with the node's admin token.
    pub fn upload(&self, node: &TestNode, registry: &str, files: &[&Path]) -> Result<ClientOutput> {
        let mut command = self.command(&self.twine);
        command
            .args(["upload", "--non-interactive", "--disable-progress-bar"])
            .args([
                "--repository-url",
                &format!("{}/pypi/{registry}/", node.url),
            ])
            .args(["-u", "__token__", "-p", &node.admin_token])
            .args(files);
        run_command(&mut command)
    }

    /// `python3 -m pip ARGS`.
    pub fn pip(&self, args: &[&str]) -> Result<ClientOutput> {
        let mut command = self.command(&self.pip_python);
        command.args(["-m", "pip"]).args(args);
        run_command(&mut command)
    }

    /// `pip install --no-cache-dir --index-url INDEX --target (a new directory) SPECS`; returns the
    /// directory and the names of its entries.
    pub fn install(&self, index: &str, specs: &[&str]) -> Result<(tempfile::TempDir, Vec<String>)> {
        let target = tempfile::tempdir()?;
        let dir = target.path().to_str().unwrap_or_default().to_string();
        let mut args = vec![
            "install",
            "--no-cache-dir",
            "--index-url",
            index,
            "--target",
            dir.as_str(),
        ];
        args.extend_from_slice(specs);
        self.pip(&args)?.ok()?;
        let names = entries(target.path());
        Ok((target, names))
    }

    /// Builds the sdist and wheel of `project` into `out`; returns (sdist, wheel).
    pub fn build(&self, project: &PyProject, out: &Path) -> Result<(PathBuf, PathBuf)> {
        let source = tempfile::tempdir()?;
        project.write(source.path())?;
        let mut command = self.command(&self.builder);
        command
            .args([
                "-m",
                "build",
                "--no-isolation",
                "--sdist",
                "--wheel",
                "--outdir",
            ])
            .arg(out)
            .arg(source.path());
        run_command(&mut command)?.ok()?;
        let module = project.name.replace('-', "_");
        let sdist = out.join(format!("{module}-{}.tar.gz", project.version));
        let wheel = out.join(format!("{module}-{}-py3-none-any.whl", project.version));
        ensure!(
            sdist.exists() && wheel.exists(),
            "build did not produce {} and {}: {:?}",
            sdist.display(),
            wheel.display(),
            std::fs::read_dir(out)?.collect::<Vec<_>>()
        );
        Ok((sdist, wheel))
    }
}

/// A tiny setuptools project with one module.
pub struct PyProject {
    /// The name as written in pyproject.toml.
    pub name: String,
    /// Its version.
    pub version: String,
    /// `requires-python`.
    pub requires_python: &'static str,
    /// Its dependencies (PEP 508).
    pub dependencies: Vec<&'static str>,
}

impl PyProject {
    /// A project without dependencies.
    pub fn new(name: &str, version: &str) -> PyProject {
        PyProject {
            name: name.to_string(),
            version: version.to_string(),
            requires_python: ">=3.8",
            dependencies: Vec::new(),
        }
    }

    /// Writes `pyproject.toml` and the module into `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        let module = self.name.replace('-', "_");
        let dependencies = self
            .dependencies
            .iter()
            .map(|d| format!("{d:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            dir.join("pyproject.toml"),
            format!(
                "[build-system]\nrequires = [\"setuptools>=61\"]\nbuild-backend = \"setuptools.build_meta\"\n\n\
                 [project]\nname = \"{}\"\nversion = \"{}\"\ndescription = \"Arca test package {}\"\n\
                 requires-python = \"{}\"\ndependencies = [{dependencies}]\n\n\
                 [tool.setuptools]\npy-modules = [\"{module}\"]\n",
                self.name, self.version, self.name, self.requires_python
            ),
        )?;
        std::fs::write(
            dir.join(format!("{module}.py")),
            format!("VERSION = {:?}\n", self.version),
        )?;
        Ok(())
    }
}

/// The simple index URL of `registry` on `node`, with the node's admin token in it, as pip is given
/// it.
pub fn index_url(node: &TestNode, registry: &str) -> String {
    format!(
        "http://__token__:{}@{}/pypi/{registry}/simple/",
        node.admin_token,
        node.url.trim_start_matches("http://")
    )
}

/// Names of the entries of a directory, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
