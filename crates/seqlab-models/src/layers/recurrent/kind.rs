//! Which recurrence a layer computes: [`CellKind`] and the RNN's [`Nonlinearity`].

/// The activation of a plain RNN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nonlinearity {
    /// `tanh`, PyTorch's default.
    Tanh,
    /// `relu`.
    Relu,
    /// No activation: the linear RNN of the RNN course.
    Identity,
}

/// Which recurrence a [`Recurrent`](super::Recurrent) layer computes. In configs it is its
/// [name](CellKind::name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum CellKind {
    /// `h' = act(W_ih x + b_ih + W_hh h + b_hh)`.
    Rnn(Nonlinearity),
    /// Long short-term memory, gates in PyTorch's order i, f, g, o.
    Lstm,
    /// Gated recurrent unit, gates in PyTorch's order r, z, n.
    Gru,
}

impl CellKind {
    /// The name [`CellKind::from_str`](std::str::FromStr) reads: `rnn` (tanh), `rnn-relu`,
    /// `rnn-identity`, `lstm` or `gru`.
    ///
    /// ```
    /// use seqlab_models::CellKind;
    /// assert_eq!("gru".parse::<CellKind>().unwrap(), CellKind::Gru);
    /// assert_eq!(CellKind::Lstm.name(), "lstm");
    /// assert!("transformer".parse::<CellKind>().is_err());
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(Nonlinearity::Tanh) => "rnn",
            CellKind::Rnn(Nonlinearity::Relu) => "rnn-relu",
            CellKind::Rnn(Nonlinearity::Identity) => "rnn-identity",
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }

    /// Gates per hidden unit: the `G` in the `[G * hidden, input]` weight shapes.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }
}

impl std::str::FromStr for CellKind {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        [
            CellKind::Rnn(Nonlinearity::Tanh),
            CellKind::Rnn(Nonlinearity::Relu),
            CellKind::Rnn(Nonlinearity::Identity),
            CellKind::Lstm,
            CellKind::Gru,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| {
            format!("unknown cell {name:?}: expected rnn, rnn-relu, rnn-identity, lstm or gru")
        })
    }
}

impl From<CellKind> for &'static str {
    fn from(kind: CellKind) -> Self {
        kind.name()
    }
}

impl TryFrom<String> for CellKind {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        name.parse()
    }
}
