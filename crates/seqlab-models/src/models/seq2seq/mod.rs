//! The RNN course's models: the linear RNN for sinusoids, the hand-built encoder–decoder, and
//! encoder–decoders on seqlab's recurrent layers with zero, feedback or attention decoders.

mod attention;
mod encoder_decoder;
mod hand_built;
mod lin_rnn;

pub use attention::{LuongAttention, LuongAttentionConfig};
pub use encoder_decoder::{DecoderKind, Encoded, Seq2Seq, Seq2SeqConfig};
pub use hand_built::{SeqDecoder, SeqEncoder, SeqEncoderDecoder, SeqEncoderDecoderConfig};
pub use lin_rnn::{LinRnn, LinRnnConfig};
