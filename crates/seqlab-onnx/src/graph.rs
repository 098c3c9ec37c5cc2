//! [`GraphBuilder`]: an ONNX graph assembled node by node, its weights stored once, and
//! [`OnnxModel`]: the finished model with its metadata, as protobuf bytes.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use seqlab_models::NamedTensors;

use crate::OnnxError;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType,
    tensor_proto::DataType,
    tensor_shape_proto::{Dimension, dimension},
    type_proto,
};

/// The ONNX IR version the models are written in (ONNX 1.13 and later, ONNX Runtime 1.14 and
/// later read it).
pub const IR_VERSION: i64 = 8;

/// The version of the default operator set the graphs use: 17, where `RNN`, `LSTM` and `GRU`
/// are at their latest (14) and the reductions other than `ReduceSum` take their axes as an
/// attribute.
pub const OPSET_VERSION: i64 = 17;

/// A tensor of a graph under construction: a graph input, a weight, or a node's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value(String);

impl Value {
    /// Its name in the graph.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// One dimension of a graph input or output: fixed, or free and named (`"batch"`, `"time"`),
/// so that a runtime takes any size there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A size the graph is built for.
    Fixed(usize),
    /// A size chosen at run time; inputs and outputs that share the name share the size.
    Named(&'static str),
}

/// The element types seqlab's graphs take and give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementType {
    /// 32-bit floats: activations, weights, states.
    Float,
    /// 64-bit integers: token ids and lengths.
    Int64,
    /// Booleans: a `Loop` body's condition.
    Bool,
}

impl ElementType {
    fn data_type(self) -> i32 {
        match self {
            ElementType::Float => DataType::Float as i32,
            ElementType::Int64 => DataType::Int64 as i32,
            ElementType::Bool => DataType::Bool as i32,
        }
    }
}

/// An attribute of a node: `("axis", 1).into()`, `("perm", vec![1, 0, 2]).into()`,
/// `("direction", "bidirectional").into()`.
#[derive(Debug, Clone)]
pub struct Attribute(AttributeProto);

impl From<(&str, i64)> for Attribute {
    fn from((name, value): (&str, i64)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Int as i32),
            i: Some(value),
            ..AttributeProto::default()
        })
    }
}

impl From<(&str, f32)> for Attribute {
    fn from((name, value): (&str, f32)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Float as i32),
            f: Some(value),
            ..AttributeProto::default()
        })
    }
}

impl From<(&str, Vec<i64>)> for Attribute {
    fn from((name, values): (&str, Vec<i64>)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Ints as i32),
            ints: values,
            ..AttributeProto::default()
        })
    }
}

impl From<(&str, Vec<f32>)> for Attribute {
    fn from((name, values): (&str, Vec<f32>)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: values,
            ..AttributeProto::default()
        })
    }
}

impl From<(&str, &str)> for Attribute {
    fn from((name, value): (&str, &str)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::String as i32),
            s: Some(value.as_bytes().to_vec()),
            ..AttributeProto::default()
        })
    }
}

impl From<(&str, GraphProto)> for Attribute {
    fn from((name, graph): (&str, GraphProto)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Graph as i32),
            g: Some(graph),
            ..AttributeProto::default()
        })
    }
}

impl From<(&str, Vec<&str>)> for Attribute {
    fn from((name, values): (&str, Vec<&str>)) -> Self {
        Self(AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Strings as i32),
            strings: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            ..AttributeProto::default()
        })
    }
}

/// An ONNX graph under construction. Weights are stored once each however many nodes read
/// them (a tied language model's embedding feeds its input and its output layer); node
/// outputs get fresh names.
///
/// ```
/// use seqlab_onnx::{Dim, ElementType, GraphBuilder};
///
/// let mut graph = GraphBuilder::new("double");
/// let x = graph.input("x", ElementType::Float, &[Dim::Named("batch"), Dim::Fixed(3)]);
/// let two = graph.float_scalar(2.0);
/// let y = graph.op("Mul", &[&x, &two], vec![]);
/// graph.output(y, "y", ElementType::Float, &[Dim::Named("batch"), Dim::Fixed(3)]);
/// let model = graph.into_model("a doubling graph");
/// assert!(!model.to_bytes().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct GraphBuilder {
    name: String,
    /// Put before every name this graph makes: a subgraph's names must differ from the
    /// graph's around it.
    prefix: String,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    stored: BTreeMap<String, Value>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next: usize,
}

fn value_info(name: &str, element: ElementType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Fixed(size) => dimension::Value::DimValue(*size as i64),
                Dim::Named(name) => dimension::Value::DimParam((*name).into()),
            }),
            ..Dimension::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(element.data_type()),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..TypeProto::default()
        }),
        ..ValueInfoProto::default()
    }
}

impl GraphBuilder {
    /// An empty graph called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// An empty subgraph (a `Loop` body) called `name`, its names prefixed with `name/` so
    /// that they differ from the enclosing graph's; it reads the enclosing graph's values by
    /// name.
    pub fn subgraph(name: &str) -> Self {
        Self {
            name: name.into(),
            prefix: format!("{name}/"),
            ..Self::default()
        }
    }

    /// Declares a graph input.
    pub fn input(&mut self, name: &str, element: ElementType, dims: &[Dim]) -> Value {
        self.inputs.push(value_info(name, element, dims));
        Value(name.into())
    }

    /// Declares `value` a graph output called `name` (renamed by an `Identity` node when its
    /// name is another).
    pub fn output(&mut self, value: Value, name: &str, element: ElementType, dims: &[Dim]) {
        if value.name() != name {
            self.push_node("Identity", &[Some(&value)], &[name.to_string()], vec![]);
        }
        self.outputs.push(value_info(name, element, dims));
    }

