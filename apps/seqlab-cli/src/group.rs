//! Data-parallel runs under `mpirun` (cargo feature `mpi`): this process joins the MPI job's
//! group, and every process but rank 0 keeps quiet and writes nothing.

#[cfg(feature = "mpi")]
use seqlab::train::parallel::{MpiGroup, ProcessGroup, join_group, leave_group};
#[cfg(feature = "mpi")]
use std::rc::Rc;

/// The MPI job this process belongs to, joined for the training loops of this thread.
pub struct Membership {
    #[cfg(feature = "mpi")]
    group: Option<Rc<MpiGroup>>,
}

impl Membership {
    /// Starts MPI when `mpirun` launched this process and joins its group; processes other
    /// than rank 0 send their standard output to /dev/null and write no files. Call it on the
    /// thread that trains.
    pub fn join() -> Result<Self, String> {
        #[cfg(feature = "mpi")]
        {
            let group = MpiGroup::from_launcher()
                .map_err(|e| e.to_string())?
                .map(Rc::new);
            if let Some(group) = &group {
                join_group(group.clone());
                if group.rank() > 0 {
                    seqlab::data::set_writes_outputs(false);
                    silence_stdout()?;
                }
            }
            Ok(Self { group })
        }
        #[cfg(not(feature = "mpi"))]
        Ok(Self {})
    }

    /// How to name this process in an error line: `" (process 1 of 2)"` for an error one
    /// process of a data-parallel job met, `""` otherwise.
    pub fn label(&self) -> String {
        #[cfg(feature = "mpi")]
        if let Some(group) = self
            .group
            .as_ref()
            .filter(|g| g.size() > 1 && !seqlab::train::parallel::ended_together())
        {
            return format!(" (process {} of {})", group.rank(), group.size());
        }
        String::new()
    }

    /// Whether this process reports an error: alone, rank 0 when every process of the job
    /// met it, and the process that met it otherwise.
    pub fn reports(&self) -> bool {
        #[cfg(feature = "mpi")]
        if let Some(group) = &self.group {
            return group.rank() == 0 || !seqlab::train::parallel::ended_together();
        }
        true
    }

    /// Ends the whole job after this process failed alone, so that the others do not wait
    /// for it in their next step (`MPI_Abort`); after an error every process met, each ends
    /// by itself. Returns alone.
    pub fn fail(&self) {
        #[cfg(feature = "mpi")]
        if let Some(group) = self.group.as_ref().filter(|g| g.size() > 1)
            && !seqlab::train::parallel::ended_together()
        {
            group.abort(1);
        }
    }
}

/// MPI ends when the last reference to the group goes: the thread's own first.
#[cfg(feature = "mpi")]
impl Drop for Membership {
    fn drop(&mut self) {
        leave_group();
    }
}

/// Points standard output at /dev/null.
#[cfg(feature = "mpi")]
fn silence_stdout() -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("cannot open /dev/null: {e}"))?;
    // SAFETY: dup2 on two open descriptors; it replaces descriptor 1 and touches no memory.
    if unsafe { libc::dup2(null.as_raw_fd(), 1) } < 0 {
        return Err(format!(
            "cannot silence standard output: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
