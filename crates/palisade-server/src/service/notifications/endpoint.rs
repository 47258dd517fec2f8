//! Which endpoints a notification may go to, so that a webhook cannot become a way to reach
//! internal services (server-side request forgery).
//!
//! By default an endpoint must be `https://` and must not name or resolve to a loopback, private,
//! link-local (cloud metadata), shared, multicast or unspecified address. The check runs when a
//! channel is saved (for the URL as written) and again at every delivery (for what the name
//! resolves to then, through [`SafeResolver`]), so DNS cannot be changed under a saved channel
//! to point inside. Redirects are not followed. `ServerConfig::allow_insecure_webhooks` lifts
//! all of it, for development and tests.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use reqwest::Url;

/// Tells whether an address is one a webhook must not reach.
pub fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(mapped) = v6.to_ipv4_mapped() {
                return is_internal_v4(mapped);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // fc00::/7 unique local, fe80::/10 link-local.
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                // 64:ff9b::/96 NAT64 may wrap an internal IPv4 address.
                || (v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0])
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let octets = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        // 100.64.0.0/10 shared address space (carrier-grade NAT), 0.0.0.0/8 "this network".
        || (octets[0] == 100 && (octets[1] & 0xc0) == 64)
        || octets[0] == 0
}

/// Checks a webhook URL as written: scheme, host, and an address literal or local name.
pub fn check_url(endpoint: &str, allow_insecure: bool) -> Result<Url, String> {
    let url = Url::parse(endpoint).map_err(|error| format!("not a URL: {error}"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => {
            return Err(
                "must be https:// (plain http is for development: serve --allow-insecure-webhooks)"
                    .into(),
            );
        }
        other => return Err(format!("scheme `{other}` is not http(s)")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not carry credentials; authenticate receivers with the signed body".into(),
        );
    }
    let Some(host) = url.host_str() else {
        return Err("has no host".into());
    };
    if allow_insecure {
        return Ok(url);
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let internal = match host.parse::<IpAddr>() {
        Ok(address) => is_internal(address),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost") || name.ends_with(".internal")
        }
    };
    if internal {
        return Err(
            "names a loopback, private or link-local address, which webhooks may not reach".into(),
        );
    }
    Ok(url)
}

/// Checks an e-mail endpoint and returns the bare address.
pub fn email_address(endpoint: &str) -> Result<String, String> {
    let address = endpoint.strip_prefix("mailto:").unwrap_or(endpoint).trim();
    address
        .parse::<lettre::Address>()
        .map(|parsed| parsed.to_string())
        .map_err(|error| format!("`{address}` is not an e-mail address: {error}"))
}

/// A DNS resolver for the webhook client that refuses names resolving to internal addresses.
#[derive(Debug, Clone, Copy)]
pub struct SafeResolver {
    pub allow_internal: bool,
}

impl reqwest::dns::Resolve for SafeResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_internal = self.allow_internal;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_internal
                && let Some(internal) = addresses.iter().find(|address| is_internal(address.ip()))
            {
                return Err(Box::new(InternalAddress {
                    host,
                    address: internal.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A name resolved to an address webhooks may not reach.
#[derive(Debug, thiserror::Error)]
#[error("`{host}` resolves to {address}, an internal address webhooks may not reach")]
pub struct InternalAddress {
    pub host: String,
    pub address: IpAddr,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(is_internal(internal.parse().expect("ip")), "{internal}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "100.128.0.1"] {
            assert!(!is_internal(public.parse().expect("ip")), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_as_written() {
        assert!(check_url("https://hooks.example.com/a?b=c", false).is_ok());
        for bad in [
            "http://hooks.example.com/",
            "https://user:pw@hooks.example.com/",
            "https://LOCALHOST./x",
            "https://db.internal/x",
            "https://[fd00::1]/x",
            "gopher://example.com/",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:8080/hook", true).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_that_resolve_inside() {
        use std::str::FromStr;

        use reqwest::dns::{Name, Resolve};

        let name = || Name::from_str("localhost").expect("name");
        let refused = SafeResolver {
            allow_internal: false,
        }
        .resolve(name())
        .await;
        let message = refused
            .err()
            .map(|error| error.to_string())
            .unwrap_or_default();
        assert!(message.contains("internal address"), "{message}");
        let allowed = SafeResolver {
            allow_internal: true,
        }
        .resolve(name())
        .await
        .expect("resolves");
        assert!(
            allowed
                .into_iter()
                .all(|address| address.ip().is_loopback())
        );
    }

    #[test]
    fn email_endpoints_accept_mailto() {
        assert_eq!(
            email_address("mailto:ops@example.com").as_deref(),
            Ok("ops@example.com")
        );
        assert!(email_address("not an address").is_err());
    }
}
