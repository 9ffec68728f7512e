//! `--device cpu|wgpu|cuda[:N]`: which Burn backend runs the work.
//!
//! The CPU backend (Burn's `flex`) is always built. The GPU backends are cargo features, so the
//! default build compiles one backend: each backend monomorphises the whole trainer.

use std::fmt;
use std::str::FromStr;

use anyhow::Result;
use auglocal_kernels::FastOpsAutodiff;
use burn::backend::{Autodiff, Flex};

/// A device named on the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// Burn's CPU backend (`flex`), on all cores.
    #[default]
    Cpu,
    /// WGPU (Vulkan, Metal, DX12; Mesa's software Vulkan on machines without a GPU).
    Wgpu,
    /// CUDA GPU number N.
    Cuda(usize),
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Wgpu => f.write_str("wgpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Device::Cpu),
            "wgpu" => Ok(Device::Wgpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|i| i.parse().ok())
                .map(Device::Cuda)
                .ok_or_else(|| format!("expected cpu, wgpu, cuda or cuda:N, got '{s}'")),
        }
    }
}

/// The GPU backend was not compiled into this binary.
#[derive(Debug, thiserror::Error)]
#[error(
    "this auglocal was built without the {backend} backend; rebuild it with \
     `cargo build --release -p auglocal-cli --features {backend}`"
)]
pub struct MissingBackend {
    backend: &'static str,
}

/// Refuses a device whose backend this binary was built without.
pub fn check_compiled(device: Device) -> Result<(), MissingBackend> {
    match device {
        Device::Cpu => Ok(()),
        Device::Wgpu if cfg!(feature = "wgpu") => Ok(()),
        Device::Cuda(_) if cfg!(feature = "cuda") => Ok(()),
        Device::Wgpu => Err(MissingBackend { backend: "wgpu" }),
        Device::Cuda(_) => Err(MissingBackend { backend: "cuda" }),
    }
}

/// Bytes of device memory that the backend's allocator holds now, where it says (`None` on
/// the CPU backend, whose memory the heap and RSS figures cover).
pub type DeviceMemory<'a> = &'a dyn Fn() -> Option<u64>;

/// Work that runs on any autodiff backend.
pub trait BackendJob {
    /// What the work returns.
    type Output;
    /// Runs the work on backend `B` and `device`; `memory` reads the device's memory.
    fn run<B: FastOpsAutodiff>(
        self,
        device: B::Device,
        memory: DeviceMemory,
    ) -> Result<Self::Output>;
}

/// Bytes reserved by CubeCL's memory pools on `device`. The pools keep what they reserve, so
/// after some work this is the high-water mark of the memory they needed (padding included).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn cubecl_reserved<R: cubecl_runtime::runtime::Runtime>(device: &R::Device) -> Option<u64> {
    R::client(device)
        .memory_usage()
        .ok()
        .map(|u| u.bytes_reserved)
}

/// Runs `job` on the backend and device `device` names.
pub fn dispatch<J: BackendJob>(device: Device, job: J) -> Result<J::Output> {
    match device {
        Device::Cpu => job.run::<Autodiff<Flex>>(Default::default(), &|| None),
        Device::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                use burn::backend::wgpu::{WgpuDevice, WgpuRuntime};
                let memory = || cubecl_reserved::<WgpuRuntime>(&WgpuDevice::default());
                job.run::<Autodiff<burn::backend::Wgpu>>(WgpuDevice::default(), &memory)
            }
            #[cfg(not(feature = "wgpu"))]
            {
                drop(job);
                Err(MissingBackend { backend: "wgpu" }.into())
            }
        }
        Device::Cuda(index) => {
            #[cfg(feature = "cuda")]
            {
                use burn::backend::cuda::CudaDevice;
                let memory =
                    || cubecl_reserved::<cubecl_cuda::CudaRuntime>(&CudaDevice::new(index));
                job.run::<Autodiff<burn::backend::Cuda>>(CudaDevice::new(index), &memory)
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = index;
                drop(job);
                Err(MissingBackend { backend: "cuda" }.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse(), Ok(Device::Cpu));
        assert_eq!("CUDA".parse(), Ok(Device::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(Device::Cuda(3)));
        assert!("tpu".parse::<Device>().is_err());
        assert!("cuda:x".parse::<Device>().is_err());
        assert_eq!(Device::Cuda(2).to_string(), "cuda:2");
    }
}
