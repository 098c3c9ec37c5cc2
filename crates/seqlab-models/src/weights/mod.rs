//! Weights by name, in PyTorch's names and layouts: import a PyTorch `state_dict` saved as
//! safetensors, and save seqlab's models in the same format (so PyTorch can load them back).
//!
//! A module implements [`PytorchWeights`] to write its parameters under PyTorch's names and to
//! read them back with every name and shape checked. [`Recurrent`](crate::Recurrent) uses
//! `nn.RNN`/`nn.LSTM`/`nn.GRU`'s names (`weight_ih_l0`, `weight_hh_l1_reverse`, …); burn's
//! `Linear` and `Embedding` use `nn.Linear`'s and `nn.Embedding`'s (`weight`, `bias`), with
//! `Linear`'s weight transposed to PyTorch's `[out, in]`.
//!
//! ```
//! use burn::tensor::Device;
//! use seqlab_models::{NamedTensors, PytorchWeights, RecurrentConfig, WeightReader};
//!
//! let device = Device::flex();
//! let lstm = RecurrentConfig::lstm(4, 6).with_num_layers(2).init(&device);
//! let mut named = NamedTensors::default();
//! lstm.save_pytorch("rnn.", &mut named);
//! assert!(named.get("rnn.weight_hh_l1").is_some());
//!
//! let fresh = RecurrentConfig::lstm(4, 6).with_num_layers(2).init(&device);
//! let mut reader = WeightReader::new(&named);
//! let loaded = fresh.load_pytorch("rnn.", &mut reader).unwrap();
//! reader.finish().unwrap(); // every tensor in the file was used
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::Param;
use burn::nn::{Embedding, Linear};
use burn::tensor::{Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};
use thiserror::Error;

mod module_paths;

pub use module_paths::{load_module_tensors, module_tensors};

/// Why weights could not be read, written or loaded into a module.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum WeightsError {
    /// The module needs a tensor the file does not have.
    #[error("missing tensor {name:?} (shape {expected:?})")]
    Missing {
        /// The tensor's name.
        name: String,
        /// The shape the module needs.
        expected: Vec<usize>,
    },
    /// The file has tensors that no parameter of the module takes.
    #[error("unexpected tensors not used by the model: {}", names.join(", "))]
    Unexpected {
        /// Their names.
        names: Vec<String>,
    },
    /// A tensor's shape is not the parameter's.
    #[error("tensor {name:?} has shape {got:?}, the model expects {expected:?}")]
    Shape {
        /// The tensor's name.
        name: String,
        /// The parameter's shape.
        expected: Vec<usize>,
        /// The file's.
        got: Vec<usize>,
    },
    /// A tensor of an element type seqlab does not read.
    #[error("tensor {name:?} has element type {dtype}; seqlab reads F32 and F64")]
    Dtype {
        /// The tensor's name.
        name: String,
        /// Its element type.
        dtype: String,
    },
    /// The file is not a valid safetensors file.
    #[error("{path}: not a valid safetensors file: {message}")]
    Format {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// Reading or writing the file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the system said.
        message: String,
    },
}

/// The stored width of floating-point values.
#[derive(Clone, Copy)]
enum Width {
    F32,
    F64,
}

/// The byte order of stored values: safetensors is little-endian, `pytorch-reader` hands out
/// the machine's own.
#[derive(Clone, Copy)]
enum Order {
    Little,
    Native,
}

/// Decodes stored floats to `f32` (F64 narrowed).
fn floats(bytes: &[u8], width: Width, order: Order) -> Vec<f32> {
    match width {
        Width::F32 => bytes
            .chunks_exact(4)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3]];
                match order {
                    Order::Little => f32::from_le_bytes(b),
                    Order::Native => f32::from_ne_bytes(b),
                }
            })
            .collect(),
        Width::F64 => bytes
            .chunks_exact(8)
            .map(|b| {
                let b = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                (match order {
                    Order::Little => f64::from_le_bytes(b),
                    Order::Native => f64::from_ne_bytes(b),
                }) as f32
            })
            .collect(),
    }
}

/// Tensors by name, as `f32` values with their shapes: a `state_dict`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamedTensors {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
}

