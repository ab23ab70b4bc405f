//! The cluster's certificates: a CA the first node creates, a certificate per node signed by it, the
//! join token that carries the CA's fingerprint and a secret, and the rustls/quinn configurations for
//! mutual TLS on the inter-node port.
//!
//! Every member keeps the CA key (0600, under `<data-dir>/cluster/`) so that any member can admit new
//! nodes. A node's certificate names `arca-node` for every node: trust comes from the CA, not the name.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arca_protocol::cluster::JoinGrant;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// The name every node certificate carries and every client asks for.
pub const NODE_SERVER_NAME: &str = "arca-node";
const ALPN: &[u8] = b"arca/1";
/// The largest UDP payload path MTU discovery tries (where the path carries jumbo frames). Not the
/// 8,952 bytes a 9,000-byte frame holds: quinn hands the kernel up to 10 datagrams per
/// segmentation-offload send, the kernel refuses a send over 64 KiB, and quinn drops a refused send
/// as if the network had lost it (so the transfer loses packets, and black-hole detection then pins
/// the path at 1,200 bytes). 10 × 6,500 fits.
const LARGEST_UDP_PAYLOAD: u16 = 6_500;
const JOIN_TOKEN_PREFIX: &str = "arca-join-v1";

/// Why certificates or TLS configurations could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Generating or signing a certificate failed.
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused a configuration or a PEM document.
    #[error("tls: {0}")]
    Rustls(String),
    /// Reading or writing the cluster directory failed.
    #[error("cluster credentials in {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A join token does not have the expected shape.
    #[error("malformed join token: expected {JOIN_TOKEN_PREFIX}:<ca-fingerprint>:<secret>")]
    MalformedJoinToken,
}

fn rustls_error(error: impl std::fmt::Display) -> TlsError {
    TlsError::Rustls(error.to_string())
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The parameters the CA certificate was made from; an [`Issuer`] needs them again to sign.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "Arca cluster CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A join token: the CA's sha256 fingerprint (so the joining node knows whom to trust) and the secret
/// (so the cluster knows whom to admit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// sha256 of the CA certificate's DER.
    pub ca_fingerprint: [u8; 32],
    /// The secret, as the joining node presents it.
    pub secret: String,
}

impl JoinToken {
    /// A new token for the CA with `ca_fingerprint`, with a random secret.
    pub fn generate(ca_fingerprint: [u8; 32]) -> JoinToken {
        JoinToken {
            ca_fingerprint,
            secret: hex::encode(rand::random::<[u8; 32]>()),
        }
    }

    /// sha256 of the secret, as the cluster records it.
    pub fn secret_sha256(secret: &str) -> arca_protocol::Sha256 {
        arca_protocol::Sha256(Sha256::digest(secret.as_bytes()).into())
    }
}

impl std::fmt::Display for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{JOIN_TOKEN_PREFIX}:{}:{}",
            hex::encode(self.ca_fingerprint),
            self.secret
        )
    }
}

impl std::str::FromStr for JoinToken {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.trim().splitn(3, ':');
        let (Some(JOIN_TOKEN_PREFIX), Some(fingerprint), Some(secret)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(TlsError::MalformedJoinToken);
        };
        let mut ca_fingerprint = [0u8; 32];
        hex::decode_to_slice(fingerprint, &mut ca_fingerprint)
            .map_err(|_| TlsError::MalformedJoinToken)?;
        if secret.is_empty() {
            return Err(TlsError::MalformedJoinToken);
        }
        Ok(JoinToken {
            ca_fingerprint,
            secret: secret.to_string(),
        })
    }
}

/// A member's credentials: the cluster CA (certificate and key) and this node's certificate and key.
#[derive(Clone)]
pub struct ClusterIdentity {
    ca_cert_pem: String,
    ca_key_pem: String,
    node_cert_pem: String,
    node_key_pem: String,
}

const FILES: [&str; 4] = ["ca.crt", "ca.key", "node.crt", "node.key"];

impl ClusterIdentity {
    /// Creates a new cluster CA and this node's certificate (the first node of a cluster).
    pub fn create_cluster(node_id: u64) -> Result<ClusterIdentity, TlsError> {
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca_params().self_signed(&ca_key)?;
        let ca_key_pem = ca_key.serialize_pem();
        let (node_cert_pem, node_key_pem) = issue_node_certificate(ca_key, node_id)?;
        Ok(ClusterIdentity {
            ca_cert_pem: ca_cert.pem(),
            ca_key_pem,
            node_cert_pem,
            node_key_pem,
        })
    }