    /// A float weight of shape `dims` stored under `name`; a second call with the same name
    /// returns the first one's value.
    pub fn weight(&mut self, name: &str, dims: &[usize], values: &[f32]) -> Value {
        if let Some(value) = self.stored.get(name) {
            return value.clone();
        }
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.store(name, dims, DataType::Float, raw)
    }

    /// The tensor `name` of `weights`, stored once under that name.
    pub fn named_weight(&mut self, weights: &NamedTensors, name: &str) -> Result<Value, OnnxError> {
        let (shape, values) = weights
            .get(name)
            .ok_or_else(|| OnnxError::MissingWeight(name.into()))?;
        Ok(self.weight(name, shape, values))
    }

    /// A 1-D int64 constant (axes, shapes, slice bounds).
    pub fn ints(&mut self, values: &[i64]) -> Value {
        let name = self.fresh("ints");
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.store(&name, &[values.len()], DataType::Int64, raw)
    }

    /// A scalar int64 constant.
    pub fn int_scalar(&mut self, value: i64) -> Value {
        let name = self.fresh("int");
        self.store(&name, &[], DataType::Int64, value.to_le_bytes().to_vec())
    }

    /// A scalar float constant.
    pub fn float_scalar(&mut self, value: f32) -> Value {
        let name = self.fresh("float");
        self.store(&name, &[], DataType::Float, value.to_le_bytes().to_vec())
    }

    fn store(&mut self, name: &str, dims: &[usize], data_type: DataType, raw: Vec<u8>) -> Value {
        self.initializers.push(TensorProto {
            name: Some(name.into()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type as i32),
            raw_data: Some(raw),
            ..TensorProto::default()
        });
        let value = Value(name.into());
        self.stored.insert(name.into(), value.clone());
        value
    }

    fn fresh(&mut self, stem: &str) -> String {
        self.next += 1;
        format!("{}{stem}_{}", self.prefix, self.next)
    }

    /// Adds a node of `op_type` with one output and returns it.
    pub fn op(&mut self, op_type: &str, inputs: &[&Value], attributes: Vec<Attribute>) -> Value {
        let inputs: Vec<Option<&Value>> = inputs.iter().copied().map(Some).collect();
        self.op_outputs(op_type, &inputs, 1, attributes).remove(0)
    }

    /// Adds a node of `op_type` with `outputs` outputs and returns them. A `None` input is an
    /// optional input left out.
    pub fn op_outputs(
        &mut self,
        op_type: &str,
        inputs: &[Option<&Value>],
        outputs: usize,
        attributes: Vec<Attribute>,
    ) -> Vec<Value> {
        let stem = op_type.to_lowercase();
        let names: Vec<String> = (0..outputs).map(|_| self.fresh(&stem)).collect();
        self.push_node(op_type, inputs, &names, attributes);
        names.into_iter().map(Value).collect()
    }

    fn push_node(
        &mut self,
        op_type: &str,
        inputs: &[Option<&Value>],
        outputs: &[String],
        attributes: Vec<Attribute>,
    ) {
        let name = self.fresh(op_type);
        // Optional inputs left out are empty names; trailing ones are dropped.
        let mut input: Vec<String> = inputs
            .iter()
            .map(|v| v.map(|v| v.name().to_string()).unwrap_or_default())
            .collect();
        while input.last().is_some_and(String::is_empty) {
            input.pop();
        }
        self.nodes.push(NodeProto {
            name: Some(name),
            op_type: Some(op_type.into()),
            input,
            output: outputs.to_vec(),
            attribute: attributes.into_iter().map(|a| a.0).collect(),
            ..NodeProto::default()
        });
    }

    /// The finished graph, for a model or as a `Loop`'s body.
    pub fn into_graph(self) -> GraphProto {
        GraphProto {
            name: Some(self.name),
            node: self.nodes,
            initializer: self.initializers,
            input: self.inputs,
            output: self.outputs,
            ..GraphProto::default()
        }
    }

    /// The finished graph as a model, with `doc` as its description.
    pub fn into_model(self, doc: &str) -> OnnxModel {
        let graph = self.into_graph();
        OnnxModel(ModelProto {
            ir_version: Some(IR_VERSION),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET_VERSION),
            }],
            producer_name: Some("seqlab".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            doc_string: Some(doc.into()),
            graph: Some(graph),
            ..ModelProto::default()
        })
    }
}

/// A finished ONNX model.
#[derive(Debug, Clone, PartialEq)]
pub struct OnnxModel(pub ModelProto);

impl OnnxModel {
    /// Adds a metadata entry (`metadata_props`), read by ONNX Runtime's
    /// `get_modelmeta().custom_metadata_map`.
    pub fn with_metadata(mut self, key: &str, value: &str) -> Self {
        self.0.metadata_props.push(StringStringEntryProto {
            key: Some(key.into()),
            value: Some(value.into()),
        });
        self
    }

    /// The metadata entry `key`, if there is one.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.0
            .metadata_props
            .iter()
            .find(|entry| entry.key.as_deref() == Some(key))
            .and_then(|entry| entry.value.as_deref())
    }

    /// The model as protobuf bytes: the contents of a `.onnx` file.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.encode_to_vec()
    }

    /// Writes the model to `path` atomically (a temporary file beside it, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), OnnxError> {
        seqlab_data::write_atomic(path, &self.to_bytes()).map_err(|e| OnnxError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }
}
