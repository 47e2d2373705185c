//! TLS for the store's connections: rustls (no OpenSSL), through
//! `tokio-rustls`, plugged into `tokio-postgres` as its `MakeTlsConnect`.
//!
//! Used when the URL says `sslmode=require` or `store:` names a `ca_file:`
//! (then TLS is required: a server that refuses it is not talked to in
//! plain text). The server's certificate is always verified, against the
//! system's roots and the certificates of `ca_file:` (PEM), for the host
//! of the URL (a name, or an IP address in the certificate's
//! `subjectAltName`). Without either, connections are plain TCP, as
//! before (`sslmode=prefer` does not try TLS: a certificate that cannot be
//! verified would otherwise refuse a server that worked).

use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::Socket;

/// The client side of TLS: the roots it trusts.
#[derive(Clone)]
pub(super) struct Rustls(Arc<rustls::ClientConfig>);

impl Rustls {
    /// The system's roots, and those of `ca_file` (PEM) if given. An
    /// unreadable `ca_file` (or one with no certificate) is an error; no
    /// root at all too.
    pub(super) fn new(ca_file: Option<&Path>) -> Result<Rustls, String> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        let _ = roots.add_parsable_certificates(native.certs);
        if let Some(path) = ca_file {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| format!("store `ca_file:` {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "store `ca_file:` {}: no PEM certificate in it",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("store `ca_file:` {}: {e}", path.display()))?;
            }
        }
        if roots.is_empty() {
            return Err(
                "TLS to the store: no root certificate (none in the system, no `ca_file:`)"
                    .to_owned(),
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS to the store: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Rustls(Arc::new(config)))
    }
}

impl MakeTlsConnect<Socket> for Rustls {
    type Stream = Stream;
    type TlsConnect = Connect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, Self::Error> {
        Ok(Connect {
            config: self.0.clone(),
            name: ServerName::try_from(domain.to_owned())?,
        })
    }
}

/// One connection's handshake, for the server `name`.
pub(super) struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsConnect<Socket> for Connect {
    type Stream = Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

    fn connect(self, socket: Socket) -> Self::Future {
        Box::pin(async move {
            tokio_rustls::TlsConnector::from(self.config)
                .connect(self.name, socket)
                .await
                .map(Stream)
        })
    }
}

/// A TLS connection to the server.
pub(super) struct Stream(tokio_rustls::client::TlsStream<Socket>);

impl TlsStream for Stream {
    /// No channel binding: SCRAM authenticates without it
    /// (`SCRAM-SHA-256`, not `-PLUS`).
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
