//! The management API under `/api/v1`: one method per route of `docs/api.md` (registries and their
//! replication policies, artifacts, metadata, tokens, users and roles, the cluster, the audit trail),
//! each taking and returning the JSON types of `arca_protocol::api` and `arca_protocol::identity`.

use std::collections::BTreeMap;

use arca_protocol::api::{
    AuditList, AuditQuery, ClusterStatus, CopyVersionRequest, CreateJoinTokenRequest,
    CreateRegistryRequest, CreateTokenRequest, CreatedToken, DeleteMetadataRequest, Deployment,
    DeploymentRequest, EventList, EventsQuery, JoinTokenInfo, MetadataBody, PackageInfo,
    PackageSummary, Page, PageQuery, RegistryInfo, ResolvedVersion, ScrubStatus, SigningKeyInfo,
    TokenInfo, VersionInfo, WhoAmI,
};
use arca_protocol::identity::{
    CreateUserRequest, Grant, LoginRequest, UpdateUserRequest, UserInfo,
};
use arca_protocol::model::AuditRetention;
use arca_protocol::{MetadataTarget, RegistrySettings, ReplicationPolicy};
use reqwest::{Method, Url};

use crate::client::Client;
use crate::error::ClientError;

const API: [&str; 2] = ["api", "v1"];

fn registry_path(registry: &str) -> [&str; 2] {
    ["registries", registry]
}

fn package_path<'a>(registry: &'a str, package: &'a str) -> [&'a str; 4] {
    ["registries", registry, "packages", package]
}

fn version_path<'a>(registry: &'a str, package: &'a str, version: &'a str) -> [&'a str; 6] {
    [
        "registries",
        registry,
        "packages",
        package,
        "versions",
        version,
    ]
}

impl Client {
    /// `/api/v1/<rest...>`
    fn api_url(&self, rest: &[&str]) -> Result<Url, ClientError> {
        self.url(&[&API[..], rest].concat())
    }

    /// `/api/v1/registries/{registry}[/packages/{package}[/versions/{version}]]/<rest...>`
    fn target_url(&self, target: &MetadataTarget, rest: &[&str]) -> Result<Url, ClientError> {
        let path: Vec<&str> = match target {
            MetadataTarget::Registry { registry } => registry_path(registry).to_vec(),
            MetadataTarget::Package { registry, package } => {
                package_path(registry, package).to_vec()
            }
            MetadataTarget::Version {
                registry,
                package,
                version,
            } => version_path(registry, package, version).to_vec(),
        };
        self.api_url(&[&path[..], rest].concat())
    }

    /// Sends a request whose answer has no body (204).
    pub(crate) async fn send_empty(&self, method: Method, url: Url) -> Result<(), ClientError> {
        self.send(self.request(method, url)).await.map(drop)
    }

