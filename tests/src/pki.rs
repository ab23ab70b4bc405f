//! A certificate authority made for a test (as a company's private CA would be) and a server
//! certificate it signed for 127.0.0.1 and localhost, for nodes serving HTTPS and the clients that
//! must trust them.

use std::sync::Arc;

use anyhow::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::TestNode;

/// A CA and a server certificate it signed for 127.0.0.1 and localhost, written as PEM files.
pub struct TestPki {
    /// Where the PEM files are (`ca.pem`, `server.pem`, `server.key`).
    pub dir: tempfile::TempDir,
    /// The CA certificate.
    pub ca_pem: String,
}

impl TestPki {
    /// A new CA and server certificate.
    pub fn new() -> Result<TestPki> {
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "Arca test private CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_pem = ca.self_signed(&ca_key)?.pem();
        let issuer = Issuer::new(ca, ca_key);
        let mut server = CertificateParams::new(vec!["localhost".to_string()])?;
        server
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_pem = server.signed_by(&server_key, &issuer)?.pem();
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("ca.pem"), &ca_pem)?;
        std::fs::write(dir.path().join("server.pem"), server_pem)?;
        std::fs::write(dir.path().join("server.key"), server_key.serialize_pem())?;
        Ok(TestPki { dir, ca_pem })
    }

    /// The path of one of the PEM files.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A client that trusts this CA (and nothing else would do for the HTTPS node).
    pub fn client(&self) -> Result<reqwest::Client> {
        Ok(reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes())?)
            .build()?)
    }

    /// An `arca-node` serving HTTPS with the server certificate.
    pub fn https_node(&self) -> Result<TestNode> {
        self.https_node_with(&[])
    }

    /// An `arca-node` serving HTTPS with the server certificate, and `extra` arguments.
    pub fn https_node_with(&self, extra: &[&str]) -> Result<TestNode> {
        let (cert, key) = (self.path("server.pem"), self.path("server.key"));
        let mut args = vec!["--tls-cert", &cert, "--tls-key", &key];
        args.extend_from_slice(extra);
        TestNode::start_with_args(&args)
    }
}

/// A TLS front on 127.0.0.1 for a plain-TCP server (an object store, say), serving the test CA's
/// server certificate, as a load balancer with a private CA's certificate would; stopped when
/// dropped.
pub struct TlsFront {
    /// The port it listens on.
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestPki {
    /// Terminates TLS on a free port and passes each connection on to `backend` on 127.0.0.1.
    pub async fn tls_front(&self, backend: u16) -> Result<TlsFront> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certificates = CertificateDer::pem_file_iter(self.path("server.pem"))?
            .collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_file(self.path("server.key"))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certificates, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut plain) =
                        tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                });
            }
        });
        Ok(TlsFront { port, task })
    }
}
