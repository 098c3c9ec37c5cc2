//! [`MpiGroup`]: the processes `mpirun` started, through MPI (the `mpi` crate on the system's
//! MPI library, OpenMPI or MPICH).

use super::{BUCKET_FLOATS, ProcessGroup};
use crate::TrainError;
use mpi::collective::SystemOperation;
use mpi::environment::{Threading, Universe};
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::traits::*;
use std::ops::Range;

/// The processes of an MPI job (`MPI_COMM_WORLD`). MPI is started on the thread that makes
/// the group and must be used from that thread alone (`MPI_THREAD_FUNNELED`): the training
/// thread. Dropping the group ends MPI.
pub struct MpiGroup {
    world: SimpleCommunicator,
    _universe: Universe,
}

/// Environment variables that MPI launchers set in the processes they start: OpenMPI's
/// `mpirun`, PMIx and MPICH's Hydra.
const LAUNCHER_VARIABLES: [&str; 3] = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"];

impl MpiGroup {
    /// Starts MPI when an MPI launcher (`mpirun`, `mpiexec`) started this process, and gives
    /// its processes; `None` for a process started otherwise.
    pub fn from_launcher() -> Result<Option<Self>, TrainError> {
        if !LAUNCHER_VARIABLES
            .iter()
            .any(|name| std::env::var_os(name).is_some())
        {
            return Ok(None);
        }
        let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| TrainError::GroupSettings("MPI was already started".into()))?;
        if threading < Threading::Funneled {
            return Err(TrainError::GroupSettings(format!(
                "the MPI library offers {threading:?} threading; seqlab needs Funneled"
            )));
        }
        Ok(Some(Self {
            world: universe.world(),
            _universe: universe,
        }))
    }

    /// Ends every process of the job at once with `code` (`MPI_Abort`): what a process that
    /// failed does, so that the others do not wait for it.
    pub fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }
}

impl ProcessGroup for MpiGroup {
    fn rank(&self) -> usize {
        self.world.rank() as usize
    }

    fn size(&self) -> usize {
        self.world.size() as usize
    }

    fn sum(&self, len: usize, fill: &mut dyn FnMut(Range<usize>, &mut [f32])) -> Vec<f32> {
        let mut send = vec![0.0f32; len];
        let mut sums = vec![0.0f32; len];
        mpi::request::scope(|scope| {
            let mut pending = Vec::new();
            let mut start = 0;
            for (bucket, into) in send
                .chunks_mut(BUCKET_FLOATS)
                .zip(sums.chunks_mut(BUCKET_FLOATS))
            {
                fill(start..start + bucket.len(), bucket);
                start += bucket.len();
                let bucket: &[f32] = bucket;
                pending.push(self.world.immediate_all_reduce_into(
                    scope,
                    bucket,
                    into,
                    SystemOperation::sum(),
                ));
            }
            for request in pending {
                request.wait();
            }
        });
        sums
    }

    fn broadcast(&self, bytes: &mut Vec<u8>) {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
    }
}
