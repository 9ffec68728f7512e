//! Classify an image with an exported model, using only Burn and the model crate.
//!
//! ```text
//! cargo run --release -p auglocal-cli -- train     # the demo run: runs/demo
//! cargo run --release -p auglocal-cli -- export runs/demo --best --out model.safetensors
//! cargo run --release --example inference -- model.safetensors some-image.png
//! ```

use std::path::PathBuf;

use auglocal::burn::backend::Flex;
use auglocal::model::export;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [model, image] = args.as_slice() else {
        return Err("usage: inference MODEL.safetensors IMAGE.png".into());
    };
    // The manifest beside the weights rebuilds the network; its checksum is checked.
    let model = export::load::<Flex>(model, &Default::default())?;
    // Any size, grey or colour: brought to what the network was trained on.
    let prediction = model.predict(vec![export::read_image(image)?], 3).remove(0);
    for (class, probability) in prediction.top {
        println!("{:>6.2}%  {}", 100.0 * probability, model.class_name(class));
    }
    Ok(())
}