    /// The credentials a joining node received.
    pub fn from_grant(grant: JoinGrant) -> ClusterIdentity {
        ClusterIdentity {
            ca_cert_pem: grant.ca_cert_pem,
            ca_key_pem: grant.ca_key_pem,
            node_cert_pem: grant.node_cert_pem,
            node_key_pem: grant.node_key_pem,
        }
    }

    /// Loads the credentials from `dir`, if a cluster was created or joined there.
    pub fn load(dir: &Path) -> Result<Option<ClusterIdentity>, TlsError> {
        if !dir.join("node.key").exists() {
            return Ok(None);
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| TlsError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        Ok(Some(ClusterIdentity {
            ca_cert_pem: read(FILES[0])?,
            ca_key_pem: read(FILES[1])?,
            node_cert_pem: read(FILES[2])?,
            node_key_pem: read(FILES[3])?,
        }))
    }

    /// Writes the credentials to `dir` (keys readable by the owner only). `node.key` is written last:
    /// its presence is what [`ClusterIdentity::load`] looks for.
    pub fn save(&self, dir: &Path) -> Result<(), TlsError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| TlsError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let contents = [
            &self.ca_cert_pem,
            &self.ca_key_pem,
            &self.node_cert_pem,
            &self.node_key_pem,
        ];
        for (name, text) in FILES.iter().zip(contents) {
            let path = dir.join(name);
            crate::auth::write_private_file(&path, text.trim_end()).map_err(io(&path))?;
        }
        Ok(())
    }

    /// The keys derived from the cluster CA's private key (the same at every node).
    pub fn cluster_keys(&self) -> crate::secrets::ClusterKeys {
        crate::secrets::ClusterKeys::derive(&self.ca_key_pem)
    }

    /// sha256 of the CA certificate, as join tokens carry it.
    pub fn ca_fingerprint(&self) -> Result<[u8; 32], TlsError> {
        let der =
            CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes()).map_err(rustls_error)?;
        Ok(Sha256::digest(&der).into())
    }

    /// Credentials for a new member `node_id`, signed by this cluster's CA.
    pub fn grant(&self, node_id: u64) -> Result<JoinGrant, TlsError> {
        let ca_key = KeyPair::from_pem(&self.ca_key_pem)?;
        let (node_cert_pem, node_key_pem) = issue_node_certificate(ca_key, node_id)?;
        Ok(JoinGrant {
            ca_cert_pem: self.ca_cert_pem.clone(),
            ca_key_pem: self.ca_key_pem.clone(),
            node_cert_pem,
            node_key_pem,
        })
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        let ca =
            CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes()).map_err(rustls_error)?;
        roots.add(ca).map_err(rustls_error)?;
        Ok(Arc::new(roots))
    }

    fn chain_and_key(
        &self,
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
        let chain = [&self.node_cert_pem, &self.ca_cert_pem]
            .into_iter()
            .map(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).map_err(rustls_error))
            .collect::<Result<Vec<_>, _>>()?;
        let key =
            PrivateKeyDer::from_pem_slice(self.node_key_pem.as_bytes()).map_err(rustls_error)?;
        Ok((chain, key))
    }

    /// The inter-node port's server side: presents this node's certificate, asks for the peer's, and
    /// accepts connections without one only so that the connection can ask to join.
    pub fn server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let crypto = QuicServerConfig::try_from(self.tls_server_config()?).map_err(rustls_error)?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport());
        Ok(config)
    }

    /// The TLS 1.3 server configuration under [`ClusterIdentity::server_config`] (the benchmark
    /// also runs it over TCP, as the encrypted limit QUIC is compared with).
    pub fn tls_server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots()?, provider())
            .allow_unauthenticated()
            .build()
            .map_err(rustls_error)?;
        let (chain, key) = self.chain_and_key()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(rustls_error)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        Ok(tls)
    }

    /// The client side between members: verifies the peer against the CA and presents this node's
    /// certificate.
    pub fn client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        client_from(self.tls_client_config()?)
    }

    /// The TLS 1.3 client configuration under [`ClusterIdentity::client_config`].
    pub fn tls_client_config(&self) -> Result<rustls::ClientConfig, TlsError> {
        let (chain, key) = self.chain_and_key()?;
        let mut tls = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_error)?
            .with_root_certificates(self.roots()?)
            .with_client_auth_cert(chain, key)
            .map_err(rustls_error)?;
        tls.alpn_protocols = vec![ALPN.to_vec()];
        Ok(tls)
    }
}

