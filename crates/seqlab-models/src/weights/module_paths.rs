//! Weights named by their paths in a module (`layers.0.weight`), for models with no PyTorch
//! counterpart.

use super::{NamedTensors, WeightReader, WeightsError};
use burn::module::Param;
use burn::tensor::Tensor;

/// Every float parameter of any burn module, named by its path in the module
/// (`layers.0.weight`): seqlab's own format for models that have no PyTorch counterpart. The
/// bytes depend on the values only (burn's own record also stores each parameter's run-time
/// id), so that two runs that trained the same weights write the same file.
///
/// ```
/// use burn::nn::LinearConfig;
/// use burn::tensor::Device;
/// use seqlab_models::{load_module_tensors, module_tensors};
///
/// let device = Device::flex();
/// let linear = LinearConfig::new(3, 2).init(&device);
/// let named = module_tensors(&linear);
/// assert_eq!(named.get("weight").unwrap().0, [3, 2]);
/// let fresh = LinearConfig::new(3, 2).init(&device);
/// let loaded = load_module_tensors(fresh, &named).unwrap();
/// loaded.weight.val().into_data().assert_eq(&linear.weight.val().into_data(), true);
/// assert!(load_module_tensors(LinearConfig::new(4, 2).init(&device), &named).is_err());
/// ```
pub fn module_tensors<M: burn::module::Module>(module: &M) -> NamedTensors {
    struct Collect {
        path: Vec<String>,
        out: NamedTensors,
    }
    impl burn::module::ModuleVisitor for Collect {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.out.insert_tensor(self.path.join("."), param.val());
        }
    }
    let mut collect = Collect {
        path: Vec::new(),
        out: NamedTensors::default(),
    };
    module.visit(&mut collect);
    collect.out
}

/// Loads tensors written by [`module_tensors`] into `module`, a module of the same structure:
/// every parameter must be there with its shape, and every tensor must be used.
pub fn load_module_tensors<M: burn::module::Module>(
    module: M,
    named: &NamedTensors,
) -> Result<M, WeightsError> {
    struct Load<'a> {
        path: Vec<String>,
        reader: WeightReader<'a>,
        error: Option<WeightsError>,
    }
    impl burn::module::ModuleMapper for Load<'_> {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if self.error.is_some() {
                return param;
            }
            let name = self.path.join(".");
            match self.reader.param(&name, param.clone(), false) {
                Ok(loaded) => loaded,
                Err(error) => {
                    self.error = Some(error);
                    param
                }
            }
        }
    }
    let mut load = Load {
        path: Vec::new(),
        reader: WeightReader::new(named),
        error: None,
    };
    let module = module.map(&mut load);
    if let Some(error) = load.error {
        return Err(error);
    }
    load.reader.finish()?;
    Ok(module)
}
