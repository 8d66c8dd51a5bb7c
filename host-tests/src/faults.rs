//! Faults a test injects into the host, to see what a filter does when Envoy is not kind: other
//! workers that keep winning shared-data writes, and dispatches that Envoy refuses at once.
//!
//! # Contention on shared data
//! [`World::contend`](crate::World::contend) makes another worker win compare-and-swap writes. Just before a matching
//! write with a non-zero cas lands, an *interloper* (a simulated other worker of the same proxy)
//! writes the key first. Its write follows the rules of [`crate::shared`] (it takes a fresh cas),
//! so the filter's write then fails with `CasMismatch` because the cas it read is stale, exactly
//! as on real threads: no status is faked, and a filter that reads again sees what the interloper
//! wrote. By default the interloper writes back the bytes it found (pure contention: the state
//! stays, only its cas moves); on an absent key it inserts the bytes the filter was about to write
//! (another worker got there first with the same change). [`Contention::write`] makes it write
//! given bytes instead (garbage, another release's format), [`Contention::with`] whatever a
//! closure makes of the current value. A write with cas 0 overwrites whatever is there and cannot
//! lose, so it is never struck.
//!
//! # Dispatches refused at once
//! [`World::refuse_calls`](crate::World::refuse_calls) makes `proxy_http_call` to a cluster return an error at once: the call
//! never starts and nothing is delivered later. Envoy 1.40 does this when `AsyncClient::send`
//! fails inline (no healthy upstream, the cluster's own circuit breaker overflowing): the router
//! answers inside `send`, `Context::onHttpCallSuccess` sees it is re-entrant and defers itself
//! until the VM call returns, `send` returns null, `Context::httpCall` erases the token and
//! answers `InternalFailure`, and the deferred callback then finds no token and does nothing
//! (`source/extensions/common/wasm/context.cc`, `source/common/http/async_client_impl.cc`). The
//! token was taken before `send`, so the next call's token skips it. `BadArgument` is what a
//! cluster unknown to Envoy gets (one that CDS just removed, say); it takes no token. Every refused
//! dispatch, injected or not, is recorded ([`World::refused_calls`](crate::World::refused_calls)).
//!
//! # Actions on finished streams
//! A filter that asks for a local reply, a resume or a reset of a stream that has already ended
//! (a second response, say) is ignored, as Envoy ignores it; the harness records each such action
//! ([`World::late_actions`](crate::World::late_actions)) so that a test can assert there was none.

use crate::observe::{StreamId, VmId};
use std::fmt;
use std::time::Duration;

/// How many matching operations a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Times {
    Next(u32),
    Always,
}

impl Times {
    /// Uses one strike; false when none is left.
    fn take(&mut self) -> bool {
        match self {
            Times::Always => true,
            Times::Next(0) => false,
            Times::Next(n) => {
                *n -= 1;
                true
            }
        }
    }
}

/// Which shared-data keys a contention fault applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyFilter {
    Any,
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
}

impl KeyFilter {
    fn matches(&self, key: &[u8]) -> bool {
        match self {
            KeyFilter::Any => true,
            KeyFilter::Exact(k) => key == k.as_slice(),
            KeyFilter::Prefix(p) => key.starts_with(p),
        }
    }
}

/// What the interloper writes: from the key's current bytes (`None` when absent) and the bytes
/// the filter is about to write.
pub(crate) type Interloper = Box<dyn FnMut(Option<&[u8]>, &[u8]) -> Vec<u8>>;

/// Another worker that wins compare-and-swap writes; see the module docs. Built for every key and
/// every write; narrow it with [`Contention::on_key`], [`Contention::on_prefix`] and
/// [`Contention::times`].
pub struct Contention {
    keys: KeyFilter,
    times: Times,
    write: Interloper,
}

impl Contention {
    /// The interloper writes back the bytes it found (or, on an absent key, the bytes the filter
    /// was about to write): the filter's write loses, the state does not change.
    pub fn rewrite() -> Self {
        Self::with(|current, attempted| current.unwrap_or(attempted).to_vec())
    }

    /// The interloper writes `bytes`.
    pub fn write(bytes: impl Into<Vec<u8>>) -> Self {
        let bytes = bytes.into();
        Self::with(move |_, _| bytes.clone())
    }

    /// The interloper writes what `f` makes of the current bytes (`None`: the key is absent) and
    /// the bytes the filter is about to write.
    pub fn with(f: impl FnMut(Option<&[u8]>, &[u8]) -> Vec<u8> + 'static) -> Self {
        Contention {
            keys: KeyFilter::Any,
            times: Times::Always,
            write: Box::new(f),
        }
    }

    /// Only writes to `key`.
    pub fn on_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.keys = KeyFilter::Exact(key.as_ref().to_vec());
        self
    }

    /// Only writes to keys starting with `prefix`.
    pub fn on_prefix(mut self, prefix: impl AsRef<[u8]>) -> Self {
        self.keys = KeyFilter::Prefix(prefix.as_ref().to_vec());
        self
    }

    /// Only the next `n` matching writes (default: every one).
    pub fn times(mut self, n: u32) -> Self {
        self.times = Times::Next(n);
        self
    }
}

impl fmt::Debug for Contention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contention")
            .field("keys", &self.keys)
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

/// The status a refused dispatch gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallRefusal {
    /// `InternalFailure` (10): `AsyncClient::send` failed inline.
    InternalFailure,
    /// `BadArgument` (2): the cluster is unknown to Envoy.
    BadArgument,
}

