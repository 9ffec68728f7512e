//! Errors of network descriptions.

/// Why a network could not be described.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// The architecture name is not one of [`crate::Arch::ALL`].
    #[error("unknown architecture '{name}'; known: {known}")]
    UnknownArch {
        /// The name that was given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// Fewer than two classes.
    #[error("num_classes must be at least 2 (a classifier needs two classes), got {0}")]
    TooFewClasses(usize),
    /// The width multiplier is not a finite number > 0.
    #[error("width multiplier must be a finite number > 0, got {0}")]
    InvalidWidthMultiplier(f64),
    /// No input channels, or a zero image size.
    #[error(
        "input must have at least 1 channel and a side of at least 1 pixel, got {channels} channels of {size}x{size}"
    )]
    InvalidInput {
        /// Input channels.
        channels: usize,
        /// Input side in pixels.
        size: usize,
    },
}
