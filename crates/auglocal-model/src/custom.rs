//! A library user's own network: units written as Burn modules, described for the planner by
//! one dry forward pass.
//!
//! A custom network is a list of units, each a Burn module implementing [`LocalUnit`] (one
//! 4-D tensor in, the next out), followed by auglocal's linear head (global average pool ->
//! Linear). [`CustomNetworkConfig::spec`] runs one example input through the units, in
//! inference mode so no BatchNorm statistic moves, and writes what each produced as a
//! [`UnitKind::Custom`] unit: input and output widths and sides, the stride those imply, and
//! its trainable parameter count (BatchNorm statistics are state). From then on the planner, the aux builder and the trainer treat it as
//! any family: greedy and DGL read only widths and sizes; AugLocal builds each aux net from
//! BasicBlocks shaped like the selected units' outputs ([`UnitSpec::aux_block`]).

use burn::module::{AutodiffModule, Module};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

use crate::spec::{AuxHeadStyle, HeadSpec, LocalStyle, UnitKind, UnitSpec};
use crate::{Arch, MAX_CHANNELS, MAX_IMAGE_SIZE, ModelError, NetworkSpec};

/// A unit of a network that local learning may cut after: a Burn module from one feature map
/// to the next. auglocal's own units implement it, and so can any module of yours.
///
/// Its convolutions train fastest on the CPU through [`auglocal_kernels::Conv2d`] (the same
/// fields and record as `burn::nn::conv::Conv2d`, with auglocal's conv backward); a unit built
/// from Burn's `Conv2d` trains too, on Burn's generic backward.
pub trait LocalUnit<B: Backend>: Module<B> {
    /// # Shapes
    /// - input: `[batch, in_channels, size, size]`
    /// - output: `[batch, out_channels, out_size, out_size]` (square, `out_size <= size`)
    fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4>;
}

/// What the planner needs to know about a custom network beyond its units: the images it
/// takes, its classes and how local learning treats it. [`CustomNetworkConfig::spec`] probes
/// the units into a [`NetworkSpec`].
#[derive(Clone, Debug, PartialEq)]
pub struct CustomNetworkConfig {
    /// Shape of one input image, `[channels, size, size]`.
    pub input_shape: [usize; 3],
    /// Classes of the primary head (and of every aux net).
    pub num_classes: usize,
    /// How the planner cuts it and ends its aux nets.
    pub local: LocalStyle,
}

impl CustomNetworkConfig {
    /// A network for `[channels, size, size]` images and `num_classes` classes, cut as the
    /// reference cuts its ImageNet networks: `K` modules for `K` asked (no `K - d`), aux nets
    /// ending in global average pool -> Linear.
    pub fn new(input_shape: [usize; 3], num_classes: usize) -> Self {
        Self {
            input_shape,
            num_classes,
            local: LocalStyle {
                subtract_depth: false,
                aux_head: AuxHeadStyle::Linear {
                    batch_norm_when_shallow: false,
                },
            },
        }
    }

    /// With another local style (e.g. the CIFAR reference's `K - d` partition).
    pub fn with_local(self, local: LocalStyle) -> Self {
        Self { local, ..self }
    }