impl CallRefusal {
    /// The proxy-wasm status code.
    pub fn status(self) -> u32 {
        match self {
            CallRefusal::InternalFailure => crate::status::INTERNAL_FAILURE,
            CallRefusal::BadArgument => crate::status::BAD_ARGUMENT,
        }
    }
}

/// Dispatches that Envoy refuses at once; see the module docs. Built for every cluster and every
/// dispatch; narrow it with [`Refusal::to`] and [`Refusal::times`].
#[derive(Debug, Clone)]
pub struct Refusal {
    cluster: Option<String>,
    status: CallRefusal,
    times: Times,
}

impl Refusal {
    /// Refuses with `InternalFailure`, as when `AsyncClient::send` fails inline.
    pub fn internal_failure() -> Self {
        Self::new(CallRefusal::InternalFailure)
    }

    /// Refuses with `BadArgument`, as for a cluster Envoy does not know.
    pub fn bad_argument() -> Self {
        Self::new(CallRefusal::BadArgument)
    }

    fn new(status: CallRefusal) -> Self {
        Refusal {
            cluster: None,
            status,
            times: Times::Always,
        }
    }

    /// Only dispatches to `cluster`.
    pub fn to(mut self, cluster: &str) -> Self {
        self.cluster = Some(cluster.to_string());
        self
    }

    /// Only the next `n` matching dispatches (default: every one).
    pub fn times(mut self, n: u32) -> Self {
        self.times = Times::Next(n);
        self
    }
}

/// A compare-and-swap write that the interloper beat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContendedWrite {
    /// Virtual time since the world started.
    pub at: Duration,
    /// The VM whose write lost.
    pub vm: VmId,
    pub key: Vec<u8>,
}

/// A `proxy_http_call` that returned an error instead of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedCall {
    pub at: Duration,
    pub vm: VmId,
    pub cluster: String,
    /// The proxy-wasm status the filter got.
    pub status: u32,
    /// Whether a [`Refusal`] caused it (else Envoy's own checks did).
    pub injected: bool,
}

/// A stream action the filter asked for after the stream had ended; Envoy ignores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateAction {
    pub at: Duration,
    pub stream: StreamId,
    /// `local reply`, `continue` or `close`.
    pub action: &'static str,
}

/// The faults in force and what they did.
#[derive(Default)]
pub(crate) struct Faults {
    contention: Vec<Contention>,
    refusals: Vec<Refusal>,
    contended: Vec<ContendedWrite>,
    refused: Vec<RefusedCall>,
    late: Vec<LateAction>,
}

impl Faults {
    /// The interloper of the first contention fault that matches `key` and has a strike left;
    /// the strike is used.
    pub fn interloper(&mut self, key: &[u8]) -> Option<&mut Interloper> {
        let rule = self
            .contention
            .iter_mut()
            .find(|c| c.keys.matches(key) && c.times != Times::Next(0))?;
        rule.times.take();
        Some(&mut rule.write)
    }

    /// The injected refusal for a dispatch to `cluster`, if one strikes.
    pub fn refusal_for(&mut self, cluster: &str) -> Option<CallRefusal> {
        let rule = self.refusals.iter_mut().find(|r| {
            r.cluster.as_deref().is_none_or(|c| c == cluster) && r.times != Times::Next(0)
        })?;
        rule.times.take();
        Some(rule.status)
    }

    pub fn add_contention(&mut self, contention: Contention) {
        self.contention.push(contention);
    }

    pub fn add_refusal(&mut self, refusal: Refusal) {
        self.refusals.push(refusal);
    }

    /// Ends every contention and refusal fault; what they did stays recorded.
    pub fn clear(&mut self) {
        self.contention.clear();
        self.refusals.clear();
    }

    pub fn record_contended(&mut self, write: ContendedWrite) {
        self.contended.push(write);
    }

    pub fn record_refused(&mut self, refused: RefusedCall) {
        self.refused.push(refused);
    }

    pub fn record_late(&mut self, late: LateAction) {
        self.late.push(late);
    }

    pub fn contended(&self) -> &[ContendedWrite] {
        &self.contended
    }

    pub fn refused(&self) -> &[RefusedCall] {
        &self.refused
    }

    pub fn late(&self) -> &[LateAction] {
        &self.late
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_for_the_next_n_strikes_n_times_and_always_never_runs_out() {
        let mut next = Times::Next(2);
        assert!(next.take() && next.take());
        assert!(!next.take(), "two strikes only");
        let mut always = Times::Always;
        assert!((0..1000).all(|_| always.take()));
    }

    #[test]
    fn key_filters_match_exact_keys_and_prefixes() {
        assert!(KeyFilter::Any.matches(b"x"));
        assert!(KeyFilter::Exact(b"a/b".to_vec()).matches(b"a/b"));
        assert!(!KeyFilter::Exact(b"a/b".to_vec()).matches(b"a/bc"));
        assert!(KeyFilter::Prefix(b"a/".to_vec()).matches(b"a/bc"));
        assert!(!KeyFilter::Prefix(b"a/".to_vec()).matches(b"b/a/"));
    }

    #[test]
    fn the_default_interloper_rewrites_what_it_found_or_inserts_the_attempted_bytes() {
        let mut c = Contention::rewrite();
        assert_eq!((c.write)(Some(b"old"), b"new"), b"old");
        assert_eq!((c.write)(None, b"new"), b"new");
        let mut g = Contention::write("junk");
        assert_eq!((g.write)(Some(b"old"), b"new"), b"junk");
    }
}
