//! The checks on each configured payment backend, from its `base_url`: DNS resolution, the
//! connection and TLS handshake (one plain GET of the base URL, which moves no money), and the
//! clock skew between this counter and the backend (its HTTP `Date` header): request
//! signatures and timestamps go stale when the counter's clock drifts. For IOT Pay also one
//! signed query_order for an order that cannot exist, to show that its answers verify under
//! the configured key (`backend.iotpay.sign`).

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::{Check, Context};

/// Skew above this warns (time sync is not working); above [`SKEW_FAIL`] fails: the figure
/// over which the providers put a refusal down to the clock (`clock_skew`).
const SKEW_WARN: f64 = 5.0;
const SKEW_FAIL: f64 = crate::clock::SKEW_LIMIT_S as f64;

pub fn checks(cx: &Context) -> Vec<Check> {
    let Some(config) = &cx.config else {
        return vec![Check::skip(
            "backends",
            "the config is not valid: backends not checked",
        )];
    };
    let p = &config.providers;
    let urls: Vec<(&str, &str)> = [
        ("phonepe", p.phonepe.as_ref().map(|c| c.base_url.as_str())),
        ("iotpay", p.iotpay.as_ref().map(|c| c.base_url.as_str())),
        ("paysera", p.paysera.as_ref().map(|c| c.base_url.as_str())),
    ]
    .into_iter()
    .filter_map(|(name, url)| Some((name, url?)))
    .collect();
    if urls.is_empty() {
        return vec![Check::skip("backends", "no network backend configured")];
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            return vec![Check::warn(
                "backends",
                format!("cannot check: {e}"),
                "retry",
            )]
        }
    };
    let mut out: Vec<Check> = urls
        .into_iter()
        .flat_map(|(name, url)| runtime.block_on(backend(name, url, cx.timeout)))
        .collect();
    if let Some(c) = &p.iotpay {
        out.push(runtime.block_on(iotpay_sign(c, cx.timeout)));
    }
    out
}

/// IOT Pay answers that do not verify are never trusted, so a wrong key or mch_id would leave
/// every sale unknown: one harmless signed query_order shows it before a customer does.
async fn iotpay_sign(cfg: &crate::config::IotPayConfig, timeout: Duration) -> Check {
    use crate::provider::iotpay::{probe, Probe};
    const NAME: &str = "backend.iotpay.sign";
    const FIX: &str = "check providers.iotpay.key and providers.iotpay.mch_id against the IOT Pay merchant portal";
    match probe(cfg, timeout).await {
        Probe::Verified(what) => Check::ok(
            NAME,
            format!("a signed query_order was answered ({what}) and the answer's signature verifies with providers.iotpay.key"),
        ),
        Probe::Refused(msg) => Check::fail(
            NAME,
            format!("IOT Pay refused our signed query ({msg}): providers.iotpay.key or providers.iotpay.mch_id is wrong, every sale would be refused"),
            FIX,
        ),
        Probe::BadSignature(e) => Check::fail(
            NAME,
            format!("IOT Pay's answer does not verify with providers.iotpay.key ({e}): providers.iotpay.key or providers.iotpay.mch_id is wrong (or IOT Pay signs differently), and every sale would stay unknown"),
            FIX,
        ),
        Probe::NoAnswer(e) => Check::warn(
            NAME,
            format!("cannot tell whether IOT Pay's answers verify: {e}"),
            "check backend.iotpay.tls, then run `posbridge doctor` again",
        ),
        Probe::NoKey(e) => Check::warn(
            NAME,
            format!("cannot sign a probe: {e}"),
            "run `posbridge doctor` as a user who can read providers.iotpay.key (e.g. root)",
        ),
    }
}

