//! Finding and running real clients in tests: locating a client binary (and refusing to skip under
//! CI), running it with stdin closed, and reporting what it printed in readable failure messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, bail};

/// True when running under CI (`CI=true`), where a missing client is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The first executable called `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Writes straight to the process's stderr, past libtest's output capture, so a skip is seen even
/// when the test passes.
pub(crate) fn loud(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!! {message} !!!\n");
}

/// Locates a client binary. Missing under CI: panics (the test must not pass without its client).
/// Missing elsewhere: says so loudly on stderr and returns `None`, so the test can return early.
pub fn require_client(name: &str, test: &str) -> Option<PathBuf> {
    if let Some(path) = which(name) {
        return Some(path);
    }
    if in_ci() {
        panic!(
            "{test}: client `{name}` is not on PATH and CI=true; `bash scripts/install-clients.sh` \
             installs it"
        );
    }
    loud(&format!(
        "SKIPPED {test}: client `{name}` is not on PATH (run `bash scripts/install-clients.sh`; \
         under CI=true this is a failure)"
    ));
    None
}

/// What a finished client process printed, with the command line for failure messages.
#[derive(Debug)]
pub struct ClientOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit status.
    pub success: bool,
    /// Exit code, when the process exited normally.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl ClientOutput {
    /// Collects a finished process's output, with its command line for messages.
    pub fn from_output(command: String, output: Output) -> ClientOutput {
        ClientOutput {
            command,
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "`{}` exited with {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }

    /// The output when the command succeeded; an error with the command, exit code, stdout and stderr
    /// otherwise.
    pub fn ok(self) -> Result<ClientOutput> {
        if self.success {
            Ok(self)
        } else {
            bail!("{}", self.describe())
        }
    }

    /// The output when the command failed; an error when it unexpectedly succeeded.
    pub fn failed(self) -> Result<ClientOutput> {
        if self.success {
            bail!("expected a failure, but {}", self.describe())
        } else {
            Ok(self)
        }
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// Runs `program` with `args` and the given environment, stdin closed, and collects what it printed.
pub fn run(program: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Result<ClientOutput> {
    let mut command = Command::new(program);
    command.args(args).envs(envs.iter().map(|(k, v)| (k, v)));
    run_command(&mut command)
}

/// Runs a prepared command with stdin closed and collects what it printed.
pub fn run_command(command: &mut Command) -> Result<ClientOutput> {
    let line = std::iter::once(command.get_program().to_string_lossy().into_owned())
        .chain(
            command
                .get_args()
                .map(|a| shell_quote(&a.to_string_lossy())),
        )
        .collect::<Vec<_>>()
        .join(" ");
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("spawning {line}"))?;
    Ok(ClientOutput::from_output(line, output))
}

fn shell_quote(arg: &str) -> String {
    if !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c))
    {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Writes a wheel of `name==version` (one module, PEP 427 layout with a RECORD of sha256 hashes)
/// into `dir` with Python's own zipfile; returns its path.
pub fn build_wheel(python: &Path, dir: &Path, name: &str, version: &str) -> Result<PathBuf> {
    let script = r#"
import base64, hashlib, sys, zipfile
name, version, out = sys.argv[1], sys.argv[2], sys.argv[3]
dist = f"{name}-{version}.dist-info"
files = {
    f"{name}/__init__.py": f"VERSION = '{version}'\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: arca test\nLicense: Apache-2.0\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: arca-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
path = f"{out}/{name}-{version}-py3-none-any.whl"
record = []
with zipfile.ZipFile(path, "w") as wheel:
    for file, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{file},sha256={digest},{len(data)}")
        wheel.writestr(file, data)
    record.append(f"{dist}/RECORD,,")
    wheel.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
print(path)
"#;
    let output = run_command(
        Command::new(python)
            .args(["-c", script, name, version])
            .arg(dir),
    )?
    .ok()?;
    Ok(PathBuf::from(output.stdout.trim()))
}
