//! Istio's cluster names, and the `services` keys that match them.
//!
//! # Cluster names
//!
//! istiod names a service's cluster `outbound|PORT|SUBSET|HOST` (`BuildSubsetKey` in Istio's
//! `pilot/pkg/model/service.go`): `outbound|9080||reviews.default.svc.cluster.local`, or with a
//! DestinationRule subset `outbound|9080|v2|reviews.default.svc.cluster.local`. A sidecar's
//! inbound clusters are `inbound|PORT||` and carry no host. Besides these, a route may send a
//! request to one of Istio's special clusters, which are not services (`pilot/pkg/networking/
//! util/util.go`): `PassthroughCluster` (every unregistered external host at once),
//! `BlackHoleCluster` (nothing: Envoy answers 502 itself), `AllowAnyDynamicDNSCluster` (newer
//! releases' dynamic-DNS passthrough) and the inbound passthrough clusters, named
//! `InboundPassthroughCluster` or, in older releases, `InboundPassthroughClusterIpv4` and `...Ipv6`.
//! Istio's bootstrap clusters (`xds-grpc`, `sds-grpc`, `prometheus_stats`, ...) are never the
//! destination of a route, so the filter never sees them.
//!
//! # Service keys
//!
//! A key of `services` is `HOST`, `HOST:PORT`, `HOST#SUBSET` or `HOST:PORT#SUBSET`. `HOST:PORT` is
//! how a host and port are written everywhere else. No DNS name holds a `#` or a `:`, and a
//! DestinationRule subset name is a DNS label, so `#` splits the key unambiguously without
//! borrowing Istio's `|`, which would read as a cluster name (and a cluster name goes under
//! `clusters`).
//!
//! # Cost
//!
//! [`classify`] runs on every request whose cluster the policy does not name exactly: it splits
//! the name on `|` without allocating and compares a few bytes.

/// What a cluster name says to the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterKind<'a> {
    /// `outbound|PORT|SUBSET|HOST` with a host: a service, which `services` keys may match.
    Service {
        port: u16,
        /// Empty when the cluster is not a subset's.
        subset: &'a str,
        host: &'a str,
    },
    /// One of Istio's clusters that are not services (see the module docs).
    Special,
    /// Anything else: an inbound cluster, or a cluster of a config Istio did not write.
    Other,
}

/// The names of Istio's special clusters, matched whole.
pub(crate) const SPECIAL: [&str; 3] = [
    "PassthroughCluster",
    "BlackHoleCluster",
    "AllowAnyDynamicDNSCluster",
];

/// The inbound passthrough clusters: the name, or the name followed by `Ipv4` or `Ipv6`.
pub(crate) const SPECIAL_PREFIX: &str = "InboundPassthroughCluster";

/// What `name` is, read without allocating.
pub(crate) fn classify(name: &str) -> ClusterKind<'_> {
    if let Some(rest) = name.strip_prefix("outbound|") {
        let Some((port, rest)) = cut(rest, b'|') else {
            return ClusterKind::Other;
        };
        let Some((subset, host)) = cut(rest, b'|') else {
            return ClusterKind::Other;
        };
        return match port_number(port) {
            Some(port) if !host.is_empty() && cut(host, b'|').is_none() => {
                ClusterKind::Service { port, subset, host }
            }
            _ => ClusterKind::Other,
        };
    }
    if is_special(name) {
        ClusterKind::Special
    } else {
        ClusterKind::Other
    }
}

/// Whether `name` is one of Istio's special clusters.
pub(crate) fn is_special(name: &str) -> bool {
    SPECIAL.contains(&name)
        || name
            .strip_prefix(SPECIAL_PREFIX)
            .is_some_and(|rest| matches!(rest, "" | "Ipv4" | "Ipv6"))
}

/// `text` split at the first `byte` (an ASCII separator), which neither part keeps.
fn cut(text: &str, byte: u8) -> Option<(&str, &str)> {
    let at = text.bytes().position(|b| b == byte)?;
    Some((text.get(..at)?, text.get(at + 1..)?))
}

/// A port as Istio writes it: decimal digits, no sign, no leading zero, 1..=65535.
pub(crate) fn port_number(text: &str) -> Option<u16> {
    if text.starts_with('0') || text.len() > 5 {
        return None;
    }
    let mut port: u32 = 0;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        port = port * 10 + u32::from(b - b'0');
    }
    u16::try_from(port).ok().filter(|p| *p > 0)
}

/// A `services` key, split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServiceKey<'a> {
    pub host: &'a str,
    pub port: Option<u16>,
    pub subset: Option<&'a str>,
}

