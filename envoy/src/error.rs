//! The launcher's error type.

use std::time::Duration;

use crate::access_log::AccessLogError;
use crate::admin::AdminError;
use crate::client::ClientError;
use crate::config::ConfigError;
use crate::install::InstallError;

/// Why Envoy could not be started, queried or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EnvoyError {
    #[error(transparent)]
    Install(#[from] InstallError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("Envoy exited during start-up ({status}); the end of its log:\n{log}")]
    Exited { status: String, log: String },
    #[error("Envoy was not ready within {timeout:?}; the end of its log:\n{log}")]
    NotReady { timeout: Duration, log: String },
    #[error("Envoy has no listener named {0:?}")]
    NoListener(String),
    #[error("waited {timeout:?} for {what}; the end of Envoy's log:\n{log}")]
    Timeout {
        what: String,
        timeout: Duration,
        log: String,
    },
    #[error("this Envoy does not take its filter config from ECDS")]
    NotEcds,
    #[error("Envoy is not running")]
    NotRunning,
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    AccessLog(#[from] AccessLogError),
}
