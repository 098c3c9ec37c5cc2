//! Data-parallel training over a group of processes — MPI ranks, on one machine or many.
//!
//! Every process of the group runs the same command on the same data. When a group of more
//! than one process is current on the training thread ([`join_group`]), the one training loop
//! ([`FitLoop`](crate::FitLoop)) trains data-parallel:
//!
//! - before the first step, the first process's weights (rank 0's) are copied to all, and the
//!   run's settings are compared: a process started with others is refused in one line;
//! - each batch is split by rows ([`Shard`], [`share_rows`]): process `r` of `n` trains on a
//!   contiguous share, in rank order, and for stateful language models carries the state of
//!   its own rows;
//! - the gradients, each process's weighted by the predictions its loss averages
//!   ([`StepLoss::weight`](crate::StepLoss::weight)), are summed across the group in buckets
//!   of [`BUCKET_FLOATS`] and divided by the total weight, so every process takes the step
//!   of the whole batch; clipping then sees the global norm;
//! - the loss reported is the group's weighted mean, a non-finite loss anywhere stops every
//!   process, and so does a stop request (Ctrl-C) on any;
//! - only rank 0 prints the table, shows progress and writes checkpoints; a checkpoint inside
//!   an epoch holds every process's carried state, and a resumed run needs the same number of
//!   processes.
//!
//! The MPI group itself ([`MpiGroup`], cargo feature `mpi`) is started by the command line
//! when `mpirun` launched it.

mod gradients;
mod group;
#[cfg(feature = "mpi")]
mod mpi;
mod settings;
mod share;
mod state;
mod weights;

pub use gradients::average_gradients;
pub(crate) use gradients::{LocalStep, exchange_gradients};
pub(crate) use group::end_together;
pub use group::{
    BUCKET_FLOATS, ProcessGroup, current_group, ended_together, join_group, leave_group,
};
#[cfg(feature = "mpi")]
pub use mpi::MpiGroup;
pub(crate) use settings::agree_on_settings;
pub use share::{Shard, share_rows};
pub(crate) use state::{gather_state, select_state_rows};
pub(crate) use weights::broadcast_model;

/// The run settings a data-parallel run saves and compares: `settings`, and the number of
/// processes when the current group has more than one.
pub fn with_group_size(settings: &crate::RunSettings) -> crate::RunSettings {
    match current_group() {
        Some(group) => settings.clone().with(RANKS_SETTING, group.size()),
        None => settings.clone(),
    }
}

/// The name of the setting that holds a data-parallel run's number of processes.
pub const RANKS_SETTING: &str = "processes";