/// Why a `services` key is refused; each message completes "is not a service key, ...".
pub(crate) fn service_key(key: &str) -> Result<ServiceKey<'_>, &'static str> {
    let (rest, subset) = match cut(key, b'#') {
        Some((rest, subset)) => (rest, Some(subset)),
        None => (key, None),
    };
    let (host, port) = match cut(rest, b':') {
        Some((host, port)) => (host, Some(port)),
        None => (rest, None),
    };
    if host.is_empty() {
        return Err("the host before any `:` or `#` is empty");
    }
    if !host.bytes().all(is_host_byte) {
        return Err("a host is letters, digits, `-`, `.`, `_` and `*` only");
    }
    let port = match port {
        None => None,
        Some(port) => match port_number(port) {
            Some(port) => Some(port),
            None => return Err("the port after `:` must be 1..=65535, without leading zeros"),
        },
    };
    if let Some(subset) = subset {
        let label = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
        if subset.is_empty() || !subset.bytes().all(label) {
            return Err("the subset after `#` must be letters, digits, `-`, `.` and `_`");
        }
    }
    Ok(ServiceKey { host, port, subset })
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_outbound_cluster_is_a_service_with_its_port_subset_and_host() {
        assert_eq!(
            classify("outbound|9080|v2|reviews.default.svc.cluster.local"),
            ClusterKind::Service {
                port: 9080,
                subset: "v2",
                host: "reviews.default.svc.cluster.local"
            }
        );
        assert_eq!(
            classify("outbound|443||*.wikipedia.org"),
            ClusterKind::Service {
                port: 443,
                subset: "",
                host: "*.wikipedia.org"
            },
            "a ServiceEntry's wildcard host is a host like any other"
        );
    }

    #[test]
    fn inbound_malformed_and_foreign_names_are_other() {
        for name in [
            "inbound|9080||",
            "outbound|9080||",
            "outbound|http||reviews",
            "outbound|09080||reviews",
            "outbound|70000||reviews",
            "outbound|9080|v1",
            "outbound|9080|v1|a|b",
            "outbound_.9080_.v1_.reviews.default.svc.cluster.local",
            "payments",
            "",
            "passthroughcluster",
            "InboundPassthroughClusterIpv5",
        ] {
            assert_eq!(classify(name), ClusterKind::Other, "{name}");
        }
    }

    #[test]
    fn istios_special_clusters_are_special() {
        for name in [
            "PassthroughCluster",
            "BlackHoleCluster",
            "AllowAnyDynamicDNSCluster",
            "InboundPassthroughCluster",
            "InboundPassthroughClusterIpv4",
            "InboundPassthroughClusterIpv6",
        ] {
            assert_eq!(classify(name), ClusterKind::Special, "{name}");
        }
    }

    #[test]
    fn service_keys_split_into_host_port_and_subset() {
        let host = "reviews.default.svc.cluster.local";
        let key = |port, subset| ServiceKey { host, port, subset };
        assert_eq!(service_key(host), Ok(key(None, None)));
        assert_eq!(
            service_key(&format!("{host}:9080")),
            Ok(key(Some(9080), None))
        );
        assert_eq!(
            service_key(&format!("{host}#v2")),
            Ok(key(None, Some("v2")))
        );
        assert_eq!(
            service_key(&format!("{host}:9080#v2")),
            Ok(key(Some(9080), Some("v2")))
        );
    }

    #[test]
    fn malformed_service_keys_say_what_is_wrong() {
        for (key, why) in [
            (":9080", "empty"),
            ("#v2", "empty"),
            ("outbound|9080||reviews", "letters"),
            ("reviews default", "letters"),
            ("reviews:0", "1..=65535"),
            ("reviews:08080", "leading zeros"),
            ("reviews:http", "1..=65535"),
            ("reviews:", "1..=65535"),
            ("reviews#", "subset"),
            ("reviews#v2#v3", "subset"),
            ("reviews#v2:9080", "subset"),
            ("reviews#v*", "subset"),
        ] {
            match service_key(key) {
                Err(rule) => assert!(rule.contains(why), "{key}: {rule}"),
                Ok(parsed) => panic!("{key} should be refused, read as {parsed:?}"),
            }
        }
    }

    proptest! {
        /// Whatever Istio builds from a host, port and subset, `classify` reads back, and the
        /// service key written for the same three parts names the same ones.
        #[test]
        fn a_built_cluster_name_and_its_service_key_agree(
            host in "[a-z0-9*][a-z0-9.-]{0,30}",
            port in 1u16..,
            subset in proptest::option::of("[a-z0-9][a-z0-9-]{0,10}"),
        ) {
            let subset = subset.as_deref();
            let name = format!("outbound|{port}|{}|{host}", subset.unwrap_or(""));
            prop_assert_eq!(
                classify(&name),
                ClusterKind::Service { port, subset: subset.unwrap_or(""), host: &host }
            );
            let mut key = format!("{host}:{port}");
            if let Some(s) = subset {
                key.push('#');
                key.push_str(s);
            }
            prop_assert_eq!(
                service_key(&key),
                Ok(ServiceKey { host: &host, port: Some(port), subset })
            );
        }

        /// Any text is classified without a panic, and only names that start `outbound|` can be
        /// services.
        #[test]
        fn any_name_is_classified_and_only_outbound_names_are_services(name in ".{0,40}") {
            if let ClusterKind::Service { .. } = classify(&name) {
                prop_assert!(name.starts_with("outbound|"));
            }
            let _ = service_key(&name);
        }
    }
}
