//! Which kernels the CPU backend runs for the convolution and the training-mode BatchNorm:
//! auglocal's or Burn's own.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable read once, at the first kernel call, when [`set_kernels`] has not
/// been called: `fast` (the default) or `burn`.
pub const KERNELS_ENV: &str = "AUGLOCAL_KERNELS";

/// The variable's earlier name, still read when [`KERNELS_ENV`] is unset.
pub const OLD_KERNELS_ENV: &str = "AUGLOCAL_CONV_BACKWARD";

/// The kernels of the CPU convolution (forward and backward) and of the training-mode
/// BatchNorm2d.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kernels {
    /// auglocal's kernels ([`crate::flex`]): GEMM convolutions, the fused BatchNorm.
    #[default]
    Fast,
    /// Burn 0.21's own: its convolution and default backward (a convolution and a transposed
    /// convolution), and a BatchNorm composed of its tensor ops; to compare against or to rule
    /// auglocal's kernels out.
    Burn,
}

/// A name of kernels that is neither `fast` nor `burn`, and the variable that held it, if one
/// did.
#[derive(Debug, thiserror::Error)]
#[error(
    "{}{value:?}: expected `fast` or `burn`",
    variable.map_or(String::new(), |v| format!("{v}="))
)]
pub struct ParseKernelsError {
    /// The environment variable that held the name.
    pub variable: Option<&'static str>,
    /// The name.
    pub value: String,
}

impl std::str::FromStr for Kernels {
    type Err = ParseKernelsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fast" => Ok(Self::Fast),
            "burn" => Ok(Self::Burn),
            other => Err(ParseKernelsError {
                variable: None,
                value: other.to_string(),
            }),
        }
    }
}

impl Kernels {
    /// The choice made by [`KERNELS_ENV`] (else by [`OLD_KERNELS_ENV`]): `Ok(None)` when
    /// neither is set.
    pub fn from_env() -> Result<Option<Self>, ParseKernelsError> {
        for variable in [KERNELS_ENV, OLD_KERNELS_ENV] {
            if let Ok(value) = std::env::var(variable) {
                return value
                    .parse()
                    .map(Some)
                    .map_err(|e: ParseKernelsError| ParseKernelsError {
                        variable: Some(variable),
                        ..e
                    });
            }
        }
        Ok(None)
    }

    /// Its name, as [`KERNELS_ENV`] spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fast => "fast",
            Self::Burn => "burn",
        }
    }
}

const UNSET: u8 = 0;
const FAST: u8 = 1;
const BURN: u8 = 2;

static MODE: AtomicU8 = AtomicU8::new(UNSET);

/// Chooses the kernels of every later convolution and BatchNorm of this process.
pub fn set_kernels(mode: Kernels) {
    let code = match mode {
        Kernels::Fast => FAST,
        Kernels::Burn => BURN,
    };
    MODE.store(code, Ordering::Relaxed);
}

/// The kernels in use: what [`set_kernels`] chose, else what [`KERNELS_ENV`] (or
/// [`OLD_KERNELS_ENV`]) says, else [`Kernels::Fast`]. An unreadable value of the variable counts
/// as unset here; front ends check it first with [`Kernels::from_env`].
pub fn active_kernels() -> Kernels {
    match MODE.load(Ordering::Relaxed) {
        FAST => Kernels::Fast,
        BURN => Kernels::Burn,
        _ => {
            let mode = Kernels::from_env().ok().flatten().unwrap_or_default();
            set_kernels(mode);
            mode
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for mode in [Kernels::Fast, Kernels::Burn] {
            assert_eq!(mode.name().parse::<Kernels>().ok(), Some(mode));
        }
        let err = "Burn".parse::<Kernels>().err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("\"Burn\": expected `fast` or `burn`"));
    }
}