async fn backend(name: &str, base_url: &str, timeout: Duration) -> Vec<Check> {
    let key = |what: &str| format!("backend.{name}.{what}");
    let url = match reqwest::Url::parse(base_url) {
        Ok(u) if u.host_str().is_some() => u,
        _ => {
            return vec![Check::fail(
                key("dns"),
                format!("base_url {base_url:?} is not a URL with a host"),
                format!("correct providers.{name}.base_url in the config"),
            )]
        }
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let mut out = Vec::new();
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host.as_str(), port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            out.push(Check::ok(
                key("dns"),
                format!("{host} resolves to {}", addrs.join(", ")),
            ));
        }
        Ok(Err(e)) => {
            out.push(Check::fail(
                key("dns"),
                format!("cannot resolve {host}: {e}"),
                "check the network and DNS (`resolvectl status`, /etc/resolv.conf) and base_url",
            ));
            return out;
        }
        Err(_) => {
            out.push(Check::fail(
                key("dns"),
                format!("resolving {host} took over {timeout:?}"),
                "check the network and DNS (`resolvectl status`, /etc/resolv.conf)",
            ));
            return out;
        }
    }

    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::warn(
                key("tls"),
                format!("cannot check: {e}"),
                "retry",
            ));
            return out;
        }
    };
    let sent = Instant::now();
    let sent_at = crate::clock::now();
    let answer = client.get(url.clone()).send().await;
    let rtt = sent.elapsed();
    let resp = match answer {
        Ok(r) => r,
        Err(e) => {
            let (what, fix) = if e.is_timeout() {
                (
                    "no answer within the timeout",
                    "check the network path (firewall, proxy) to the backend",
                )
            } else if chain(&e).contains("certificate") || chain(&e).to_lowercase().contains("tls")
            {
                ("TLS handshake failed", "check the counter's clock and base_url; a proxy that intercepts TLS is not supported")
            } else {
                (
                    "cannot connect",
                    "check base_url and the network path (firewall, proxy) to the backend",
                )
            };
            out.push(Check::fail(
                key("tls"),
                format!("{what}: {host}:{port}: {}", chain(&e)),
                fix,
            ));
            out.push(match crate::provider::http::certificate_time(&e) {
                // No Date header to compare with, but the handshake itself says it.
                Some(when) => Check::fail(
                    key("clock"),
                    format!(
                        "{host}'s TLS certificate {when} by this counter's clock ({}): the clock is wrong, and every sale through {name} is refused until it is set",
                        crate::clock::now_rfc3339()
                    ),
                    "set the time: `timedatectl set-ntp true` and check `timedatectl timesync-status` (or `timedatectl set-time`)",
                ),
                None => Check::skip(key("clock"), "no answer to take the time from"),
            });
            return out;
        }
    };
    let status = resp.status().as_u16();
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|a| a.is_loopback());
    out.push(match url.scheme() {
        "https" => Check::ok(
            key("tls"),
            format!("TLS handshake with {host}:{port} ok (HTTP {status})"),
        ),
        _ if loopback => Check::ok(
            key("tls"),
            format!("plain HTTP to a loopback replica at {host}:{port} (HTTP {status})"),
        ),
        _ => Check::warn(
            key("tls"),
            format!("base_url is plain http:// to {host}: no TLS (HTTP {status})"),
            format!("use the backend's https:// URL in providers.{name}.base_url"),
        ),
    });
    out.push(clock(&key("clock"), &host, resp.headers(), sent_at, rtt));
    out
}

fn clock(
    name: &str,
    host: &str,
    headers: &reqwest::header::HeaderMap,
    sent_at: OffsetDateTime,
    rtt: Duration,
) -> Check {
    let Some(date) = headers
        .get(reqwest::header::DATE)
        .and_then(|v| v.to_str().ok())
    else {
        return Check::skip(
            name,
            format!("{host} sent no Date header to compare clocks with"),
        );
    };
    let Some(theirs) = crate::clock::parse_http_date(date) else {
        return Check::skip(
            name,
            format!("{host} sent an unreadable Date header {date:?}"),
        );
    };
    // The backend stamped its answer somewhere in the round trip: compare with its middle.
    let ours = sent_at + rtt / 2;
    let skew = (ours - theirs).as_seconds_f64();
    skew_check(name, host, skew)
}

fn skew_check(name: &str, host: &str, skew: f64) -> Check {
    let detail = format!(
        "this counter's clock is {:.0} s {} {host}'s",
        skew.abs(),
        if skew >= 0.0 { "ahead of" } else { "behind" }
    );
    let fix = "turn on time sync: `timedatectl set-ntp true`, then `timedatectl status`";
    if skew.abs() > SKEW_FAIL {
        Check::fail(
            name,
            format!("{detail}: over {SKEW_FAIL} s, signed requests may be refused"),
            fix,
        )
    } else if skew.abs() > SKEW_WARN {
        Check::warn(name, format!("{detail}: over {SKEW_WARN} s"), fix)
    } else {
        Check::ok(name, format!("{detail} (within {SKEW_WARN} s)"))
    }
}

/// An error and its causes, as one line ("error sending request: ...: Connection refused").
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn skew_thresholds_are_5_and_60_seconds() {
        assert_eq!(skew_check("c", "h", 1.0).status, Status::Ok);
        assert_eq!(skew_check("c", "h", -4.9).status, Status::Ok);
        assert_eq!(skew_check("c", "h", 6.0).status, Status::Warn);
        assert_eq!(skew_check("c", "h", -61.0).status, Status::Fail);
        assert!(skew_check("c", "h", -61.0).detail.contains("behind"));
    }
}
