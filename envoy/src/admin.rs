//! Envoy's admin interface: readiness, stats (JSON and Prometheus), listeners, config dumps.
//!
//! # Stat names (measured on Envoy 1.40)
//! Metrics a proxy-wasm filter defines appear in `/stats` under `wasmcustom.` followed by the
//! name the filter gave, and in `/stats/prometheus` without that prefix, tag-extracted and with
//! `.` turned into `_` (no `envoy_` prefix): see the crate README.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Deserialize;

use crate::client::{self, ClientError, Request};
use crate::prometheus::{ParseError, Prometheus};

/// The prefix Envoy puts before every metric a wasm filter defines, in `/stats`.
pub const WASM_CUSTOM_PREFIX: &str = "wasmcustom.";

/// Why an admin request failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin request {path}: {source}")]
    Request { path: String, source: ClientError },
    #[error("admin request {path} answered {status}: {body}")]
    Status {
        path: String,
        status: u16,
        body: String,
    },
    #[error("admin request {path}: unexpected JSON: {reason}")]
    Json { path: String, reason: String },
    #[error("admin request {path}: {source}")]
    Prometheus { path: String, source: ParseError },
}

/// One value in `/stats?format=json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatValue {
    /// Counters and gauges.
    Number(u64),
    /// Text readouts (for example `...version_text`).
    Text(String),
}

/// A snapshot of `/stats?format=json` (counters, gauges and text readouts; not histograms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub values: BTreeMap<String, StatValue>,
}

impl Stats {
    /// A counter or gauge by its full name.
    pub fn number(&self, name: &str) -> Option<u64> {
        match self.values.get(name)? {
            StatValue::Number(n) => Some(*n),
            StatValue::Text(_) => None,
        }
    }

    /// A counter or gauge by its full name, 0 if Envoy has not created it (Envoy creates many
    /// stats lazily, on first use).
    pub fn number_or_zero(&self, name: &str) -> u64 {
        self.number(name).unwrap_or(0)
    }

    /// A text readout by its full name.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.values.get(name)? {
            StatValue::Text(t) => Some(t),
            StatValue::Number(_) => None,
        }
    }

    /// A metric a wasm filter defined as `name` (looked up as `wasmcustom.<name>`).
    pub fn wasm_metric(&self, name: &str) -> Option<u64> {
        self.number(&format!("{WASM_CUSTOM_PREFIX}{name}"))
    }

    /// Every stat whose name starts with `prefix`.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a StatValue)> + 'a {
        self.values
            .range(prefix.to_string()..)
            .take_while(move |(name, _)| name.starts_with(prefix))
            .map(|(name, value)| (name.as_str(), value))
    }
}

#[derive(Deserialize)]
struct StatsPage {
    stats: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct ListenersPage {
    listener_statuses: Vec<ListenerStatus>,
}

#[derive(Deserialize)]
struct ListenerStatus {
    name: String,
    local_address: AddressWrapper,
}

#[derive(Deserialize)]
struct AddressWrapper {
    socket_address: SocketAddress,
}

#[derive(Deserialize)]
struct SocketAddress {
    address: String,
    port_value: u16,
}

/// A client for one Envoy's admin interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admin {
    pub addr: SocketAddr,
}

impl Admin {
    /// `GET path` on the admin interface; a non-2xx answer is an error.
    pub fn get(&self, path: &str) -> Result<String, AdminError> {
        self.request(&Request::get(path))
    }

    /// `POST path` on the admin interface; a non-2xx answer is an error.
    pub fn post(&self, path: &str) -> Result<String, AdminError> {
        self.request(&Request::new("POST", path))
    }

    fn request(&self, request: &Request) -> Result<String, AdminError> {
        let path = request.path.clone();
        let response = client::send(self.addr, request).map_err(|source| AdminError::Request {
            path: path.clone(),
            source,
        })?;
        if !(200..300).contains(&response.status) {
            return Err(AdminError::Status {
                path,
                status: response.status,
                body: response.text(),
            });
        }
        Ok(response.text())
    }

    /// Whether `/ready` answers 200 (`LIVE`).
    pub fn is_ready(&self) -> bool {
        matches!(client::send(self.addr, &Request::get("/ready")), Ok(r) if r.status == 200)
    }

    /// `/stats?format=json`.
    pub fn stats(&self) -> Result<Stats, AdminError> {
        let path = "/stats?format=json";
        let page: StatsPage = self.json(path)?;
        let mut values = BTreeMap::new();
        for entry in page.stats {
            let (Some(name), Some(value)) = (entry.get("name"), entry.get("value")) else {
                continue; // the histograms entry
            };
            let name = name.as_str().unwrap_or_default().to_string();
            let value = match value {
                serde_json::Value::Number(n) => StatValue::Number(n.as_u64().unwrap_or(0)),
                serde_json::Value::String(s) => StatValue::Text(s.clone()),
                other => StatValue::Text(other.to_string()),
            };
            values.insert(name, value);
        }
        Ok(Stats { values })
    }

    /// `/stats/prometheus`, parsed.
    pub fn prometheus(&self) -> Result<Prometheus, AdminError> {
        let path = "/stats/prometheus";
        let text = self.get(path)?;
        Prometheus::parse(&text).map_err(|source| AdminError::Prometheus {
            path: path.to_string(),
            source,
        })
    }

    /// `/config_dump`, optionally for one resource type (for example `ecds_filters`).
    pub fn config_dump(&self, resource: Option<&str>) -> Result<serde_json::Value, AdminError> {
        match resource {
            Some(r) => self.json(&format!("/config_dump?resource={r}")),
            None => self.json("/config_dump"),
        }
    }

    /// The address listener `name` is bound to (its real port when configured with port 0).
    pub fn listener_address(&self, name: &str) -> Result<Option<SocketAddr>, AdminError> {
        let path = "/listeners?format=json";
        let page: ListenersPage = self.json(path)?;
        let Some(status) = page.listener_statuses.into_iter().find(|l| l.name == name) else {
            return Ok(None);
        };
        let address = &status.local_address.socket_address;
        let ip = address.address.parse().map_err(|_| AdminError::Json {
            path: path.to_string(),
            reason: format!("listener {name} has address {:?}", address.address),
        })?;
        Ok(Some(SocketAddr::new(ip, address.port_value)))
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        let text = self.get(path)?;
        serde_json::from_str(&text).map_err(|e| AdminError::Json {
            path: path.to_string(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Stats {
        let mut values = BTreeMap::new();
        values.insert("a.b".to_string(), StatValue::Number(3));
        values.insert("a.c".to_string(), StatValue::Text("v1".to_string()));
        values.insert("ab".to_string(), StatValue::Number(1));
        values.insert("wasmcustom.noop.x".to_string(), StatValue::Number(7));
        Stats { values }
    }

    #[test]
    fn numbers_and_texts_are_told_apart() {
        let s = stats();
        assert_eq!(s.number("a.b"), Some(3));
        assert_eq!(s.number("a.c"), None, "a text readout is not a number");
        assert_eq!(s.text("a.c"), Some("v1"));
        assert_eq!(s.number_or_zero("missing"), 0);
    }

    #[test]
    fn wasm_metrics_are_found_under_wasmcustom() {
        assert_eq!(stats().wasm_metric("noop.x"), Some(7));
    }

    #[test]
    fn prefix_listing_stops_at_the_prefix() {
        let names: Vec<_> = stats()
            .with_prefix("a.")
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(names, vec!["a.b", "a.c"]);
    }
}
