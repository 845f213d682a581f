//! The node's iroh endpoint: its identity (secret key), its QUIC socket, and its relay.
//!
//! Offline first: with no `relay_url` the endpoint uses no relay and no public DNS (iroh's
//! `Minimal` preset with relays disabled), so nothing waits for the internet. With a
//! `relay_url`, that relay alone is used (`http://` works without TLS).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use iroh::endpoint::{IdleTimeout, QuicTransportConfig, RelayMode, presets};
use iroh::{Endpoint, EndpointAddr, EndpointId, RelayMap, SecretKey};

use super::config::{IrohConfig, parse_secret_key};
use crate::limits::{QUIC_IDLE_TIMEOUT_MS, QUIC_KEEP_ALIVE_MS};

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum IrohError {
    /// The configuration is wrong (bad key, bad host, bad relay URL).
    #[error("invalid iroh configuration: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
    /// Binding the socket failed.
    #[error("could not bind the iroh endpoint: {reason}")]
    Bind {
        /// The bind error.
        reason: String,
    },
}

/// Owns the node's iroh endpoint.
#[derive(Debug, Clone)]
pub struct IrohEndpointManager {
    endpoint: Endpoint,
    node_addr: EndpointAddr,
}

impl IrohEndpointManager {
    /// Binds an endpoint on `host` and `config.bind_port` (0: chosen by the OS) with the configured
    /// key, else `secret_key`, else a new one.
    pub async fn bind(
        config: &IrohConfig,
        host: &str,
        secret_key: Option<SecretKey>,
        alpns: Vec<Vec<u8>>,
    ) -> Result<Self, IrohError> {
        let secret_key = match (&config.secret_key, secret_key) {
            (Some(hex_key), _) => {
                parse_secret_key(hex_key).map_err(|reason| IrohError::Invalid { reason })?
            }
            (None, Some(key)) => key,
            (None, None) => SecretKey::generate(),
        };
        let ip: IpAddr = host.parse().map_err(|_| IrohError::Invalid {
            reason: format!("host {host:?} is not an IP address"),
        })?;
        let relay_mode = match &config.relay_url {
            None => RelayMode::Disabled,
            Some(url) => {
                let url: iroh::RelayUrl = url
                    .parse()
                    .map_err(|e| IrohError::Invalid { reason: format!("relay_url: {e}") })?;
                RelayMode::Custom(RelayMap::from_iter([url]))
            }
        };
        let endpoint = Endpoint::builder(presets::Minimal)
            .secret_key(secret_key)
            .transport_config(transport_config()?)
            .relay_mode(relay_mode)
            .alpns(alpns)
            .bind_addr(SocketAddr::new(ip, config.bind_port))
            .map_err(|e| IrohError::Invalid { reason: e.to_string() })?
            .bind()
            .await
            .map_err(|e| IrohError::Bind { reason: e.to_string() })?;
        let node_addr = endpoint.addr();
        tracing::info!(endpoint_id = %endpoint.id(), ?node_addr, "Iroh endpoint initialized");
        Ok(Self { endpoint, node_addr })
    }

    /// This node's endpoint address (id plus its direct addresses) as bound at startup; give
    /// it to peers (`network_factory.add_peer`) so they can dial this node.
    pub fn node_addr(&self) -> &EndpointAddr {
        &self.node_addr
    }

    /// This node's endpoint id (its public key).
    pub fn endpoint_id(&self) -> EndpointId {
        self.endpoint.id()
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }
}

/// QUIC settings: a connection pings its peer every `QUIC_KEEP_ALIVE_MS` and is closed after
/// `QUIC_IDLE_TIMEOUT_MS` without an answer. A peer that died (or restarted on the same key
/// and port, which does not know the old connection) is thus noticed within seconds, also on a
/// connection that only carries the occasional forwarded request; the next call then dials
/// afresh instead of waiting on a dead connection.
fn transport_config() -> Result<QuicTransportConfig, IrohError> {
    let idle = IdleTimeout::try_from(Duration::from_millis(QUIC_IDLE_TIMEOUT_MS))
        .map_err(|e| IrohError::Invalid { reason: format!("QUIC idle timeout: {e}") })?;
    Ok(QuicTransportConfig::builder()
        .keep_alive_interval(Duration::from_millis(QUIC_KEEP_ALIVE_MS))
        .max_idle_timeout(Some(idle))
        .build())
}
