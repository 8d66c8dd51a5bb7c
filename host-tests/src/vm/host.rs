//! The per-VM host state kept in each `Store<HostState>`: the VM's contexts, the call in
//! progress, the actions deferred until that call returns, and per-VM ids (metrics, calls).
//!
//! # The current and the effective context
//! Each callback runs "in" the context it was called for. `proxy_set_effective_context(id)`
//! makes later host calls of the same callback act on `id` instead (as cpp-host's
//! `contextOrEffectiveContext`); it is `BadArgument` for an id the VM does not have (never
//! created, or already deleted). The effective context resets at every callback.
//!
//! # Deferred actions
//! As in Envoy, `proxy_continue_stream`, `proxy_send_local_response` and `proxy_close_stream`
//! do not act inside the host call: they queue an action that runs when the VM call returns
//! (`wasm()->addAfterVmCallAction` in Envoy's `context.cc`).

use super::Core;
use crate::headers::Message;
use crate::metrics::MetricIds;
use crate::observe::{Callback, StreamId, VmId};
use rand::rngs::StdRng;
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::Duration;
use wasmtime::{Memory, TypedFunc};

pub(crate) struct HostState {
    pub slot: usize,
    pub vm: VmId,
    /// The plugin this VM runs (an index into the world's plugins; 0 is the primary).
    pub plugin: usize,
    pub core: Weak<Core>,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<u32, u32>>,
    pub contexts: BTreeMap<u32, Ctx>,
    pub next_context_id: u32,
    /// The root context new streams attach to.
    pub active_root: u32,
    pub call: CallState,
    pub deferred: VecDeque<Deferred>,
    pub metric_ids: MetricIds,
    pub next_call_token: u32,
    pub calls: BTreeMap<u32, PendingCall>,
    /// True while `_initialize` runs: Envoy lets only logging, WASI clocks, randomness and
    /// environment calls through then.
    pub initializing: bool,
    pub rng: StdRng,
}

/// The callback in progress.
#[derive(Debug, Default, Clone)]
pub(crate) struct CallState {
    pub callback: Option<Callback>,
    pub current: u32,
    pub effective: u32,
    /// Set by `proxy_send_local_response`: the callback's status becomes "stop", whatever it
    /// returned (cpp-host's `stopNextIteration`).
    pub stop_iteration: bool,
}

pub(crate) enum Ctx {
    Root(Root),
    Http { root: u32, stream: StreamId },
}

pub(crate) struct Root {
    /// This root's plugin configuration.
    pub configuration: Vec<u8>,
    /// True during `on_context_create` and `on_configure`, when Envoy exposes the plugin
    /// configuration buffer.
    pub configuring: bool,
    /// What `proxy_get_status` answers (`status_code_`, `status_message_`).
    pub status: (u32, String),
    /// The dispatched call whose response is being delivered.
    pub call_response: Option<CallResponse>,
    pub tick_period: Duration,
    pub tick_generation: u64,
    /// Set once `proxy_on_done` returned false: the root waits for `proxy_done`.
    pub pending_done: bool,
}

impl Root {
    pub fn new(configuration: Vec<u8>) -> Self {
        Root {
            configuration,
            configuring: false,
            status: (0, String::new()),
            call_response: None,
            tick_period: Duration::ZERO,
            tick_generation: 0,
            pending_done: false,
        }
    }
}

/// A dispatched call's result, as the root sees it during `on_http_call_response`.
pub(crate) enum CallResponse {
    Answered(Message),
    Reset,
}

/// A call in flight.
pub(crate) struct PendingCall {
    pub root: u32,
    pub attempt: usize,
    pub outcome: CallOutcome,
}

/// What the call's completion will deliver.
#[derive(Debug, Clone)]
pub(crate) enum CallOutcome {
    Answered(Message),
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Request,
    Response,
}

/// An action that runs after the VM call returns.
#[derive(Debug, Clone)]
pub(crate) enum Deferred {
    /// `continue_stream`: only a stream that was paused when the filter asked resumes (a
    /// continue from inside the paused callback itself is lost, as in Envoy).
    Continue {
        stream: StreamId,
        direction: Direction,
        was_paused: bool,
    },
    /// `send_local_response` on an HTTP context.
    LocalReply {
        stream: StreamId,
        status: u16,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
        /// The `grpc_status` argument, if it is a known gRPC status (0..=16).
        grpc_status: Option<u32>,
        details: String,
    },
    /// `close_stream`: Envoy resets the stream.
    Close { stream: StreamId },
    /// `proxy_done` from a root waiting to finish.
    RootDone { root: u32 },
}

impl HostState {
    pub fn new(slot: usize, (vm, plugin): (VmId, usize), core: &Rc<Core>, rng: StdRng) -> Self {
        HostState {
            slot,
            vm,
            plugin,
            core: Rc::downgrade(core),
            memory: None,
            alloc: None,
            contexts: BTreeMap::new(),
            next_context_id: 1,
            active_root: 0,
            call: CallState::default(),
            deferred: VecDeque::new(),
            metric_ids: MetricIds::default(),
            next_call_token: 0,
            calls: BTreeMap::new(),
            initializing: false,
            rng,
        }
    }

    /// The world, which outlives every VM it owns.
    pub fn core(&self) -> Rc<Core> {
        self.core
            .upgrade()
            .expect("a VM is only called while its world is alive")
    }

    /// A fresh context id (never reused, as cpp-host's `allocContextId`).
    pub fn alloc_context_id(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id += 1;
        id
    }

    /// A fresh `proxy_http_call` token (Envoy's `nextHttpCallId`: 4, 8, 12, ...).
    pub fn alloc_call_token(&mut self) -> u32 {
        self.next_call_token += 4;
        self.next_call_token
    }

    /// The context host calls act on: the effective one if set and alive, else the current one.
    pub fn context_id(&self) -> u32 {
        let effective = self.call.effective;
        if effective != 0 && self.contexts.contains_key(&effective) {
            effective
        } else {
            self.call.current
        }
    }

    /// The root of a context (a root is its own root).
    pub fn root_of(&self, id: u32) -> Option<u32> {
        match self.contexts.get(&id)? {
            Ctx::Root(_) => Some(id),
            Ctx::Http { root, .. } => Some(*root),
        }
    }

    pub fn root_mut(&mut self, id: u32) -> Option<&mut Root> {
        match self.contexts.get_mut(&id)? {
            Ctx::Root(root) => Some(root),
            Ctx::Http { .. } => None,
        }
    }

    /// The stream behind an HTTP context.
    pub fn stream_of(&self, id: u32) -> Option<StreamId> {
        match self.contexts.get(&id)? {
            Ctx::Http { stream, .. } => Some(*stream),
            Ctx::Root(_) => None,
        }
    }
}
