//! Serving the service's router over TLS directly, without a reverse proxy.
//!
//! Business Central and Mailchimp only call `https://` URLs in production, so the service
//! either sits behind a reverse proxy that terminates TLS (see the README) or terminates it
//! itself with a PEM certificate chain and key ([`TlsFiles`]). Handshakes run concurrently in
//! their own tasks, each bounded by [`HANDSHAKE_TIMEOUT`], so a slow or silent client can never
//! hold up the next connection (a Business Central validation handshake must be answered
//! within 5 seconds). HTTP/1.1 only, as the webhook senders speak.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Completed handshakes waiting for the server to take them.
const READY_QUEUE: usize = 256;

/// Where the certificate and key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM: the server certificate first, then the intermediates.
    pub cert_chain: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub private_key: PathBuf,
}

/// Reads the PEM files into a rustls server configuration (HTTP/1.1, TLS 1.2 and 1.3).
/// Errors name the file and what is wrong with it, never the key's content.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, String> {
    let certs = read_chain(&files.cert_chain)?;
    let key = read_key(&files.private_key)?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate and key: {e}",
                files.cert_chain.display(),
                files.private_key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: holds no `BEGIN CERTIFICATE` block", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| format!("{}: no usable PEM private key: {e}", path.display()))
}

/// A listener that hands axum connections whose TLS handshake already completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accepts TCP connections on `tcp` and runs each handshake in its own task. The accept
    /// task ends when the listener is dropped.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    _ = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "Accepting a connection failed.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "A TLS handshake failed."),
                        Err(_) => tracing::debug!(%peer, "A TLS handshake timed out."),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept task only stops once this receiver is gone, so this cannot happen;
            // never return rather than hand out a broken connection.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// Serves `app` over TLS on `tcp` until `shutdown` completes, then lets requests in flight
/// finish.
pub async fn serve_tls(
    tcp: TcpListener,
    config: Arc<ServerConfig>,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = TlsListener::new(tcp, config)?;
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;

    /// A self-signed certificate for `localhost`, written as PEM files.
    fn self_signed(dir: &Path) -> (TlsFiles, String) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let files = TlsFiles { cert_chain: dir.join("cert.pem"), private_key: dir.join("key.pem") };
        std::fs::write(&files.cert_chain, cert.cert.pem()).unwrap();
        std::fs::write(&files.private_key, cert.signing_key.serialize_pem()).unwrap();
        (files, cert.cert.pem())
    }

    #[tokio::test]
    async fn a_client_trusting_the_certificate_gets_answers_over_https() {
        let dir = tempfile::tempdir().unwrap();
        let (files, cert_pem) = self_signed(dir.path());
        let config = server_config(&files).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_tls(tcp, config, app, async {
            let _ = stopped.await;
        }));

        // A connection that never says hello does not hold up the others.
        let _silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();

        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
            .resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port)))
            .build()
            .unwrap();
        let url = format!("https://localhost:{port}/healthz");
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");

        // A client that does not trust it is refused by its own TLS.
        let strict =
            reqwest::Client::builder().resolve("localhost", SocketAddr::from(([127, 0, 0, 1], port))).build().unwrap();
        assert!(strict.get(&url).send().await.is_err());
        // And plain HTTP on the TLS port gets no HTTP answer.
        assert!(reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await.is_err());

        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    }

    #[test]
    fn bad_files_are_errors_that_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut files, _) = self_signed(dir.path());
        std::fs::write(dir.path().join("empty.pem"), "").unwrap();
        let key = files.private_key.clone();
        files.private_key = dir.path().join("empty.pem");
        let e = server_config(&files).unwrap_err();
        assert!(e.contains("empty.pem"), "{e}");
        files.private_key = key;
        files.cert_chain = dir.path().join("missing.pem");
        let e = server_config(&files).unwrap_err();
        assert!(e.contains("missing.pem"), "{e}");
    }
}
