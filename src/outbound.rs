//! Outgoing HTTP to addresses an administrator typed (upstream issuers and what their
//! discovery documents name, back-channel logout URIs): one client, and the rule of where it
//! may go.
//!
//! Link-local addresses (169.254.0.0/16, fe80::/10, in any IPv4-mapped, -compatible or NAT64
//! form) and the cloud metadata services (`metadata.google.internal`, 169.254.169.254,
//! fd00:ec2::254, 100.100.100.200) are refused unless `outbound_allow_link_local` is set: a
//! URL pointing there would let whoever can edit one read the host's cloud credentials.
//! Loopback and private LAN addresses stay allowed — that is where a homelab's apps live.
//! The rule is checked on the URL (an address written in it) and again on every address DNS
//! gives for a name (the resolver below), which is what the connection then uses: a name
//! that resolves to a forbidden address is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Why a target was refused (shown to administrators, logged at delivery).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{target} is {kind}; Portcullis does not send requests there (set outbound_allow_link_local = true in the configuration if this is really intended)"
)]
pub struct Refused {
    pub target: String,
    pub kind: &'static str,
}

/// A refused target, or the HTTP client's own failure (for the openidconnect crate).
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error(transparent)]
    Http(#[from] openidconnect::HttpClientError<reqwest::Error>),
}

const METADATA_NAMES: &[&str] = &[
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
];

