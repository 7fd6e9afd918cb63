//! The guard against server-side request forgery: webhook URLs are chosen by whoever holds
//! an admin token, and the notifier runs inside the network, so it must not be made to
//! reach loopback, private, link-local or otherwise internal addresses.
//!
//! The guard runs twice: when an endpoint is registered (its host is resolved and every
//! address checked), and on every delivery, where [`GuardedResolver`] is the HTTP client's
//! DNS resolver: it hands the client only vetted addresses, so a name that resolved to a
//! public address at registration and to `127.0.0.1` later (DNS rebinding) is refused at
//! the moment of connecting. Redirects are never followed and proxies never used.
use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// Why a webhook URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlRefused {
    /// Not an absolute `http`/`https` URL with a host, or too long, or with credentials.
    #[error("{0}")]
    Invalid(String),
    /// The host is, or resolves to, an internal address.
    #[error(
        "{host} is or resolves to {addr}, an internal address; webhooks may only reach public addresses"
    )]
    Internal {
        /// The URL's host.
        host: String,
        /// The refused address.
        addr: IpAddr,
    },
    /// The host does not resolve.
    #[error("{0} does not resolve")]
    Unresolvable(String),
}

/// The longest webhook URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// True for addresses a webhook must not reach: unspecified, loopback, private (RFC 1918),
/// shared (CGNAT, RFC 6598), link-local (including cloud metadata at 169.254.169.254),
/// multicast, broadcast, documentation and benchmarking ranges, `0.0.0.0/8`, `240.0.0.0/4`,
/// IPv6 unique-local and link-local, and IPv6 forms that embed an IPv4 address
/// (IPv4-mapped, IPv4-compatible, NAT64, 6to4), judged by the address they embed.
#[must_use]
pub fn is_internal(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b)) // 100.64.0.0/10 shared address space
        || (a == 192 && b == 0 && c == 0) // 192.0.0.0/24 protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // 198.18.0.0/15 benchmarking
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_internal_v4(v4);
    }
    let segments = ip.segments();
    // ::a.b.c.d (deprecated IPv4-compatible) and 64:ff9b::a.b.c.d (NAT64).
    if segments[..6] == [0, 0, 0, 0, 0, 0] && !ip.is_loopback() && !ip.is_unspecified()
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
    {
        let [.., a, b] = segments;
        return is_internal_v4(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        ));
    }
    // 2002:a.b.c.d::/48 (6to4).
    if segments[0] == 0x2002 {
        let (a, b) = (segments[1], segments[2]);
        return is_internal_v4(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        ));
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // fc00::/7 unique local
        || (segments[0] & 0xffc0) == 0xfe80 // fe80::/10 link local
        || (segments[0] & 0xffc0) == 0xfec0 // fec0::/10 site local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard prefix
}

/// Parses and checks a webhook URL's form (not where it points): absolute `http` or
/// `https`, a host, no user name or password, at most [`MAX_URL_LEN`] characters.
///
/// # Errors
/// [`UrlRefused::Invalid`] saying what is wrong.
pub fn parse_url(text: &str) -> Result<Url, UrlRefused> {
    if text.len() > MAX_URL_LEN {
        return Err(UrlRefused::Invalid(format!(
            "the URL is longer than {MAX_URL_LEN} characters"
        )));
    }
    let url = Url::parse(text)
        .map_err(|err| UrlRefused::Invalid(format!("not an absolute URL: {err}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlRefused::Invalid("the URL must be http or https".into()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(UrlRefused::Invalid("the URL must name a host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Invalid(
            "the URL must not carry credentials; authenticate with the signature".into(),
        ));
    }
    if url.fragment().is_some() {
        return Err(UrlRefused::Invalid(
            "the URL must not have a fragment".into(),
        ));
    }
    Ok(url)
}

/// Resolves `url`'s host and refuses it if any address is internal (unless
/// `allow_private`). An IP literal is judged as it is.
///
/// # Errors
/// [`UrlRefused::Internal`] or [`UrlRefused::Unresolvable`].
pub async fn check_destination(url: &Url, allow_private: bool) -> Result<(), UrlRefused> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(ip.into(), port)],
        Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(ip.into(), port)],
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|_| UrlRefused::Unresolvable(host.clone()))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(UrlRefused::Unresolvable(host));
    }
    if let Some(bad) = addrs.iter().find(|a| !allow_private && is_internal(a.ip())) {
        return Err(UrlRefused::Internal {
            host,
            addr: bad.ip(),
        });
    }
    Ok(())
}

/// The HTTP client's resolver: resolves with the system resolver and keeps only public
/// addresses (all addresses when `allow_private`); a name with none left fails to
/// resolve, so the request fails without connecting.
#[derive(Clone, Debug)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    /// A resolver that refuses internal addresses unless `allow_private`.
    #[must_use]
    pub fn new(allow_private: bool) -> Arc<Self> {
        Arc::new(Self { allow_private })
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_internal(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fe80::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(is_internal(ip(internal)), "{internal} should be internal");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2002:0808:0808::",
        ] {
            assert!(!is_internal(ip(public)), "{public} should be public");
        }
    }

    #[test]
    fn url_forms_are_checked() {
        assert!(parse_url("https://hooks.example.com/emporium?x=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "/relative",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "file:///etc/passwd",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(parse_url(&long).is_err());
    }

    #[tokio::test]
    async fn destinations_are_resolved_and_judged() {
        for refused in [
            "http://127.0.0.1:9/",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://localhost:8080/hook",
        ] {
            let url = parse_url(refused).unwrap();
            assert!(
                matches!(
                    check_destination(&url, false).await,
                    Err(UrlRefused::Internal { .. })
                ),
                "{refused}"
            );
            assert!(check_destination(&url, true).await.is_ok(), "{refused}");
        }
        let public = parse_url("https://8.8.8.8/").unwrap();
        assert!(check_destination(&public, false).await.is_ok());
    }

    #[tokio::test]
    async fn the_resolver_hands_out_only_public_addresses() {
        let refused = GuardedResolver::new(false)
            .resolve(Name::from_str("localhost").unwrap())
            .await;
        assert!(refused.is_err());
        let allowed: Vec<SocketAddr> = GuardedResolver::new(true)
            .resolve(Name::from_str("localhost").unwrap())
            .await
            .unwrap()
            .collect();
        assert!(allowed.iter().all(|a| a.ip().is_loopback()), "{allowed:?}");
    }

    use std::str::FromStr;
}
