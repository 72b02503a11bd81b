//! `[metrics]`: where the Prometheus text endpoint listens, if anywhere (off by default).
//!
//! Only a loopback address or a Unix socket is accepted: the page holds the shop's sales
//! figures (counts per provider and outcome), and a counter box on a shop's LAN must not hand
//! them to whoever asks. A local agent, or an SSH tunnel, carries them further.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `"127.0.0.1:9464"`, `"[::1]:9464"`, `"localhost:9464"` or `"unix:/path/metrics.sock"`.
    pub listen: Option<String>,
}

/// Where the metrics endpoint listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MetricsListen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl MetricsConfig {
    /// The parsed `listen`, `None` when metrics are off; `Err` says why the value is refused.
    pub fn listen(&self) -> Result<Option<MetricsListen>, String> {
        self.listen.as_deref().map(parse_listen).transpose()
    }
}

pub fn parse_listen(text: &str) -> Result<MetricsListen, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        let path = PathBuf::from(path);
        if !path.is_absolute() {
            return Err(format!(
                "{text:?}: a Unix socket needs an absolute path, e.g. \
                 \"unix:/run/posbridge/metrics.sock\""
            ));
        }
        return Ok(MetricsListen::Unix(path));
    }
    let addr: SocketAddr = match text.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .map(|p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p))
            .map_err(|_| format!("{text:?}: the port must be a number from 0 to 65535"))?,
        None => text.parse().map_err(|_| {
            format!(
                "{text:?} is not an address: write \"127.0.0.1:9464\", \"[::1]:9464\" or \
                 \"unix:/run/posbridge/metrics.sock\""
            )
        })?,
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{text:?} is not a loopback address, and the metrics page shows the shop's sales \
             figures to anyone who can reach it (on the shop's LAN, everyone); listen on \
             \"127.0.0.1:9464\" or \"unix:/run/posbridge/metrics.sock\" and let a local agent \
             or an SSH tunnel carry the figures further"
        ));
    }
    Ok(MetricsListen::Tcp(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_unix_sockets_are_accepted() {
        assert_eq!(
            parse_listen("127.0.0.1:9464").unwrap(),
            MetricsListen::Tcp("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            parse_listen("[::1]:0").unwrap(),
            MetricsListen::Tcp("[::1]:0".parse().unwrap())
        );
        assert_eq!(
            parse_listen("localhost:9464").unwrap(),
            MetricsListen::Tcp("127.0.0.1:9464".parse().unwrap())
        );
        assert_eq!(
            parse_listen("unix:/run/posbridge/metrics.sock").unwrap(),
            MetricsListen::Unix("/run/posbridge/metrics.sock".into())
        );
    }

    #[test]
    fn anything_reachable_from_the_lan_is_refused_saying_why() {
        for bad in ["0.0.0.0:9464", "192.168.1.10:9464", "[::]:9464"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.contains("not a loopback address"), "{err}");
            assert!(err.contains("sales figures"), "{err}");
        }
        assert!(parse_listen("example.com:9464").is_err());
        assert!(parse_listen("localhost:http").is_err());
        assert!(parse_listen("unix:metrics.sock").is_err());
    }
}
