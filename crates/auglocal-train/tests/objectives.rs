//! The local objectives get what they compare with: InfoPro's decoders reconstruct the
//! batch's pixels in [0, 1], restored with the trainer's image normalisation.

mod common;

use auglocal_data::Normalize;
use auglocal_plan::Rule;
use auglocal_train::pixels::restore;
use auglocal_train::{Trainer, sgd_config};
use common::{B, batches, plan, seeded};

#[test]
fn infopro_reconstructs_the_pixels_of_the_trainer_s_normalisation() {
    let _seed = seeded();
    let plan = plan(Rule::InfoPro, 4);
    let (images, targets) = batches(1, 6).remove(0);
    let trainer = |normalize: Normalize| {
        Trainer::<B>::init(&plan, &sgd_config(0.9, 1e-4), 5, &Default::default())
            .with_image_normalization(normalize)
    };
    // Module 0's loss before the step, computed by hand from the restored pixels.
    let first = trainer(Normalize::CIFAR);
    let module = &first.network().modules[0];
    assert!(module.needs_pixels());
    let pixels = restore(images.clone(), &Normalize::CIFAR);
    let (_, _, expected) = module.forward_loss(images.clone(), targets.clone(), Some(pixels));
    let expected = expected.into_scalar();

    let mut cifar = first;
    let stats = cifar
        .step(images.clone(), targets.clone(), 0.05)
        .expect("a step");
    assert_eq!(stats.losses[0], expected);

    // Another normalisation is other pixels, and another loss: the normalisation is used.
    let stats = trainer(Normalize::UNIT)
        .step(images, targets, 0.05)
        .expect("a step");
    assert_ne!(stats.losses[0], expected);
}
