//! Clusters of real `arca-node` processes on 127.0.0.1 for integration tests: one process per node,
//! each on its own free ports (kept across restarts, as a real node keeps its address), the first
//! founding the cluster and the others joining with a join token.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use arca_protocol::api::{ClusterStatus, JoinTokenInfo};

use crate::{TestNode, http, sha256_hex};

/// A member of a [`TestCluster`].
pub struct Member {
    /// The process.
    pub node: TestNode,
    /// Its node id.
    pub id: u64,
    /// Its site.
    pub site: String,
    /// Its inter-node address.
    pub quic: String,
}

/// How to start one member of a [`TestCluster`].
pub struct MemberSpec<'a> {
    /// Its site.
    pub site: &'a str,
    /// Arguments of its own (`--storage ...`, say).
    pub args: Vec<String>,
    /// Environment variables of its own.
    pub env: Vec<(&'a str, &'a str)>,
}

/// A cluster of `arca-node` processes.
pub struct TestCluster {
    /// The members, in the order they were started (index 0 founded the cluster).
    pub members: Vec<Member>,
    join_token: String,
}

/// A free TCP port and a free UDP port on 127.0.0.1.
fn free_ports() -> Result<(u16, u16)> {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")?;
    let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok((tcp.local_addr()?.port(), udp.local_addr()?.port()))
}

