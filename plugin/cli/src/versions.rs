//! The Istio versions the example manifests support, and what a WasmPlugin needs of its Istio.
//!
//! Read from Istio's source at the release tags (examples/istio/README.md, Versions, has the
//! matrix and the files): `failStrategy: FAIL_RELOAD` exists from 1.27 (the WasmPlugin CRD of
//! earlier releases refuses the value), and from 1.30 Envoy's plugin name is
//! `<namespace>.<name>~istio-translated-wasmplugin` (Breakwater's state is keyed by the root id,
//! so that change costs nothing). The oldest release whose source the manifests were checked
//! against is 1.24.

use crate::istio::WasmPlugin;
use std::fmt;
use std::str::FromStr;

/// An Istio release, `major.minor` (a patch number is read and ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IstioVersion {
    pub major: u32,
    pub minor: u32,
}

/// The oldest Istio the manifests were checked against.
pub const OLDEST: IstioVersion = IstioVersion {
    major: 1,
    minor: 24,
};

/// The first Istio whose WasmPlugin accepts `failStrategy: FAIL_RELOAD`.
pub const FAIL_RELOAD: IstioVersion = IstioVersion {
    major: 1,
    minor: 27,
};

impl FromStr for IstioVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let number = |part: Option<&str>| part.and_then(|p| p.parse::<u32>().ok());
        let (major, minor) = (number(parts.next()), number(parts.next()));
        let patch_ok = parts.next().is_none_or(|p| p.parse::<u32>().is_ok());
        match (major, minor) {
            (Some(major), Some(minor)) if patch_ok && parts.next().is_none() => {
                Ok(IstioVersion { major, minor })
            }
            _ => Err(format!(
                "{text:?} is not an Istio version, must be MAJOR.MINOR such as 1.26 (a patch \
                 number may follow)"
            )),
        }
    }
}

impl fmt::Display for IstioVersion {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What `plugin` needs of the stated Istio: the reasons that Istio would refuse it (empty when it
/// would accept it), and notes that do not stop it.
pub fn needs(plugin: &WasmPlugin, istio: IstioVersion) -> (Vec<&'static str>, Vec<&'static str>) {
    let (mut refused, mut notes) = (Vec::new(), Vec::new());
    if plugin.spec_str("failStrategy") == Some("FAIL_RELOAD") && istio < FAIL_RELOAD {
        refused.push(
            "failStrategy FAIL_RELOAD needs Istio 1.27 or later, newer than the Istio stated \
             with --istio: Istio refuses the WasmPlugin; use FAIL_OPEN there (examples/istio/\
             README.md, Versions)",
        );
    }
    if istio < OLDEST {
        notes.push(
            "the Istio stated with --istio is older than 1.24, the oldest the example manifests \
             were checked against (examples/istio/README.md, Versions)",
        );
    }
    (refused, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_major_and_minor_and_order_by_them() {
        let v = |s: &str| s.parse::<IstioVersion>().expect(s);
        assert_eq!(
            v("1.26"),
            IstioVersion {
                major: 1,
                minor: 26
            }
        );
        assert_eq!(
            v("1.26.3"),
            v("v1.26"),
            "a patch and a v are read and ignored"
        );
        assert!(v("1.9") < v("1.26") && v("1.26") < FAIL_RELOAD && FAIL_RELOAD <= v("1.27.0"));
        for bad in ["", "1", "1.x", "1.26.3.4", "one.two", "1.26-rc"] {
            assert!(bad.parse::<IstioVersion>().is_err(), "{bad:?}");
        }
    }
}
