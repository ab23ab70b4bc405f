//! A peer registry run as a child process on 127.0.0.1: started with its output in a log file, waited
//! for until a URL answers 200, and killed at the end (or when dropped).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::{StatusCode, Url};

/// How long a peer may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A free TCP port of 127.0.0.1 (free when asked; the peer binds it a moment later).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .context("finding a free port")?
        .port())
}

/// A peer registry running as a child process.
pub struct ChildPeer {
    name: &'static str,
    child: tokio::process::Child,
    /// `http://127.0.0.1:port/`.
    pub base: Url,
    log: PathBuf,
}

impl ChildPeer {
    /// Runs `command` (its output going to `log`), and waits until `GET ready` (a path under `base`)
    /// answers 200. `hint` says how to install the program when it cannot be started.
    pub async fn start(
        name: &'static str,
        mut command: tokio::process::Command,
        base: Url,
        ready: &str,
        log: &Path,
        hint: &str,
    ) -> anyhow::Result<ChildPeer> {
        let out =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({hint})"))?;
        let mut peer = ChildPeer {
            name,
            child,
            base,
            log: log.to_owned(),
        };
        peer.wait_ready(ready).await?;
        Ok(peer)
    }

    async fn wait_ready(&mut self, ready: &str) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = self.base.join(ready)?;
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("{} exited with {status}: {}", self.name, self.log_text());
            }
            if let Ok(response) = client.get(url.clone()).send().await
                && response.status() == StatusCode::OK
            {
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!(
                    "{} did not answer GET {url} within {START_TIMEOUT:?}: {}",
                    self.name,
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The peer's output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the peer and fails with its log if it had exited (crashed) before.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited early with {status}: {}",
                self.name,
                self.log_text()
            );
        }
        self.child
            .kill()
            .await
            .with_context(|| format!("killing {}", self.name))
    }
}