/// What kind of forbidden address `ip` is, if it is one.
pub fn forbidden_ip(ip: IpAddr) -> Option<&'static str> {
    let v4 = match ip {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(a) => embedded_v4(a),
    };
    if let Some(a) = v4 {
        if a == Ipv4Addr::new(169, 254, 169, 254) || a == Ipv4Addr::new(100, 100, 100, 200) {
            return Some("a cloud metadata address");
        }
        if a.is_link_local() {
            return Some("a link-local address");
        }
    }
    if let IpAddr::V6(a) = ip {
        if a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
            return Some("a cloud metadata address");
        }
        if a.segments().first().is_some_and(|s| s & 0xffc0 == 0xfe80) {
            return Some("a link-local address");
        }
    }
    None
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`)
/// or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = a.segments();
    let nat64 = s.get(..6) == Some(&[0x64, 0xff9b, 0, 0, 0, 0]);
    if nat64 {
        let o = a.octets();
        return Some(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
    }
    a.to_ipv4()
}

/// What kind of forbidden name `host` is (the metadata services' own names), if it is one.
pub fn forbidden_name(host: &str) -> Option<&'static str> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    METADATA_NAMES
        .contains(&h.as_str())
        .then_some("a cloud metadata service")
}

/// Whether the process allows link-local targets, as its configuration says (set once at
/// start by the server and the CLI alike, so the console, API and CLI check saved URLs the
/// same way the client checks requests).
static ALLOW_LINK_LOCAL: AtomicBool = AtomicBool::new(false);

pub fn set_allow_link_local(allow: bool) {
    ALLOW_LINK_LOCAL.store(allow, Ordering::Relaxed);
}

/// Checks a URL an administrator is saving: the address or name written in it.
pub fn check_url(url: &str) -> Result<(), Refused> {
    check_parsed(url, ALLOW_LINK_LOCAL.load(Ordering::Relaxed))
}

fn check_parsed(url: &str, allow: bool) -> Result<(), Refused> {
    if allow {
        return Ok(());
    }
    let Ok(u) = url::Url::parse(url) else {
        return Ok(()); // not a URL: the caller's own validation says so
    };
    let kind = match u.host() {
        Some(url::Host::Ipv4(a)) => forbidden_ip(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => forbidden_ip(IpAddr::V6(a)),
        Some(url::Host::Domain(d)) => forbidden_name(d),
        None => None,
    };
    match kind {
        Some(kind) => Err(Refused {
            target: u.host_str().unwrap_or_default().to_string(),
            kind,
        }),
        None => Ok(()),
    }
}

/// The outgoing HTTP client: 10 s timeout, never follows redirects, and the address rule
/// above in its resolver. Built on first use (its TLS root store costs memory and start-up
/// time, and many installations never call out).
pub struct Outbound {
    allow_link_local: bool,
    client: OnceLock<reqwest::Client>,
}

impl Outbound {
    pub fn new(allow_link_local: bool) -> Self {
        Self {
            allow_link_local,
            client: OnceLock::new(),
        }
    }

    fn client(&self) -> &reqwest::Client {
        self.client.get_or_init(|| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                // Idle connections are dropped before the usual 5 s keep-alive of servers
                // (Node's among them): reusing one the server is just closing fails the request.
                .pool_idle_timeout(Duration::from_secs(2))
                .dns_resolver(Arc::new(GuardedResolver {
                    allow_link_local: self.allow_link_local,
                }))
                .build()
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "HTTP client with settings failed; using defaults");
                    reqwest::Client::default()
                })
        })
    }

    pub fn get(&self, url: &str) -> Result<reqwest::RequestBuilder, Refused> {
        check_parsed(url, self.allow_link_local)?;
        Ok(self.client().get(url))
    }

    pub fn post(&self, url: &str) -> Result<reqwest::RequestBuilder, Refused> {
        check_parsed(url, self.allow_link_local)?;
        Ok(self.client().post(url))
    }

    /// One request of the openidconnect crate (discovery, token, userinfo, JWKS), under the
    /// same rule: pass `&|r| state.outbound.send(r)` as its HTTP client.
    pub async fn send(
        &self,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, OutboundError> {
        use openidconnect::AsyncHttpClient;
        check_parsed(&request.uri().to_string(), self.allow_link_local)?;
        Ok(self.client().call(request).await?)
    }
}

/// The system resolver, keeping only allowed addresses of a name.
struct GuardedResolver {
    allow_link_local: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow_link_local;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> = if allow {
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect()
            } else {
                if let Some(kind) = forbidden_name(&host) {
                    return Err(Box::new(Refused { target: host, kind }) as _);
                }
                let all: Vec<SocketAddr> =
                    tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
                allowed(&host, all)?
            };
            Ok(Box::new(found.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The addresses of `host` that may be connected to; refused when none is left.
fn allowed(host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, Refused> {
    let mut first_refusal = None;
    let kept: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| match forbidden_ip(a.ip()) {
            Some(kind) => {
                first_refusal.get_or_insert(kind);
                false
            }
            None => true,
        })
        .collect();
    match (kept.is_empty(), first_refusal) {
        (true, Some(kind)) => Err(Refused {
            target: format!("{host} (which resolves only to such addresses)"),
            kind,
        }),
        _ => Ok(kept),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn link_local_and_metadata_addresses_are_refused_in_every_form() {
        for bad in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
            "::169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
        ] {
            assert!(forbidden_ip(ip(bad)).is_some(), "{bad}");
        }
        for good in [
            "127.0.0.1",
            "::1",
            "10.0.0.5",
            "192.168.1.10",
            "172.16.0.1",
            "100.64.0.1",
            "fd12::1",
            "8.8.8.8",
            "2001:db8::1",
            "fec0::1",
        ] {
            assert!(forbidden_ip(ip(good)).is_none(), "{good}");
        }
    }

    #[test]
    fn urls_with_forbidden_hosts_are_refused_unless_allowed() {
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fe80::1%25eth0]/",
            "http://0xa9fea9fe/",
            "http://2852039166/",
            "https://metadata.google.internal/computeMetadata/v1/",
            "https://METADATA.google.internal./",
        ] {
            let refused = check_parsed(bad, false);
            if bad.contains("fe80::1%25") {
                continue; // zone ids are not valid URL hosts: the URL itself is refused elsewhere
            }
            let e = refused.unwrap_err();
            assert!(e.to_string().contains("outbound_allow_link_local"), "{e}");
            assert!(check_parsed(bad, true).is_ok());
        }
        assert!(check_parsed("https://accounts.google.com", false).is_ok());
        assert!(check_parsed("http://192.168.1.20:8080/logout", false).is_ok());
        assert!(check_parsed("http://localhost:3000/", false).is_ok());
    }

    #[test]
    fn a_name_is_refused_only_when_all_its_addresses_are() {
        let a = |s: &str| SocketAddr::new(ip(s), 0);
        let mixed = allowed("x.example", vec![a("169.254.1.1"), a("192.168.1.2")]).unwrap();
        assert_eq!(
            mixed,
            vec![a("192.168.1.2")],
            "the forbidden one is never connected"
        );
        let e = allowed("x.example", vec![a("169.254.169.254"), a("fe80::1")]).unwrap_err();
        assert!(e.target.starts_with("x.example"), "{e}");
        assert_eq!(allowed("x.example", vec![a("10.1.1.1")]).unwrap().len(), 1);
    }
}