fn start_member(id: u64, site: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Member> {
    let (http_port, quic_port) = free_ports()?;
    let http = format!("127.0.0.1:{http_port}");
    let quic = format!("127.0.0.1:{quic_port}");
    let id_text = id.to_string();
    let mut args = vec![
        "--node-id",
        id_text.as_str(),
        "--site",
        site,
        "--http",
        http.as_str(),
        "--quic",
        quic.as_str(),
    ];
    args.extend_from_slice(extra);
    let node = TestNode::start_with(&args, env)?;
    Ok(Member {
        node,
        id,
        site: site.to_string(),
        quic,
    })
}

impl TestCluster {
    /// Starts one full node per site (the first founds the cluster, the others join) and waits until
    /// every node is a voter with no lag.
    pub async fn start(sites: &[&str]) -> Result<TestCluster> {
        Self::start_with(sites, &[]).await
    }

    /// [`TestCluster::start`] with environment variables for every node.
    pub async fn start_with(sites: &[&str], env: &[(&str, &str)]) -> Result<TestCluster> {
        let members: Vec<MemberSpec> = sites
            .iter()
            .map(|site| MemberSpec {
                site,
                args: Vec::new(),
                env: env.to_vec(),
            })
            .collect();
        Self::start_members(&members).await
    }

    /// Starts one full node per spec (the first founds the cluster, the others join), each with
    /// its own arguments and environment, and waits until every node is a voter with no lag.
    pub async fn start_members(members: &[MemberSpec<'_>]) -> Result<TestCluster> {
        let (first, rest) = members.split_first().context("at least one member")?;
        let founder_args: Vec<&str> = first.args.iter().map(String::as_str).collect();
        let founder = start_member(1, first.site, &founder_args, &first.env)?;
        let mut cluster = TestCluster {
            members: vec![founder],
            join_token: String::new(),
        };
        cluster.join_token = cluster.create_join_token().await?;
        for spec in rest {
            let extra: Vec<&str> = spec.args.iter().map(String::as_str).collect();
            cluster.join(spec.site, &extra, &spec.env)?;
        }
        let voters = members.len().min(5);
        cluster
            .wait_for_status(0, "every node a voter, none lagging", |status| {
                status.nodes.len() == members.len()
                    && status
                        .nodes
                        .iter()
                        .filter(|n| n.membership == "voter")
                        .count()
                        == voters
                    && status.nodes.iter().all(|n| n.lag == Some(0))
            })
            .await?;
        Ok(cluster)
    }

    /// Starts another node at `site` that joins through the founder; returns its index.
    pub fn join(&mut self, site: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<usize> {
        let id = self.members.iter().map(|m| m.id).max().unwrap_or(0) + 1;
        let via = self.members[0].quic.clone();
        let mut args = vec![
            "--join",
            via.as_str(),
            "--join-token",
            self.join_token.as_str(),
        ];
        args.extend_from_slice(extra);
        let member = start_member(id, site, &args, env)?;
        self.members.push(member);
        Ok(self.members.len() - 1)
    }

    async fn create_join_token(&self) -> Result<String> {
        let response = crate::http()
            .post(format!("{}/api/v1/cluster/join-tokens", self.url(0)))
            .bearer_auth(self.admin_token())
            .json(&serde_json::json!({"ttl_seconds": 3600}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "join token: {} {}",
                response.status(),
                response.text().await?
            );
        }
        Ok(response.json::<JoinTokenInfo>().await?.token)
    }

    /// The join token the members joined with.
    pub fn join_token(&self) -> &str {
        &self.join_token
    }

    /// The admin token (the founder's; every node accepts it).
    pub fn admin_token(&self) -> &str {
        &self.members[0].node.admin_token
    }

    /// The HTTP base URL of member `index`.
    pub fn url(&self, index: usize) -> &str {
        &self.members[index].node.url
    }

    /// The cluster status as member `index` answers it.
    pub async fn status(&self, index: usize) -> Result<ClusterStatus> {
        let response = crate::http()
            .get(format!("{}/api/v1/cluster", self.url(index)))
            .bearer_auth(self.admin_token())
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("status: {} {}", response.status(), response.text().await?);
        }
        Ok(response.json().await?)
    }

    /// Polls member `index`'s status until `condition` holds (60 s at most).
    pub async fn wait_for_status(
        &self,
        index: usize,
        what: &str,
        mut condition: impl FnMut(&ClusterStatus) -> bool,
    ) -> Result<ClusterStatus> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let last = match self.status(index).await {
                Ok(status) if condition(&status) => return Ok(status),
                Ok(status) => format!("{status:#?}"),
                Err(error) => error.to_string(),
            };
            if Instant::now() > deadline {
                bail!("waited 60 s for {what}; last status: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The index of the member that leads, as member `via` sees it.
    pub async fn leader(&self, via: usize) -> Result<usize> {
        let status = self
            .wait_for_status(via, "a leader", |s| s.leader.is_some())
            .await?;
        let leader = status.leader.context("leader")?;
        self.members
            .iter()
            .position(|m| m.id == leader)
            .context("the leader is a member")
    }

    /// The value of a metric (summed over its label sets matching `labels`) on member `index`.
    pub async fn metric(&self, index: usize, name: &str, labels: &str) -> Result<f64> {
        crate::metric(self.url(index), name, labels).await
    }
}

/// Creates a registry of `package_type` through member 0.
pub async fn create_registry(cluster: &TestCluster, name: &str, package_type: &str) -> Result<()> {
    create_registry_with(
        cluster,
        serde_json::json!({"name": name, "package_type": package_type}),
    )
    .await
}

/// Creates a registry from a full creation body through member 0.
pub async fn create_registry_with(cluster: &TestCluster, body: serde_json::Value) -> Result<()> {
    let response = http()
        .post(format!("{}/api/v1/registries", cluster.url(0)))
        .bearer_auth(cluster.admin_token())
        .json(&body)
        .send()
        .await?;
    ensure!(
        response.status().as_u16() == 201,
        "create registry: {} {}",
        response.status(),
        response.text().await?
    );
    Ok(())
}

/// The URL of a generic file at member `index`.
pub fn file_url(cluster: &TestCluster, index: usize, registry: &str, path: &str) -> String {
    format!("{}/generic/{registry}/{path}", cluster.url(index))
}

/// PUTs a file at member `index`; returns the HTTP status (and prints the body of a refusal).
pub async fn put(
    cluster: &TestCluster,
    index: usize,
    registry: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<u16> {
    let response = http()
        .put(file_url(cluster, index, registry, path))
        .bearer_auth(cluster.admin_token())
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    if status != 201 {
        eprintln!(
            "PUT {path} at member {index}: {status} {}",
            response.text().await?
        );
    }
    Ok(status)
}

/// GETs a file at member `index`: status and body.
pub async fn get(
    cluster: &TestCluster,
    index: usize,
    registry: &str,
    path: &str,
) -> Result<(u16, Vec<u8>)> {
    let response = http()
        .get(file_url(cluster, index, registry, path))
        .bearer_auth(cluster.admin_token())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.bytes().await?.to_vec()))
}

/// Checks that member `index` serves `expected` at `path`. Reads are answered from the member's own
/// applied state, so on a member other than the writer a new file may take a moment to appear (up to
/// 10 s here); a wrong body fails at once.
pub async fn expect_file(
    cluster: &TestCluster,
    index: usize,
    registry: &str,
    path: &str,
    expected: &[u8],
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let (status, body) = loop {
        let (status, body) = get(cluster, index, registry, path).await?;
        if status != 404 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    ensure!(status == 200, "GET {path} at member {index}: {status}");
    ensure!(
        sha256_hex(&body) == sha256_hex(expected),
        "GET {path} at member {index}: {} bytes that differ from the {} pushed",
        body.len(),
        expected.len()
    );
    Ok(())
}

/// Waits until member `index` reports no blobs pending for its site.
pub async fn wait_replicated(cluster: &TestCluster, index: usize) -> Result<()> {
    let site = format!("site=\"{}\"", cluster.members[index].site);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending = cluster
            .metric(index, "arca_replication_pending_blobs", &site)
            .await?;
        let blobs = cluster.metric(index, "arca_blobs", "").await?;
        if pending == 0.0 && blobs > 0.0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("member {index} still has {pending} blobs pending after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
