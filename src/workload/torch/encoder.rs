//! A BERT-style encoder stack (BERT-tiny, DistilBERT): word, position (and token-type)
//! embeddings with layer norm, then post-layer-norm transformer layers with a GELU feed-forward.
//! Token ids in, the last hidden states out.

use crate::catalog::EncoderSpec;
use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

#[derive(Debug)]
struct Layer {
    qkv: [nn::Linear; 3],
    out: nn::Linear,
    ln1: nn::LayerNorm,
    ff1: nn::Linear,
    ff2: nn::Linear,
    ln2: nn::LayerNorm,
}

/// The encoder; see the module docs.
#[derive(Debug)]
pub struct Encoder {
    spec: EncoderSpec,
    word: nn::Embedding,
    position: nn::Embedding,
    token_type: Option<nn::Embedding>,
    ln: nn::LayerNorm,
    layers: Vec<Layer>,
}

impl Encoder {
    /// Builds it under `p` with random weights.
    pub fn new(p: &nn::Path, spec: &EncoderSpec) -> Encoder {
        let (h, emb) = (spec.hidden, nn::EmbeddingConfig::default());
        let lin = |p: nn::Path, i, o| nn::linear(p, i, o, Default::default());
        let ln = |p: nn::Path| nn::layer_norm(p, vec![h], Default::default());
        let layers = (0..spec.layers)
            .map(|i| {
                let p = p / "layer" / i;
                Layer {
                    qkv: [
                        lin(&p / "q", h, h),
                        lin(&p / "k", h, h),
                        lin(&p / "v", h, h),
                    ],
                    out: lin(&p / "out", h, h),
                    ln1: ln(&p / "ln1"),
                    ff1: lin(&p / "ff1", h, spec.intermediate),
                    ff2: lin(&p / "ff2", spec.intermediate, h),
                    ln2: ln(&p / "ln2"),
                }
            })
            .collect();
        Encoder {
            spec: spec.clone(),
            word: nn::embedding(p / "word", spec.vocab, h, emb),
            position: nn::embedding(p / "position", spec.sequence_length, h, emb),
            token_type: (spec.token_types > 0)
                .then(|| nn::embedding(p / "token_type", spec.token_types, h, emb)),
            ln: ln(p / "ln"),
            layers,
        }
    }
}

impl ModuleT for Encoder {
    /// `[B, L]` int64 token ids in (L at most the sequence length), `[B, L, hidden]` out.
    fn forward_t(&self, ids: &Tensor, _train: bool) -> Tensor {
        // No sizes are read into Rust values, so a traced copy takes any batch and length.
        let heads = self.spec.heads;
        let head_dim = self.spec.hidden / heads;
        let positions = ids.ones_like().cumsum(1, Kind::Int64) - 1;
        let mut x = ids.apply(&self.word) + positions.apply(&self.position);
        if let Some(tt) = &self.token_type {
            x += ids.zeros_like().apply(tt);
        }
        let mut x = x.apply(&self.ln);
        let split = |t: Tensor| t.unflatten(2, [heads, head_dim]).transpose(1, 2);
        for layer in &self.layers {
            let [q, k, v] = layer.qkv.each_ref().map(|m| split(x.apply(m)));
            let a = Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<Tensor>,
                0.0,
                false,
                None,
                false,
            );
            let a = a.transpose(1, 2).flatten(2, 3);
            x = (&x + a.apply(&layer.out)).apply(&layer.ln1);
            let f = x.apply(&layer.ff1).gelu("none").apply(&layer.ff2);
            x = (&x + f).apply(&layer.ln2);
        }
        x
    }
}