impl NamedTensors {
    /// Adds (or replaces) `name`. `values` must hold the product of `shape` elements.
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) {
        debug_assert_eq!(shape.iter().product::<usize>(), values.len());
        self.tensors.insert(name.into(), (shape, values));
    }

    /// Adds a tensor's values under `name`.
    pub fn insert_tensor<const D: usize>(&mut self, name: impl Into<String>, tensor: Tensor<D>) {
        let shape = tensor.dims().to_vec();
        let values = tensor
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("converted to f32");
        self.insert(name, shape, values);
    }

    /// The shape and values of `name`.
    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors
            .get(name)
            .map(|(shape, values)| (shape.as_slice(), values.as_slice()))
    }

    /// Every name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Parses a safetensors file's bytes (`path` names it in errors). F32 and F64 tensors are
    /// read; F64 is narrowed to f32.
    pub fn from_safetensors_bytes(bytes: &[u8], path: &str) -> Result<Self, WeightsError> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let mut named = Self::default();
        for (name, view) in file.tensors() {
            let data = view.data();
            let values = match view.dtype() {
                Dtype::F32 => floats(data, Width::F32, Order::Little),
                Dtype::F64 => floats(data, Width::F64, Order::Little),
                other => {
                    return Err(WeightsError::Dtype {
                        name,
                        dtype: format!("{other:?}"),
                    });
                }
            };
            named.insert(name, view.shape().to_vec(), values);
        }
        Ok(named)
    }

    /// Reads a safetensors file (`safetensors.torch.save_file(model.state_dict(), path)`).
    pub fn load_safetensors(path: &Path) -> Result<Self, WeightsError> {
        let bytes = std::fs::read(path).map_err(|e| WeightsError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_safetensors_bytes(&bytes, &path.display().to_string())
    }

    /// Reads a PyTorch checkpoint written by `torch.save(model.state_dict(), path)` (`.pt` or
    /// `.pth`, zip or legacy format), or the dictionary under `top_level_key` of one that
    /// holds more (`"state_dict"`, `"model"`). F32 and F64 tensors are read.
    pub fn load_pytorch_checkpoint(
        path: &Path,
        top_level_key: Option<&str>,
    ) -> Result<Self, WeightsError> {
        let format = |message: String| WeightsError::Format {
            path: path.display().to_string(),
            message,
        };
        let reader = match top_level_key {
            Some(key) => pytorch_reader::PytorchReader::with_top_level_key(path, key),
            None => pytorch_reader::PytorchReader::new(path),
        }
        .map_err(|e| match e {
            pytorch_reader::PytorchError::Io(io) => WeightsError::Io {
                path: path.display().to_string(),
                message: io.to_string(),
            },
            other => format(other.to_string()),
        })?;
        let mut named = Self::default();
        for (name, tensor) in reader.into_tensors() {
            let bytes = tensor.read().map_err(|e| format(e.to_string()))?;
            let values = match tensor.dtype() {
                pytorch_reader::DType::F32 => floats(&bytes, Width::F32, Order::Native),
                pytorch_reader::DType::F64 => floats(&bytes, Width::F64, Order::Native),
                other => {
                    return Err(WeightsError::Dtype {
                        name,
                        dtype: format!("{other:?}"),
                    });
                }
            };
            named.insert(name, tensor.shape().to_vec(), values);
        }
        Ok(named)
    }

    /// The safetensors bytes of these tensors (all F32).
    pub fn to_safetensors_bytes(&self) -> Vec<u8> {
        let bytes: BTreeMap<&str, (Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, (shape, values))| {
                let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.as_str(), (shape.clone(), data))
            })
            .collect();
        let views = bytes.iter().map(|(name, (shape, data))| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("shape and data agree by construction");
            (*name, view)
        });
        safetensors::serialize(views, None).expect("F32 tensors with consistent shapes serialize")
    }

    /// Writes a safetensors file atomically (a temporary file beside it, then a rename).
    pub fn save_safetensors(&self, path: &Path) -> Result<(), WeightsError> {
        seqlab_data::write_atomic(path, &self.to_safetensors_bytes()).map_err(|e| {
            WeightsError::Io {
                path: path.display().to_string(),
                message: e.to_string(),
            }
        })
    }
}

