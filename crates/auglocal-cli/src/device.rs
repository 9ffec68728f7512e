//! `--device cpu|wgpu|cuda[:N]`: which Burn backend runs the work.
//!
//! The CPU backend (Burn's `flex`) is always built. The GPU backends are cargo features, so the
//! default build compiles one backend: each backend monomorphises the whole trainer.

use std::fmt;
use std::str::FromStr;

use anyhow::Result;
use auglocal_kernels::FastOpsAutodiff;
use burn::backend::{Autodiff, Flex};

use crate::exit::usage;

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

/// The GPU backend `backend` was not compiled into this binary: a usage error (exit status 2).
fn missing_backend(backend: &str) -> anyhow::Error {
    usage(format!(
        "this auglocal was built without the {backend} backend; rebuild it with \
         `cargo build --release -p auglocal-cli --features {backend}`"
    ))
}

/// Refuses a device whose backend this binary was built without.
pub fn check_compiled(device: Device) -> Result<()> {
    match device {
        Device::Cpu => Ok(()),
        Device::Wgpu if cfg!(feature = "wgpu") => Ok(()),
        Device::Cuda(_) if cfg!(feature = "cuda") => Ok(()),
        Device::Wgpu => Err(missing_backend("wgpu")),
        Device::Cuda(_) => Err(missing_backend("cuda")),
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

    /// Runs the work on several devices of backend `B` (pipeline stages), the first being the
    /// main one; by default on the first only.
    fn run_on<B: FastOpsAutodiff>(
        self,
        mut devices: Vec<B::Device>,
        memory: DeviceMemory,
    ) -> Result<Self::Output>
    where
        Self: Sized,
    {
        self.run::<B>(devices.swap_remove(0), memory)
    }
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
    dispatch_on(&[device], job)
}

/// Runs `job` on the devices `devices` names, all of one backend (a usage error otherwise);
/// device memory is read on the first.
pub fn dispatch_on<J: BackendJob>(devices: &[Device], job: J) -> Result<J::Output> {
    let Some(&first) = devices.first() else {
        return Err(usage("no device given"));
    };
    let same_kind = |d: &Device| std::mem::discriminant(d) == std::mem::discriminant(&first);
    if !devices.iter().all(same_kind) {
        let list: Vec<String> = devices.iter().map(Device::to_string).collect();
        return Err(usage(format!(
            "--devices {}: every stage must run on one backend (cpu, wgpu or cuda:N)",
            list.join(",")
        )));
    }
    let n = devices.len();
    match first {
        Device::Cpu => job.run_on::<Autodiff<Flex>>(vec![Default::default(); n], &|| None),
        Device::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                use burn::backend::wgpu::{WgpuDevice, WgpuRuntime};
                let memory = || cubecl_reserved::<WgpuRuntime>(&WgpuDevice::default());
                job.run_on::<Autodiff<burn::backend::Wgpu>>(vec![WgpuDevice::default(); n], &memory)
            }
            #[cfg(not(feature = "wgpu"))]
            {
                drop(job);
                Err(missing_backend("wgpu"))
            }
        }
        Device::Cuda(index) => {
            #[cfg(feature = "cuda")]
            {
                use burn::backend::cuda::CudaDevice;
                let memory =
                    || cubecl_reserved::<cubecl_cuda::CudaRuntime>(&CudaDevice::new(index));
                let all = devices
                    .iter()
                    .map(|d| match d {
                        Device::Cuda(i) => CudaDevice::new(*i),
                        _ => CudaDevice::new(index),
                    })
                    .collect();
                job.run_on::<Autodiff<burn::backend::Cuda>>(all, &memory)
            }
            #[cfg(not(feature = "cuda"))]
            {
                let _ = index;
                drop(job);
                Err(missing_backend("cuda"))
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
