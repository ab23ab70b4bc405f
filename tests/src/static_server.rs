//! A static file server over a directory on 127.0.0.1 (python's `http.server`, which dnf brings),
//! standing in for a mirror or a repository made by a peer tool.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::Result;

/// A static file server on 127.0.0.1 over `dir` (python's), stopped when dropped.
pub struct StaticServer {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl StaticServer {
    /// Serves `dir`.
    pub fn start(dir: &Path) -> Result<StaticServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(StaticServer { child, url });
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        anyhow::bail!("the static server did not start")
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
