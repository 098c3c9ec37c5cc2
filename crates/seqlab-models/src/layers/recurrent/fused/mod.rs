//! The fast path of the recurrent layers: the whole time loop of one layer and direction as
//! one operation with a hand-written backward, on the CPU backends.

pub(crate) mod activation;
mod buffers;
mod host;
mod isa;
mod kernel;
pub(crate) mod op;
mod packed;
mod projection;
mod step;

pub(crate) use host::{HostLayer, HostRecurrent};
pub(crate) use op::on_pool;
pub use op::{
    FusedRecurrenceBackend, RecurrenceSpec, fused_recurrence, fused_step, supports, supports_step,
};
pub(crate) use step::matrix_vector;