    /// `GET /api/v1/whoami`: the caller's token, or `None` for an anonymous caller.
    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        let url = self.api_url(&["whoami"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `POST /api/v1/registries`.
    pub async fn create_registry(
        &self,
        request: &CreateRegistryRequest,
    ) -> Result<RegistryInfo, ClientError> {
        let url = self.api_url(&["registries"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }

    /// `GET /api/v1/registries`.
    pub async fn list_registries(&self) -> Result<Vec<RegistryInfo>, ClientError> {
        let url = self.api_url(&["registries"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/registries/{registry}`.
    pub async fn get_registry(&self, registry: &str) -> Result<RegistryInfo, ClientError> {
        let url = self.api_url(&registry_path(registry))?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `DELETE /api/v1/registries/{registry}`.
    pub async fn delete_registry(&self, registry: &str) -> Result<(), ClientError> {
        let url = self.api_url(&registry_path(registry))?;
        self.send_empty(Method::DELETE, url).await
    }

    /// `PUT /api/v1/registries/{registry}/replication`: replaces the registry's replication policy and
    /// answers the registry.
    pub async fn set_replication(
        &self,
        registry: &str,
        policy: &ReplicationPolicy,
    ) -> Result<RegistryInfo, ClientError> {
        let url = self.api_url(&[&registry_path(registry)[..], &["replication"]].concat())?;
        self.send_json(self.request(Method::PUT, url).json(policy))
            .await
    }

    /// `PUT /api/v1/registries/{registry}/settings`: replaces the settings kept beside a registry
    /// The public half of the signing key of a Debian or RPM registry.
    pub async fn signing_key(&self, registry: &str) -> Result<SigningKeyInfo, ClientError> {
        let url = self.api_url(&["registries", registry, "signing-key"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// Replaces the signing key of a Debian or RPM registry with a new one.
    pub async fn rotate_signing_key(&self, registry: &str) -> Result<SigningKeyInfo, ClientError> {
        let url = self.api_url(&["registries", registry, "signing-key", "rotate"])?;
        self.send_json(self.request(Method::POST, url)).await
    }

    /// (`min_copies`, `upstream_ca_pem`).
    pub async fn set_registry_settings(
        &self,
        registry: &str,
        settings: &RegistrySettings,
    ) -> Result<RegistryInfo, ClientError> {
        let url = self.api_url(&[&registry_path(registry)[..], &["settings"]].concat())?;
        self.send_json(self.request(Method::PUT, url).json(settings))
            .await
    }

    /// `PATCH /api/v1/registries/{registry}`: changes the registry's description, flags, upstream
    /// or members and answers the registry.
    pub async fn update_registry(
        &self,
        registry: &str,
        changes: &arca_protocol::RegistryChanges,
    ) -> Result<RegistryInfo, ClientError> {
        let url = self.api_url(&registry_path(registry))?;
        self.send_json(self.request(Method::PATCH, url).json(changes))
            .await
    }

    /// `GET /api/v1/artifacts`: one page of packages, of one registry or of all: the page after
    /// `cursor` (a page's `next_cursor`) when given, else page number `page.page`.
    pub async fn list_artifacts(
        &self,
        registry: Option<&str>,
        page: PageQuery,
        cursor: Option<&str>,
    ) -> Result<Page<PackageSummary>, ClientError> {
        let mut url = self.api_url(&["artifacts"])?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(registry) = registry {
                query.append_pair("registry", registry);
            }
            match cursor {
                Some(cursor) => query.append_pair("cursor", cursor),
                None => query.append_pair("page", &page.page.to_string()),
            };
            query.append_pair("page_size", &page.page_size.to_string());
        }
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/registries/{registry}/packages/{package}`.
    pub async fn get_package(
        &self,
        registry: &str,
        package: &str,
    ) -> Result<PackageInfo, ClientError> {
        let url = self.api_url(&package_path(registry, package))?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `DELETE /api/v1/registries/{registry}/packages/{package}`.
    pub async fn delete_package(&self, registry: &str, package: &str) -> Result<(), ClientError> {
        let url = self.api_url(&package_path(registry, package))?;
        self.send_empty(Method::DELETE, url).await
    }

    /// `GET /api/v1/registries/{registry}/packages/{package}/versions/{version}`.
    pub async fn get_version(
        &self,
        registry: &str,
        package: &str,
        version: &str,
    ) -> Result<VersionInfo, ClientError> {
        let url = self.api_url(&version_path(registry, package, version))?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/resolve`: the one version of `package` that `version` (a tag, a version,
    /// `latest` or a range) picks among those carrying every `labels` key:value and let out by the
    /// firewall and quarantine.
    pub async fn resolve(
        &self,
        registry: &str,
        package: &str,
        version: &str,
        labels: &[String],
    ) -> Result<ResolvedVersion, ClientError> {
        let mut url = self.api_url(&["resolve"])?;
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("registry", registry)
                .append_pair("package", package)
                .append_pair("version", version);
            for label in labels {
                query.append_pair("label", label);
            }
        }
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `POST .../versions/{version}/deployments`: records a deployment of the version to
    /// `environment`.
    pub async fn record_deployment(
        &self,
        registry: &str,
        package: &str,
        version: &str,
        environment: &str,
    ) -> Result<Deployment, ClientError> {
        let path = [
            &version_path(registry, package, version)[..],
            &["deployments"],
        ]
        .concat();
        let url = self.api_url(&path)?;
        let body = DeploymentRequest {
            environment: environment.to_string(),
        };
        self.send_json(self.request(Method::POST, url).json(&body))
            .await
    }

    /// `GET .../versions/{version}/deployments`: the version's last deployment to each environment.
    pub async fn list_deployments(
        &self,
        registry: &str,
        package: &str,
        version: &str,
    ) -> Result<Vec<Deployment>, ClientError> {
        let path = [
            &version_path(registry, package, version)[..],
            &["deployments"],
        ]
        .concat();
        let url = self.api_url(&path)?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `DELETE /api/v1/registries/{registry}/packages/{package}/versions/{version}`.
    pub async fn delete_version(
        &self,
        registry: &str,
        package: &str,
        version: &str,
    ) -> Result<(), ClientError> {
        let url = self.api_url(&version_path(registry, package, version))?;
        self.send_empty(Method::DELETE, url).await
    }

    /// `POST .../versions/{version}/copy`: copies a version into `destination_registry` and answers the
    /// copy.
    pub async fn copy_version(
        &self,
        registry: &str,
        package: &str,
        version: &str,
        destination_registry: &str,
    ) -> Result<VersionInfo, ClientError> {
        let url =
            self.api_url(&[&version_path(registry, package, version)[..], &["copy"]].concat())?;
        let body = CopyVersionRequest {
            destination_registry: destination_registry.to_string(),
        };
        self.send_json(self.request(Method::POST, url).json(&body))
            .await
    }

    /// `GET .../metadata` of a registry, package or version.
    pub async fn get_metadata(&self, target: &MetadataTarget) -> Result<MetadataBody, ClientError> {
        let url = self.target_url(target, &["metadata"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `PUT .../metadata`: sets `entries` and answers every key afterwards.
    pub async fn set_metadata(
        &self,
        target: &MetadataTarget,
        entries: BTreeMap<String, String>,
    ) -> Result<MetadataBody, ClientError> {
        let url = self.target_url(target, &["metadata"])?;
        let body = MetadataBody { metadata: entries };
        self.send_json(self.request(Method::PUT, url).json(&body))
            .await
    }

    /// `DELETE .../metadata`: removes `keys` (every key when empty) and answers the keys left.
    pub async fn delete_metadata(
        &self,
        target: &MetadataTarget,
        keys: Vec<String>,
    ) -> Result<MetadataBody, ClientError> {
        let url = self.target_url(target, &["metadata"])?;
        let body = DeleteMetadataRequest { keys };
        self.send_json(self.request(Method::DELETE, url).json(&body))
            .await
    }

    /// `POST /api/v1/tokens`: the answer holds the secret, shown this once.
    pub async fn create_token(
        &self,
        request: &CreateTokenRequest,
    ) -> Result<CreatedToken, ClientError> {
        let url = self.api_url(&["tokens"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }

    /// `POST /api/v1/tokens/{id}/rotate`: a new secret (shown this once); the old one stops working.
    pub async fn rotate_token(&self, id: &str) -> Result<CreatedToken, ClientError> {
        let url = self.api_url(&["tokens", id, "rotate"])?;
        self.send_json(self.request(Method::POST, url)).await
    }

    /// `POST /api/v1/login`: a user's name and password for a login token.
    pub async fn login(&self, username: &str, password: &str) -> Result<CreatedToken, ClientError> {
        let url = self.api_url(&["login"])?;
        let body = LoginRequest {
            username: username.to_string(),
            password: password.to_string(),
        };
        self.send_json(self.request(Method::POST, url).json(&body))
            .await
    }

    /// `POST /api/v1/users`.
    pub async fn create_user(&self, request: &CreateUserRequest) -> Result<UserInfo, ClientError> {
        let url = self.api_url(&["users"])?;
        self.send_json(self.request(Method::POST, url).json(request))
            .await
    }

    /// `GET /api/v1/users`.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>, ClientError> {
        let url = self.api_url(&["users"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/users/{name}`.
    pub async fn get_user(&self, name: &str) -> Result<UserInfo, ClientError> {
        let url = self.api_url(&["users", name])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `PATCH /api/v1/users/{name}`.
    pub async fn update_user(
        &self,
        name: &str,
        request: &UpdateUserRequest,
    ) -> Result<UserInfo, ClientError> {
        let url = self.api_url(&["users", name])?;
        self.send_json(self.request(Method::PATCH, url).json(request))
            .await
    }

    /// `DELETE /api/v1/users/{name}`: the user's tokens go with it.
    pub async fn delete_user(&self, name: &str) -> Result<(), ClientError> {
        let url = self.api_url(&["users", name])?;
        self.send_empty(Method::DELETE, url).await
    }

    /// `PUT /api/v1/users/{name}/roles` (`grant`) or `DELETE` (`!grant`).
    pub async fn change_role(
        &self,
        name: &str,
        role: &Grant,
        grant: bool,
    ) -> Result<UserInfo, ClientError> {
        let url = self.api_url(&["users", name, "roles"])?;
        let method = if grant { Method::PUT } else { Method::DELETE };
        self.send_json(self.request(method, url).json(role)).await
    }

    /// `GET /api/v1/tokens`.
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        let url = self.api_url(&["tokens"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `DELETE /api/v1/tokens/{id}`.
    pub async fn revoke_token(&self, id: &str) -> Result<(), ClientError> {
        let url = self.api_url(&["tokens", id])?;
        self.send_empty(Method::DELETE, url).await
    }

    /// `GET /api/v1/cluster`: the cluster as its leader sees it.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        let url = self.api_url(&["cluster"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `POST /api/v1/cluster/join-tokens`: a token a new node joins with, valid for `ttl_seconds`.
    pub async fn create_join_token(&self, ttl_seconds: u64) -> Result<JoinTokenInfo, ClientError> {
        let url = self.api_url(&["cluster", "join-tokens"])?;
        let body = CreateJoinTokenRequest { ttl_seconds };
        self.send_json(self.request(Method::POST, url).json(&body))
            .await
    }

    /// `POST /api/v1/cluster/nodes/{id}/promote`: makes a learner a voter and answers the cluster.
    pub async fn promote_node(&self, id: u64) -> Result<ClusterStatus, ClientError> {
        let url = self.api_url(&["cluster", "nodes", &id.to_string(), "promote"])?;
        self.send_json(self.request(Method::POST, url)).await
    }

    /// `GET /api/v1/cluster/scrub`: the background scrub of the node asked.
    pub async fn scrub_status(&self) -> Result<ScrubStatus, ClientError> {
        let url = self.api_url(&["cluster", "scrub"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `POST /api/v1/cluster/scrub`: starts a scrub pass on the node asked.
    pub async fn start_scrub(&self) -> Result<ScrubStatus, ClientError> {
        let url = self.api_url(&["cluster", "scrub"])?;
        self.send_json(self.request(Method::POST, url)).await
    }

    /// `DELETE /api/v1/cluster/nodes/{id}`: takes a node out of the cluster and answers the cluster.
    pub async fn remove_node(&self, id: u64) -> Result<ClusterStatus, ClientError> {
        let url = self.api_url(&["cluster", "nodes", &id.to_string()])?;
        self.send_json(self.request(Method::DELETE, url)).await
    }

    /// `GET /api/v1/audit/export?since=&until=`: the events of the window, oldest first, as JSON
    /// lines, streamed.
    pub async fn export_audit(
        &self,
        since: Option<&str>,
        until: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut url = self.api_url(&["audit", "export"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in [("since", since), ("until", until)] {
                if let Some(value) = value {
                    pairs.append_pair(key, value);
                }
            }
        }
        self.send(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/audit/retention`: how much of the audit trail is kept.
    pub async fn audit_retention(&self) -> Result<AuditRetention, ClientError> {
        let url = self.api_url(&["audit", "retention"])?;
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `PUT /api/v1/audit/retention`: sets how much of the audit trail is kept.
    pub async fn set_audit_retention(
        &self,
        retention: &AuditRetention,
    ) -> Result<AuditRetention, ClientError> {
        let url = self.api_url(&["audit", "retention"])?;
        self.send_json(self.request(Method::PUT, url).json(retention))
            .await
    }

    /// `GET /api/v1/events`: the changes after the query's cursor that this caller may see, as
    /// CloudEvents, and the cursor to ask after next.
    pub async fn events(&self, query: &EventsQuery) -> Result<EventList, ClientError> {
        let mut url = self.api_url(&["events"])?;
        {
            let mut pairs = url.query_pairs_mut();
            for (key, value) in [
                ("after", query.after),
                ("limit", query.limit.map(u64::from)),
                ("wait_seconds", query.wait_seconds),
            ] {
                if let Some(value) = value {
                    pairs.append_pair(key, &value.to_string());
                }
            }
            if let Some(registry) = &query.registry {
                pairs.append_pair("registry", registry);
            }
        }
        self.send_json(self.request(Method::GET, url)).await
    }

    /// `GET /api/v1/audit`: the audit events the query selects, newest first.
    pub async fn list_audit(&self, query: &AuditQuery) -> Result<AuditList, ClientError> {
        let mut url = self.api_url(&["audit"])?;
        {
            let mut pairs = url.query_pairs_mut();
            let filters = [
                ("since", &query.since),
                ("until", &query.until),
                ("actor", &query.actor),
                ("registry", &query.registry),
                ("action", &query.action),
            ];
            for (key, value) in filters {
                if let Some(value) = value {
                    pairs.append_pair(key, value);
                }
            }
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
        }
        self.send_json(self.request(Method::GET, url)).await
    }
}
