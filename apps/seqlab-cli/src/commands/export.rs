//! `seqlab export`: a checkpoint as an ONNX file, for ONNX Runtime and other ONNX tools.

use clap::Args as ClapArgs;
use seqlab::lessons::export::{KIND_KEY, export_checkpoint};
use std::error::Error;
use std::path::PathBuf;

/// Options of `seqlab export`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// A checkpoint written by a seqlab command: char-lm, lm, classify, pos-tag,
    /// human-numbers, addition, copy (on recurrent layers) or sinusoid.
    #[arg(long, value_name = "DIR")]
    checkpoint: PathBuf,
    /// The ONNX file to write (atomically).
    #[arg(long, value_name = "FILE")]
    onnx: PathBuf,
}

/// Writes the ONNX file and says what it holds.
pub fn run(args: Args) -> Result<(), Box<dyn Error>> {
    let device = seqlab::device::DeviceChoice::default_cpu()?.device()?;
    let model = export_checkpoint(&args.checkpoint, &device)?;
    model.save(&args.onnx)?;
    let graph = model
        .0
        .graph
        .as_ref()
        .expect("an exported model has a graph");
    let names = |values: &[seqlab::onnx::proto::ValueInfoProto]| {
        values
            .iter()
            .filter_map(|v| v.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "wrote {} ({} bytes): {} model, inputs {}, outputs {}",
        args.onnx.display(),
        model.to_bytes().len(),
        model.metadata(KIND_KEY).unwrap_or("?"),
        names(&graph.input),
        names(&graph.output)
    );
    Ok(())
}