    /// Describes `units` by running one zero image through them in inference mode
    /// (`AutodiffModule::valid`, so BatchNorm uses and keeps its running statistics). The pass
    /// runs on clones: weights the units have not drawn yet stay undrawn.
    ///
    /// A unit must keep its maps square and not enlarge them; its stride is taken as
    /// `ceil(in_size / out_size)`. A unit that does not accept its predecessor's output panics
    /// in its own forward, as Burn does on a shape mismatch.
    pub fn spec<B, U>(&self, units: &[U], device: &B::Device) -> Result<NetworkSpec, ModelError>
    where
        B: AutodiffBackend,
        U: AutodiffModule<B>,
        U::InnerModule: LocalUnit<B::InnerBackend>,
    {
        let [channels, height, width] = self.input_shape;
        crate::spec::check_classes(self.num_classes)?;
        if height != width
            || !(1..=MAX_CHANNELS).contains(&channels)
            || !(1..=MAX_IMAGE_SIZE).contains(&height)
        {
            return Err(ModelError::InvalidInput {
                channels,
                size: if height == width { height } else { 0 },
            });
        }
        if units.is_empty() {
            return Err(ModelError::NoUnits);
        }
        let mut x = Tensor::<B::InnerBackend, 4>::zeros([1, channels, height, width], device);
        let mut specs = Vec::with_capacity(units.len());
        for (index, unit) in units.iter().enumerate() {
            // A clone: Burn draws a parameter on its first use, and a clone of an undrawn one
            // draws its own; the units keep theirs undrawn, for the trainer to draw after
            // seeding (`Trainer::from_units`).
            let unit = unit.clone();
            let [_, in_width, in_size, _] = x.dims();
            x = LocalUnit::forward(&unit.valid(), x);
            let [_, out_width, out_h, out_w] = x.dims();
            let fail = |message: String| ModelError::CustomUnit { index, message };
            if out_h != out_w {
                return Err(fail(format!(
                    "its output is {out_width}x{out_h}x{out_w}; units must keep maps square"
                )));
            }
            if out_h == 0 || out_h > in_size {
                return Err(fail(format!(
                    "it turns a {in_size}x{in_size} map into {out_h}x{out_h}; a unit may keep \
                     or shrink the side, not enlarge it or empty it"
                )));
            }
            let stride = in_size.div_ceil(out_h);
            specs.push(UnitSpec {
                kind: UnitKind::Custom {
                    params: crate::nn::num_trainable_params(&unit) as u64,
                },
                in_width,
                out_width,
                stride,
                in_size,
                out_size: out_h,
                init: Default::default(),
            });
        }
        let feature_width = specs.last().map_or(0, |u| u.out_width);
        Ok(NetworkSpec {
            arch: Arch::Custom,
            num_classes: self.num_classes,
            width_multiplier: 1.0,
            in_channels: channels,
            image_size: height,
            units: specs,
            head: HeadSpec::Linear {
                width: feature_width,
                num_classes: self.num_classes,
            },
            local: self.local,
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::{Autodiff, Flex};
    use burn::nn::PaddingConfig2d;
    use burn::nn::conv::{Conv2d, Conv2dConfig};
    use burn::tensor::activation::relu;

    use super::*;
    use crate::nn::{BatchNorm, BatchNormConfig};

    type B = Autodiff<Flex>;

    /// Burn's own conv (not auglocal's) + auglocal's BatchNorm, with a padding chosen per test.
    #[derive(Module, Debug)]
    struct Probe<B: Backend> {
        conv: Conv2d<B>,
        norm: BatchNorm<B>,
    }

    fn unit(i: usize, o: usize, stride: usize, pad: [usize; 2]) -> Probe<B> {
        let device = Default::default();
        let conv = Conv2dConfig::new([i, o], [3, 3])
            .with_stride([stride; 2])
            .with_padding(PaddingConfig2d::Explicit(pad[0], pad[1], pad[0], pad[1]));
        Probe {
            conv: conv.init(&device),
            norm: BatchNormConfig::new(o).init(&device),
        }
    }

    impl<B: auglocal_kernels::FastOps> LocalUnit<B> for Probe<B> {
        fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
            relu(self.norm.forward(self.conv.forward(x)))
        }
    }

    #[test]
    fn a_dry_forward_describes_the_units() {
        let units = [
            unit(1, 8, 1, [1, 1]),
            unit(8, 16, 2, [1, 1]),
            unit(16, 16, 2, [1, 1]),
        ];
        let spec = CustomNetworkConfig::new([1, 28, 28], 10)
            .spec::<B, _>(&units, &Default::default())
            .expect("plannable");
        let shapes: Vec<_> = spec
            .units
            .iter()
            .map(|u| (u.in_width, u.out_width, u.stride, u.in_size, u.out_size))
            .collect();
        assert_eq!(
            shapes,
            vec![(1, 8, 1, 28, 28), (8, 16, 2, 28, 14), (16, 16, 2, 14, 7)]
        );
        // conv weights + biases + BatchNorm's gamma and beta.
        assert_eq!(spec.units[1].cost().params, 8 * 16 * 9 + 16 + 2 * 16);
        assert_eq!(
            spec.head,
            HeadSpec::Linear {
                width: 16,
                num_classes: 10
            }
        );
        assert_eq!((spec.arch, spec.input_shape()), (Arch::Custom, [1, 28, 28]));
        // Inference mode: the running statistics did not move.
        let var: Vec<f32> = units[0]
            .norm
            .running_var
            .value()
            .into_data()
            .to_vec()
            .expect("f32");
        assert!(var.iter().all(|&v| v == 1.0), "{var:?}");
        // The aux blocks that stand in for them are BasicBlocks, strided from resolution.
        let aux = spec.units[2].aux_block(8, 28);
        assert_eq!(
            (aux.kind, aux.stride, aux.out_size),
            (UnitKind::BasicBlock, 2, 14)
        );
    }

    #[test]
    fn what_cannot_be_planned_is_an_error_naming_the_unit() {
        let device = Default::default();
        let config = CustomNetworkConfig::new([1, 8, 8], 10);
        // Padding (1, 0): 8x8 becomes 8x6.
        let err = config
            .spec::<B, _>(&[unit(1, 4, 1, [1, 1]), unit(4, 4, 1, [1, 0])], &device)
            .expect_err("not square");
        assert!(
            matches!(err, ModelError::CustomUnit { index: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("square"), "{err}");
        // Padding 2 enlarges 8x8 to 10x10.
        let err = config
            .spec::<B, _>(&[unit(1, 4, 1, [2, 2])], &device)
            .expect_err("enlarges");
        assert!(err.to_string().contains("unit 0"), "{err}");
        assert_eq!(
            config.spec::<B, Probe<B>>(&[], &device),
            Err(ModelError::NoUnits)
        );
        let err = CustomNetworkConfig::new([1, 8, 6], 10)
            .spec::<B, _>(&[unit(1, 4, 1, [1, 1])], &device)
            .expect_err("not square");
        assert!(matches!(err, ModelError::InvalidInput { .. }), "{err}");
        let err = CustomNetworkConfig::new([1, 8, 8], 1)
            .spec::<B, _>(&[unit(1, 4, 1, [1, 1])], &device)
            .expect_err("one class");
        assert_eq!(err, ModelError::TooFewClasses(1));
    }
}
