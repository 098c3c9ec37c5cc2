//! Weights by PyTorch's names: round trips, shapes checked, every tensor used.

use super::*;
use burn::module::Module;
use burn::nn::LinearConfig;
use burn::tensor::Device;

#[test]
fn linear_round_trips_through_safetensors_bytes_in_pytorch_layout() {
    let device = Device::flex();
    let linear = LinearConfig::new(3, 2).init(&device);
    let mut named = NamedTensors::default();
    linear.save_pytorch("out.", &mut named);
    assert_eq!(named.get("out.weight").unwrap().0, &[2, 3]);
    let bytes = named.to_safetensors_bytes();
    let read = NamedTensors::from_safetensors_bytes(&bytes, "mem").unwrap();
    assert_eq!(read, named);
    let fresh = LinearConfig::new(3, 2).init(&device);
    let mut reader = WeightReader::new(&read);
    let loaded = fresh.load_pytorch("out.", &mut reader).unwrap();
    reader.finish().unwrap();
    loaded
        .weight
        .val()
        .into_data()
        .assert_eq(&linear.weight.val().into_data(), true);
    assert_eq!(loaded.num_params(), 8);
}

#[test]
fn missing_unexpected_misshapen_and_corrupt_are_typed_errors() {
    let device = Device::flex();
    let linear = || LinearConfig::new(3, 2).init(&device);
    let mut named = NamedTensors::default();
    named.insert("out.weight", vec![2, 3], vec![0.0; 6]);
    let mut reader = WeightReader::new(&named);
    assert_eq!(
        linear().load_pytorch("out.", &mut reader).unwrap_err(),
        WeightsError::Missing {
            name: "out.bias".into(),
            expected: vec![2]
        }
    );
    named.insert("out.bias", vec![3], vec![0.0; 3]);
    let mut reader = WeightReader::new(&named);
    assert_eq!(
        linear().load_pytorch("out.", &mut reader).unwrap_err(),
        WeightsError::Shape {
            name: "out.bias".into(),
            expected: vec![2],
            got: vec![3]
        }
    );
    named.insert("out.bias", vec![2], vec![0.0; 2]);
    named.insert("extra", vec![1], vec![0.0]);
    let mut reader = WeightReader::new(&named);
    linear().load_pytorch("out.", &mut reader).unwrap();
    assert_eq!(
        reader.finish().unwrap_err(),
        WeightsError::Unexpected {
            names: vec!["extra".into()]
        }
    );
    let bytes = named.to_safetensors_bytes();
    assert!(matches!(
        NamedTensors::from_safetensors_bytes(&bytes[..bytes.len() - 3], "cut.safetensors"),
        Err(WeightsError::Format { .. })
    ));
    assert!(matches!(
        NamedTensors::from_safetensors_bytes(b"", "empty.safetensors"),
        Err(WeightsError::Format { .. })
    ));
    assert!(matches!(
        NamedTensors::load_safetensors(Path::new("/no/such/file.safetensors")),
        Err(WeightsError::Io { .. })
    ));
}
