//! Several processes (nodes, on one machine or several) training one run together: each node
//! runs its own data-parallel replicas ([`crate::data_parallel`]), whose gradients
//! burn-collective averages inside the node; [`Nodes`] then averages the nodes' averages.
//!
//! [`Nodes`] is the inter-process level only, so that the trainer does not depend on one
//! engine; the `mpi` feature implements it on MPI (`auglocal_train::mpi::MpiNodes`, launched
//! by `mpirun`: docs/scaling.md, "Several machines").
//!
//! Every node must make the same calls in the same order with values of the same length; the
//! trainer does, since every node reads the same batches (same data, seed and settings,
//! checked with [`Nodes::agree`] before training starts).

use std::fmt::Debug;

use crate::TrainError;

/// The nodes of a multi-process run, seen from one of them.
pub trait Nodes: Debug + Send + Sync {
    /// This node's rank, from 0 (node 0 alone writes the run directory).
    fn rank(&self) -> usize;

    /// The number of nodes.
    fn size(&self) -> usize;

    /// The element-wise mean over the nodes of `values`: their sum in `f32`, divided by the
    /// node count. Called by each of this node's `local` replicas with identical values (their
    /// in-process mean); the nodes reduce once and every caller gets the result.
    fn mean(&self, local: usize, values: Vec<f32>) -> Result<Vec<f32>, TrainError>;

    /// The element-wise sum over the nodes of `values` (one caller per node).
    fn sum(&self, values: Vec<f64>) -> Result<Vec<f64>, TrainError>;

    /// Whether every node passed the same `value` (a fingerprint of its settings or weights).
    fn agree(&self, value: u64) -> Result<bool, TrainError>;

    /// Which training step the next calls belong to (`None`: outside a step), for the
    /// message of a node that waits too long.
    fn at_step(&self, step: Option<usize>);
}

/// Whether this process was started by an MPI launcher (`mpirun`, `mpiexec`, `srun`): the
/// variables that Open MPI, MPICH's Hydra and PMIx set in every process they start.
pub fn launched_by_mpi() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

/// How many processes of this MPI job run on this machine, as the launcher says (Open MPI's
/// `OMPI_COMM_WORLD_LOCAL_SIZE`, MPICH's `MPI_LOCALNRANKS`); 1 when it does not.
pub fn local_processes() -> usize {
    ["OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"]
        .iter()
        .find_map(|v| std::env::var(v).ok()?.parse().ok())
        .unwrap_or(1)
        .max(1)
}

/// A 64-bit FNV-1a fingerprint of `bytes` (the same on every process, machine and release,
/// unlike `std`'s hashers): what nodes compare to check that they train the same run.
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Checks with the other nodes that every node passed the same `value` (what the nodes build
/// to train one run); `what` names it in the error, a refusal.
pub fn check_agree(nodes: &dyn Nodes, value: u64, what: &str) -> Result<(), TrainError> {
    if nodes.agree(value)? {
        Ok(())
    } else {
        Err(TrainError::NodesDisagree {
            nodes: nodes.size(),
            what: what.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::fingerprint;

    #[test]
    fn fingerprints_are_fnv1a() {
        // The published FNV-1a 64 test vectors.
        assert_eq!(fingerprint(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fingerprint(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fingerprint(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
