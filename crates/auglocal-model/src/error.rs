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
    /// More classes than [`crate::MAX_CLASSES`].
    #[error("num_classes must be at most {max}, got {got}", max = crate::MAX_CLASSES)]
    TooManyClasses {
        /// The class count given.
        got: usize,
    },
    /// The width multiplier is not a finite number in (0, [`crate::MAX_WIDTH_MULTIPLIER`]].
    #[error(
        "width multiplier must be a finite number > 0 and at most {max}, got {0}",
        max = crate::MAX_WIDTH_MULTIPLIER
    )]
    InvalidWidthMultiplier(f64),
    /// Input channels or image side out of range (at least 1, at most [`crate::MAX_CHANNELS`]
    /// and [`crate::MAX_IMAGE_SIZE`]).
    #[error(
        "input must have 1 to {max_channels} channels and a side of 1 to {max_size} pixels, got \
         {channels} channels of {size}x{size}",
        max_channels = crate::MAX_CHANNELS,
        max_size = crate::MAX_IMAGE_SIZE
    )]
    InvalidInput {
        /// Input channels.
        channels: usize,
        /// Input side in pixels.
        size: usize,
    },
    /// The image is smaller than the network's pools allow.
    #[error(
        "{arch} takes images of at least {min}x{min} pixels (its pools halve the side), got \
         {size}x{size}; set `image_size` to {min} or more"
    )]
    ImageTooSmall {
        /// The network.
        arch: crate::Arch,
        /// The side given.
        size: usize,
        /// The smallest side it takes.
        min: usize,
    },
    /// [`crate::Arch::Custom`] given to [`crate::NetworkConfig`], which lays out only
    /// auglocal's own families.
    #[error(
        "a custom network is described from its own units with CustomNetworkConfig::spec, not \
         laid out by NetworkConfig"
    )]
    CustomLayout,
    /// A custom network's units, probed with one example input, cannot be planned.
    #[error("custom network, unit {index}: {message}")]
    CustomUnit {
        /// The unit, from 0.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A custom network without units.
    #[error("a custom network needs at least one unit")]
    NoUnits,
}
