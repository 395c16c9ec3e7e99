//! The RTMP and RTMPS listener: accepts connections up to the caps (in all, and per address),
//! does the TLS handshake for RTMPS, and serves each connection in its own task.

use super::conn::{self, Context};
use crate::net_limits::Slots;
use crate::security::Protocol;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Accepts on `listener` until the task is dropped. With `tls`, connections are RTMPS.
pub async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, slots: Arc<Slots>, ctx: Arc<Context>) {
    let protocol = if tls.is_some() { Protocol::Rtmps } else { Protocol::Rtmp };
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: the listener itself is fine, keep accepting.
                log::warn!("{} accept failed: {e}", protocol.as_str());
                tokio::task::yield_now().await;
                continue;
            }
        };
        let slot = match slots.take(peer.ip(), false) {
            Ok(slot) => slot,
            Err(refusal) => {
                log::warn!(
                    "{} {peer}: refused, {refusal} (rtmp.maxConnections, rtmp.maxConnectionsPerAddress)",
                    protocol.as_str()
                );
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (ctx, tls) = (ctx.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => conn::serve(tcp, peer, protocol, ctx).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(ctx.limits.handshake_timeout, acceptor.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(stream)) => conn::serve(stream, peer, protocol, ctx).await,
                        Ok(Err(e)) => log::info!("rtmps {peer}: TLS handshake failed: {e}"),
                        Err(_) => log::info!("rtmps {peer}: TLS handshake timed out"),
                    }
                }
            }
        });
    }
}