/// The client side of a node that is joining: no certificate of its own yet, and it trusts the
/// server only if the server's chain contains the CA the join token names.
pub fn joining_client_config(ca_fingerprint: [u8; 32]) -> Result<quinn::ClientConfig, TlsError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(rustls_error)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa { ca_fingerprint }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    client_from(tls)
}

fn client_from(tls: rustls::ClientConfig) -> Result<quinn::ClientConfig, TlsError> {
    let crypto = QuicClientConfig::try_from(tls).map_err(rustls_error)?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(transport());
    Ok(config)
}

/// The endpoint's settings: datagrams up to [`LARGEST_UDP_PAYLOAD`] may be received (path MTU discovery
/// never probes above what the peer says it takes).
pub(super) fn endpoint_config() -> quinn::EndpointConfig {
    let mut config = quinn::EndpointConfig::default();
    if let Err(error) = config.max_udp_payload_size(LARGEST_UDP_PAYLOAD) {
        tracing::warn!(%error, "raising the largest UDP payload taken");
    }
    config
}

/// BBR congestion control; flow-control windows sized for chunk transfer over long, fast paths;
/// path MTU discovery up to jumbo frames (where the network carries them, fewer, larger packets);
/// keep-alives so that idle connections between members stay open.
fn transport() -> Arc<quinn::TransportConfig> {
    let mut transport = quinn::TransportConfig::default();
    // BBR paces to the measured bottleneck instead of halving at every loss: over a 50 ms link
    // losing 1 % of datagrams, 64 MiB took 1.3 s instead of 14 s with CUBIC (arca-bench cluster).
    transport.congestion_controller_factory(Arc::new(quinn::congestion::BbrConfig::default()));
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(LARGEST_UDP_PAYLOAD);
    transport.mtu_discovery_config(Some(mtu));
    transport
        .stream_receive_window(quinn::VarInt::from_u32(16 * 1024 * 1024))
        .receive_window(quinn::VarInt::from_u32(64 * 1024 * 1024))
        .send_window(64 * 1024 * 1024)
        .max_concurrent_bidi_streams(quinn::VarInt::from_u32(1024))
        .keep_alive_interval(Some(Duration::from_secs(2)));
    if let Ok(idle) = quinn::IdleTimeout::try_from(Duration::from_secs(10)) {
        transport.max_idle_timeout(Some(idle));
    }
    Arc::new(transport)
}

/// A node certificate for `node_id`, signed with `ca_key`: (certificate PEM, key PEM).
fn issue_node_certificate(ca_key: KeyPair, node_id: u64) -> Result<(String, String), TlsError> {
    let issuer = Issuer::new(ca_params(), ca_key);
    let node_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![NODE_SERVER_NAME.to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("arca node {node_id}"));
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = params.signed_by(&node_key, &issuer)?;
    Ok((cert.pem(), node_key.serialize_pem()))
}

/// Trusts a server whose chain includes the CA with the pinned fingerprint and whose certificate that
/// CA signed.
#[derive(Debug)]
struct PinnedCa {
    ca_fingerprint: [u8; 32],
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|cert| Sha256::digest(cert.as_ref()).as_slice() == self.ca_fingerprint)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server's certificate chain does not contain the CA the join token names"
                        .to_string(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_tokens_round_trip_and_reject_garbage() {
        let token = JoinToken::generate([7; 32]);
        let parsed: JoinToken = token.to_string().parse().expect("parse");
        assert_eq!(parsed, token);
        for bad in [
            "",
            "arca-join-v1:zz:secret",
            "other:0707:secret",
            "arca-join-v1:07",
        ] {
            assert!(bad.parse::<JoinToken>().is_err(), "{bad}");
        }
    }

    #[test]
    fn granted_credentials_chain_to_the_cluster_ca() {
        let first = ClusterIdentity::create_cluster(1).expect("cluster");
        let grant = first.grant(2).expect("grant");
        let second = ClusterIdentity::from_grant(grant);
        assert_eq!(
            second.ca_fingerprint().expect("fp"),
            first.ca_fingerprint().expect("fp")
        );
        // Both sides build valid configurations from the credentials.
        second.server_config().expect("server config");
        second.client_config().expect("client config");
        joining_client_config(first.ca_fingerprint().expect("fp")).expect("joining config");
        let dir = tempfile::tempdir().expect("dir");
        second.save(dir.path()).expect("save");
        let loaded = ClusterIdentity::load(dir.path())
            .expect("load")
            .expect("present");
        assert_eq!(loaded.node_cert_pem, second.node_cert_pem);
    }
}
