//! The world's side of [`crate::faults`]: a test injects contention and refusals, and reads
//! what every fault did.

use super::World;
use crate::faults::{ContendedWrite, Contention, LateAction, Refusal, RefusedCall};

impl World {
    /// Lets another worker win compare-and-swap writes (see [`Contention`]); faults added
    /// earlier are consulted first.
    pub fn contend(&mut self, contention: Contention) -> &mut Self {
        self.core()
            .state
            .borrow_mut()
            .faults
            .add_contention(contention);
        self
    }

    /// Makes Envoy refuse dispatches at once (see [`Refusal`]); faults added earlier are
    /// consulted first.
    pub fn refuse_calls(&mut self, refusal: Refusal) -> &mut Self {
        self.core().state.borrow_mut().faults.add_refusal(refusal);
        self
    }

    /// Ends every contention and refusal fault; what they did stays recorded.
    pub fn clear_faults(&mut self) -> &mut Self {
        self.core().state.borrow_mut().faults.clear();
        self
    }

    /// Every compare-and-swap write another worker beat, in order.
    pub fn contended_writes(&self) -> Vec<ContendedWrite> {
        self.core().state.borrow().faults.contended().to_vec()
    }

    /// Every `proxy_http_call` refused at once, injected or not, in order.
    pub fn refused_calls(&self) -> Vec<RefusedCall> {
        self.core().state.borrow().faults.refused().to_vec()
    }

    /// Every stream action the filter asked for after the stream had ended, in order.
    pub fn late_actions(&self) -> Vec<LateAction> {
        self.core().state.borrow().faults.late().to_vec()
    }
}