/// Hands out the tensors of a [`NamedTensors`] to modules, checking names and shapes, and
/// remembering which were used so that [`finish`](Self::finish) can reject leftovers.
#[derive(Debug)]
pub struct WeightReader<'a> {
    tensors: &'a NamedTensors,
    used: BTreeSet<String>,
}

impl<'a> WeightReader<'a> {
    /// A reader over `tensors`, none used yet.
    pub fn new(tensors: &'a NamedTensors) -> Self {
        Self {
            tensors,
            used: BTreeSet::new(),
        }
    }

    /// Replaces `param`'s value by the tensor `name`, which must have the parameter's shape
    /// (after `transpose` for 2-D tensors stored transposed, as `nn.Linear`'s weight).
    pub fn param<const D: usize>(
        &mut self,
        name: &str,
        param: Param<Tensor<D>>,
        transpose: bool,
    ) -> Result<Param<Tensor<D>>, WeightsError> {
        let current = param.val();
        let dims = current.dims();
        let mut stored = dims;
        if transpose && D == 2 {
            stored.swap(0, 1);
        }
        let Some((shape, values)) = self.tensors.get(name) else {
            return Err(WeightsError::Missing {
                name: name.to_string(),
                expected: stored.to_vec(),
            });
        };
        if shape != stored {
            return Err(WeightsError::Shape {
                name: name.to_string(),
                expected: stored.to_vec(),
                got: shape.to_vec(),
            });
        }
        self.used.insert(name.to_string());
        // Transposed here rather than as a view: a strided weight would be copied into a
        // contiguous one by every matrix product that reads it.
        let values = if transpose && D == 2 {
            let (rows, cols) = (stored[0], stored[1]);
            let mut transposed = vec![0.0f32; values.len()];
            for (row, chunk) in values.chunks_exact(cols.max(1)).enumerate() {
                for (col, &value) in chunk.iter().enumerate() {
                    transposed[col * rows + row] = value;
                }
            }
            transposed
        } else {
            values.to_vec()
        };
        let tensor = Tensor::<D>::from_data(TensorData::new(values, dims), &current.device());
        // Keeps the parameter's id, device and whether it is trained.
        let id = param.id;
        Ok(param.transform_for_load(tensor, id))
    }

    /// Marks `name` as used without loading it (a tensor PyTorch stores twice, as the output
    /// weight of a tied language model).
    pub fn skip(&mut self, name: &str) {
        if self.tensors.get(name).is_some() {
            self.used.insert(name.to_string());
        }
    }

    /// Checks that every tensor was used.
    pub fn finish(self) -> Result<(), WeightsError> {
        let names: Vec<String> = self
            .tensors
            .names()
            .filter(|name| !self.used.contains(*name))
            .map(str::to_string)
            .collect();
        if names.is_empty() {
            Ok(())
        } else {
            Err(WeightsError::Unexpected { names })
        }
    }
}

/// A module whose parameters have PyTorch names and layouts.
pub trait PytorchWeights: Sized {
    /// Adds this module's parameters to `out`, each named `prefix` + its PyTorch name.
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors);

    /// Takes this module's parameters from `reader`, each named `prefix` + its PyTorch name.
    fn load_pytorch(self, prefix: &str, reader: &mut WeightReader) -> Result<Self, WeightsError>;
}

impl PytorchWeights for Linear {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        out.insert_tensor(format!("{prefix}weight"), self.weight.val().transpose());
        if let Some(bias) = &self.bias {
            out.insert_tensor(format!("{prefix}bias"), bias.val());
        }
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.weight = reader.param(&format!("{prefix}weight"), self.weight, true)?;
        if let Some(bias) = self.bias.take() {
            self.bias = Some(reader.param(&format!("{prefix}bias"), bias, false)?);
        }
        Ok(self)
    }
}

impl PytorchWeights for Embedding {
    fn save_pytorch(&self, prefix: &str, out: &mut NamedTensors) {
        out.insert_tensor(format!("{prefix}weight"), self.weight.val());
    }

    fn load_pytorch(
        mut self,
        prefix: &str,
        reader: &mut WeightReader,
    ) -> Result<Self, WeightsError> {
        self.weight = reader.param(&format!("{prefix}weight"), self.weight, false)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests;
