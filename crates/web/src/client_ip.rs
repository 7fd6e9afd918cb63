//! Who a request comes from, behind a load balancer (`EMPORIUM_TRUSTED_PROXIES`).
//!
//! Rate limits count per client IP. Behind a proxy (nginx in `docker-compose.yml`) every
//! connection comes from the proxy, so the limits would count the whole shop as one
//! client. When the peer is a trusted proxy, the client is the rightmost address of
//! `X-Forwarded-For` that is not a trusted proxy itself: addresses left of it were written
//! by the client and may be forged, those right of it by the proxies. With no proxies
//! trusted (the default) the header is ignored, so no client can choose its address.
use std::net::IpAddr;

use axum::http::HeaderMap;

/// One trusted address or network (`10.0.0.0/8`, `192.0.2.7`, `fd00::/8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let bits = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix| *prefix <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0 to {bits}"))?,
            None => bits,
        };
        Ok(Self { address, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ip = match (self.address, ip) {
            (IpAddr::V4(_), IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            _ => ip,
        };
        match (self.address, ip) {
            (IpAddr::V4(network), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    /// Parses addresses and networks separated by commas (`10.0.0.0/8, 192.0.2.7`).
    ///
    /// # Errors
    /// Says which entry is neither.
    pub fn parse(text: &str) -> Result<Self, String> {
        let networks = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Network::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if networks.is_empty() {
            return Err("no address or network given".into());
        }
        Ok(Self(networks))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client of a request that came from `peer` with `headers`. Pure.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(ip) => client = ip,
                // Garbage before a trusted hop: the last address a proxy vouched for.
                Err(_) => break,
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn networks_parse_and_bad_entries_are_named() {
        assert!(TrustedProxies::parse("10.0.0.0/8, 192.0.2.7,fd00::/8").is_ok());
        for bad in [
            "",
            " , ",
            "10.0.0.0/33",
            "fd00::/129",
            "nginx",
            "10.0.0.0/x",
        ] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
        let trusted = TrustedProxies::parse("172.16.0.0/12,::1").unwrap();
        assert!(trusted.trusts(ip("172.31.255.1")));
        assert!(!trusted.trusts(ip("172.32.0.1")));
        assert!(trusted.trusts(ip("::1")));
        assert!(
            trusted.trusts(ip("::ffff:172.16.0.9")),
            "IPv4 mapped into IPv6"
        );
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .trusts(ip("203.0.113.1"))
        );
    }

    #[test]
    fn the_client_is_the_rightmost_address_no_trusted_proxy_wrote() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let proxy = ip("10.0.0.2");
        // nginx appends the address it saw: the client's own entries come first.
        let headers = forwarded(&["1.2.3.4, 198.51.100.7"]);
        assert_eq!(trusted.client(proxy, &headers), ip("198.51.100.7"));
        // Two proxies in a row, the header split over two lines.
        let headers = forwarded(&["198.51.100.7", "10.0.0.9"]);
        assert_eq!(trusted.client(proxy, &headers), ip("198.51.100.7"));
        // Not through a trusted proxy: the header is the client's own word.
        assert_eq!(
            trusted.client(ip("203.0.113.5"), &headers),
            ip("203.0.113.5")
        );
        // No header, or garbage in it: the last address a proxy vouched for.
        assert_eq!(trusted.client(proxy, &HeaderMap::new()), proxy);
        let headers = forwarded(&["nonsense, 10.0.0.9"]);
        assert_eq!(trusted.client(proxy, &headers), ip("10.0.0.9"));
        // Nobody trusted: the peer, whatever the header says.
        let headers = forwarded(&["1.2.3.4"]);
        assert_eq!(TrustedProxies::default().client(proxy, &headers), proxy);
    }
}
