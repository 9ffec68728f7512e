//! Which kernels the CPU backend runs for the convolution and the training-mode BatchNorm:
//! auglocal's or Burn's own.

use std::sync::atomic::{AtomicU8, Ordering};

/// The environment variable read once, at the first kernel call, when
/// [`set_conv_backward`] has not been called: `fast` (the default) or `burn`.
pub const CONV_BACKWARD_ENV: &str = "AUGLOCAL_CONV_BACKWARD";

/// The kernels of the CPU convolution (forward and backward) and of the training-mode
/// BatchNorm2d.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ConvBackward {
    /// auglocal's kernels ([`crate::flex`]): GEMM convolutions, the fused BatchNorm.
    #[default]
    Fast,
    /// Burn 0.21's own: its convolution and default backward (a convolution and a transposed
    /// convolution), and a BatchNorm composed of its tensor ops; to compare against or to rule
    /// auglocal's kernels out.
    Burn,
}

/// A value of [`CONV_BACKWARD_ENV`] that is neither `fast` nor `burn`.
#[derive(Debug, thiserror::Error)]
#[error("{CONV_BACKWARD_ENV}={0:?}: expected `fast` or `burn`")]
pub struct ParseConvBackwardError(pub String);

impl std::str::FromStr for ConvBackward {
    type Err = ParseConvBackwardError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fast" => Ok(Self::Fast),
            "burn" => Ok(Self::Burn),
            other => Err(ParseConvBackwardError(other.to_string())),
        }
    }
}

impl ConvBackward {
    /// The choice made by [`CONV_BACKWARD_ENV`]: `Ok(None)` when unset.
    pub fn from_env() -> Result<Option<Self>, ParseConvBackwardError> {
        match std::env::var(CONV_BACKWARD_ENV) {
            Ok(value) => value.parse().map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Its name, as [`CONV_BACKWARD_ENV`] spells it.
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

/// Chooses the backward kernels for every later convolution of this process.
pub fn set_conv_backward(mode: ConvBackward) {
    let code = match mode {
        ConvBackward::Fast => FAST,
        ConvBackward::Burn => BURN,
    };
    MODE.store(code, Ordering::Relaxed);
}

/// The backward kernels in use: what [`set_conv_backward`] chose, else what
/// [`CONV_BACKWARD_ENV`] says, else [`ConvBackward::Fast`]. An unreadable value of the variable
/// counts as unset here; front ends check it first with [`ConvBackward::from_env`].
pub fn conv_backward() -> ConvBackward {
    match MODE.load(Ordering::Relaxed) {
        FAST => ConvBackward::Fast,
        BURN => ConvBackward::Burn,
        _ => {
            let mode = ConvBackward::from_env().ok().flatten().unwrap_or_default();
            set_conv_backward(mode);
            mode
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for mode in [ConvBackward::Fast, ConvBackward::Burn] {
            assert_eq!(mode.name().parse::<ConvBackward>().ok(), Some(mode));
        }
        let err = "Burn".parse::<ConvBackward>().err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("AUGLOCAL_CONV_BACKWARD=\"Burn\": expected `fast` or `burn`")
        );
    }
}
